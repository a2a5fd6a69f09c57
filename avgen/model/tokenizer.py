"""A ``tokenizer.json`` tokenizer (the ``tokenizers`` package), called the way ``TextEncoder`` calls a
transformers tokenizer, without importing transformers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from avgen.atomic import write_bytes
from avgen.errors import CheckpointError, ConfigError

TOKENIZER_FILE = "tokenizer.json"
# read for the pad token and the default truncation length, and kept for save_pretrained
EXTRA_FILES = ("tokenizer_config.json", "special_tokens_map.json")


def _token_text(value: Any) -> str | None:
    """A special token as transformers writes it: a string or ``{"content": ...}``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class JsonTokenizer:
    """``tokenizer(texts, padding=, truncation=, max_length=, return_tensors=)`` -> ``{"input_ids",
    "attention_mask"}`` with transformers' meaning: special tokens added, ``truncation`` cuts each text to
    ``max_length`` tokens (special tokens included; default ``model_max_length``), ``padding`` pads on the
    right to the batch's longest, ``return_tensors="pt"`` gives int64 tensors (else lists; a single string
    gives one flat list). Also ``tokenize``, ``convert_ids_to_tokens``, ``pad_token_id`` and
    ``save_pretrained`` (the files it was read from, unchanged)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self._tok = Tokenizer.from_str(files[TOKENIZER_FILE].decode("utf-8"))
        settings: dict[str, Any] = {}
        for name in EXTRA_FILES:
            if name in files:
                settings.update(json.loads(files[name]))
        padding = self._tok.padding or {}  # tokenizer.json's own padding settings, if any
        self.pad_token = _token_text(settings.get("pad_token")) or padding.get("pad_token") or "[PAD]"
        self.pad_token_id = self._tok.token_to_id(self.pad_token)
        self.model_max_length = int(settings.get("model_max_length", 512))

    @classmethod
    def from_folder(cls, folder: str | Path) -> JsonTokenizer:
        """Read ``tokenizer.json`` (and the transformers files beside it, if any) from ``folder``; a missing
        or unreadable file raises CheckpointError naming it."""
        folder = Path(folder)
        path = folder / TOKENIZER_FILE
        if not path.is_file():
            raise CheckpointError(f"{path}: not found; a text encoder folder needs its tokenizer.json")
        files = {
            name: (folder / name).read_bytes()
            for name in (TOKENIZER_FILE, *EXTRA_FILES)
            if (folder / name).is_file()
        }
        try:
            return cls(files)
        except Exception as e:  # tokenizers raises its own Exception type for a malformed file
            raise CheckpointError(f"{path}: not a readable tokenizer ({e}); restore the file") from e

    def _configure(self, padding: bool, truncation: bool, max_length: int | None) -> None:
        self._tok.no_padding()
        self._tok.no_truncation()
        if truncation:
            self._tok.enable_truncation(max_length or self.model_max_length)
        if padding:
            self._tok.enable_padding(pad_id=self.pad_token_id or 0, pad_token=self.pad_token)

    def __call__(
        self,
        texts: str | list[str],
        *,
        padding: bool = False,
        truncation: bool = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
    ) -> dict[str, Any]:
        single = isinstance(texts, str)
        self._configure(padding, truncation, max_length)
        encodings = self._tok.encode_batch([texts] if single else list(texts))
        out: dict[str, Any] = {
            "input_ids": [e.ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
        }
        if return_tensors is None:
            return {k: v[0] for k, v in out.items()} if single else out
        if return_tensors != "pt":
            raise ConfigError(f"return_tensors must be 'pt' or None, got {return_tensors!r}")
        if len({len(ids) for ids in out["input_ids"]}) > 1:
            raise ConfigError("texts of different lengths make no tensor; pass padding=True")
        return {k: torch.tensor(v, dtype=torch.int64) for k, v in out.items()}

    def tokenize(self, text: str) -> list[str]:
        """The word pieces of ``text``, without special tokens."""
        self._configure(False, False, None)
        return self._tok.encode(text, add_special_tokens=False).tokens

    def convert_ids_to_tokens(self, ids: int | list[int]) -> str | list[str]:
        if isinstance(ids, int):
            return self._tok.id_to_token(ids)
        return [self._tok.id_to_token(i) for i in ids]

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the files the tokenizer was read from into ``directory``."""
        for name, data in self.files.items():
            write_bytes(Path(directory) / name, data, mkdir_parents=True)
