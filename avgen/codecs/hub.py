"""Fetching a Hugging Face hub id: from the local cache when offline, from the hub only when it answers."""

from __future__ import annotations

import os
from pathlib import Path

from avgen.errors import CheckpointError


def download_hub(repo_id: str, timeout_s: float = 3.0) -> Path:
    """Resolve a hub id to a local folder: the HF cache when offline, a download when the hub answers."""
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
