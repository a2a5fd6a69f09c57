"""Hugging Face hub ids, fetched only on explicit request: ``"hf://owner/name"`` and ``allow_download=True``.

Every other source (any ``Path``, any string without the ``hf://`` prefix) is a local folder and never
reaches the network. Without ``allow_download`` even an ``hf://`` id fails at once, before any network code.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from avgen.errors import CheckpointError

HUB_PREFIX = "hf://"
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


def hub_id(source: str | Path) -> str | None:
    """The repo id of an explicit ``"hf://owner/name"`` source; None for anything else (a local path).

    Only a ``str`` can name the hub: a ``Path`` is always local (and would mangle ``//`` anyway).
    """
    if not isinstance(source, str) or not source.startswith(HUB_PREFIX):
        return None
    repo = source[len(HUB_PREFIX) :]
    if not _REPO_ID.fullmatch(repo):
        raise CheckpointError(f"{source}: not a hub id; write it as {HUB_PREFIX}owner/name")
    return repo


def fetch_hub(source: str, allow_download: bool) -> Path:
    """Local folder of the hub id in ``source`` (``"hf://owner/name"``); CheckpointError unless allowed."""
    repo = hub_id(source)
    if repo is None:
        raise CheckpointError(f"{source}: not a hub id; write it as {HUB_PREFIX}owner/name")
    if not allow_download:
        raise CheckpointError(
            f"{source}: a Hugging Face hub id, and downloads are off. Pass allow_download=True to fetch it, "
            f"or download it yourself (`hf download {repo} --local-dir DIR`) and pass DIR"
        )
    return download_hub(repo)


def download_hub(repo_id: str, timeout_s: float = 3.0) -> Path:
    """Resolve a hub id to a local folder: the HF cache when offline, a download when the hub answers.

    Network code: call it only for a hub id the caller asked for (``fetch_hub`` checks the consent).
    """
    import socket

    from huggingface_hub import snapshot_download

    patterns = ["config.json", "*.safetensors"]
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    fix = f"Download it where there is network (`hf download {repo_id}`) and pass the local folder instead"
    if not offline:
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
        host, _, port = endpoint.partition(":")
        try:  # a quick probe, so no network fails in seconds rather than after the hub client's retries
            socket.create_connection((host, int(port or 443)), timeout=timeout_s).close()
        except OSError as e:
            raise CheckpointError(
                f"{repo_id}: cannot fetch this hub id: the hub is unreachable ({e}). {fix}"
            ) from e
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=offline))
    except Exception as e:  # LocalEntryNotFoundError, RepositoryNotFoundError, HTTP errors
        why = "HF_HUB_OFFLINE is set and it is not in the local cache" if offline else f"the hub refused: {e}"
        raise CheckpointError(f"{repo_id}: cannot fetch this hub id: {why}. {fix}") from e
