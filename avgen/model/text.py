"""Text encoder: a frozen encoder giving per-token states + mask for each prompt.

The default is all-MiniLM-L6-v2 (384-d) shipped inside avgen as an int8 pack (``avgen/weights/minilm-l6``,
``avgen.model.text_pack``), run by the plain-torch ``MiniLM`` with a ``tokenizers`` tokenizer: it needs no
download and no transformers. A local folder holding a pack, or a Hugging Face tokenizer + encoder (BERT, T5,
umT5, ...; encoder-decoder checkpoints use their encoder), works by config; the latter loads through
transformers, imported only then. Nothing is ever downloaded: a path that is not a local folder fails at once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from avgen._optional import require_transformers
from avgen.errors import CheckpointError, ConfigError
from avgen.model.phonemes import Phonemes
from avgen.model.text_pack import is_pack, load_pack
from avgen.model.tokenizer import JsonTokenizer

DEFAULT_PACK = "minilm-l6"  # folder under avgen/weights/


@dataclass(frozen=True)
class TextEncoderConfig:
    """``path``: a local folder with tokenizer + model files (a Hugging Face folder or an int8 pack); None
    means the all-MiniLM-L6-v2 pack shipped inside avgen.
    ``max_length``: token budget per prompt (special tokens included); longer prompts are truncated
    with a warning."""

    path: str | None = None
    max_length: int = 77

    def __post_init__(self) -> None:
        if self.max_length < 2:
            raise ConfigError(
                f"TextEncoderConfig.max_length must be >= 2 (room for special tokens), got {self.max_length}"
            )


@dataclass(frozen=True)
class TextStates:
    """Encoded prompts: ``states (B, Lt, D)`` float and ``mask (B, Lt)`` bool (True = a real token), and
    optionally the timed phonemes of their quoted speech (``Phonemes``, B rows), for models that read them."""

    states: Tensor
    mask: Tensor
    phonemes: Phonemes | None = None

    def __len__(self) -> int:
        return self.states.shape[0]

    def to(self, device: torch.device | str) -> TextStates:
        phonemes = None if self.phonemes is None else self.phonemes.to(device)
        return TextStates(self.states.to(device), self.mask.to(device), phonemes)

    def repeat(self, n: int) -> TextStates:
        """Each prompt repeated ``n`` times along the batch (``B -> B * n``, prompt-major)."""
        phonemes = None if self.phonemes is None else self.phonemes.repeat(n)
        return TextStates(self.states.repeat_interleave(n, 0), self.mask.repeat_interleave(n, 0), phonemes)

    def with_phonemes(self, phonemes: Phonemes | None) -> TextStates:
        """The same states with ``phonemes`` (B rows, or None) attached."""
        if phonemes is not None and len(phonemes) != len(self):
            raise ConfigError(
                f"{len(phonemes)} phoneme timelines for {len(self)} prompts; give one per prompt"
            )
        return TextStates(self.states, self.mask, phonemes)

    @staticmethod
    def cat(parts: list[TextStates]) -> TextStates:
        """Concatenate along the batch, zero-padding shorter sequences (padding is masked out). If any
        part has phonemes, parts without get rows of none."""
        length = max(p.states.shape[1] for p in parts)
        states = [F.pad(p.states, (0, 0, 0, length - p.states.shape[1])) for p in parts]
        masks = [F.pad(p.mask, (0, length - p.mask.shape[1]), value=False) for p in parts]
        phonemes = None
        if any(p.phonemes is not None for p in parts):
            rows = [p.phonemes if p.phonemes is not None else Phonemes.empty(len(p)) for p in parts]
            phonemes = Phonemes.cat([r.to(parts[0].states.device) for r in rows])
        return TextStates(torch.cat(states), torch.cat(masks), phonemes)


def default_encoder_path() -> str:
    """Folder of the default text encoder: the all-MiniLM-L6-v2 int8 pack inside the avgen package."""
    return str(Path(__file__).resolve().parents[1] / "weights" / DEFAULT_PACK)


# weight files AutoModel reads from a local folder, the usual one first
WEIGHT_NAMES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def local_model_folder(path: str | Path) -> Path:
    """``path`` as a local folder in the Hugging Face layout (config.json + weights), checked on disk.

    Never a hub id: ``"google/flan-t5-base"`` is the folder of that name under the working directory.
    """
    folder = Path(path).expanduser()
    fix = (
        "expected a folder written by save_pretrained (e.g. a downloaded T5 or BERT); avgen does not "
        "download models"
    )
    if not folder.is_dir():
        what = "a file" if folder.exists() else "no such folder"
        where = "" if folder.is_absolute() else f", looked for {folder.absolute()}"
        raise CheckpointError(f"{path}: not a local text encoder folder ({what}{where}); {fix}")
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{folder}: has no config.json; {fix}")
    if not any((folder / name).is_file() for name in WEIGHT_NAMES):
        raise CheckpointError(
            f"{folder}: has no {WEIGHT_NAMES[0]} (nor {', '.join(WEIGHT_NAMES[1:])}); {fix}"
        )
    return folder


class TextEncoder(nn.Module):
    """Frozen text encoder. ``encoder(prompts)`` -> ``TextStates``; empty prompts give just the special
    tokens (what classifier-free guidance uses as its unconditional branch)."""

    def __init__(self, tokenizer: Any, model: nn.Module, max_length: int = 77) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.model = model.eval().requires_grad_(False)
        self.max_length = max_length

    @classmethod
    def from_config(cls, config: TextEncoderConfig) -> TextEncoder:
        if config.path is None:
            return cls.from_pack(default_encoder_path(), max_length=config.max_length)
        return cls.from_pretrained(config.path, max_length=config.max_length)

    @classmethod
    def from_pack(cls, folder: str | Path, max_length: int = 77) -> TextEncoder:
        """The plain-torch ``MiniLM`` and ``tokenizers`` tokenizer of an int8 pack folder (float32 after
        loading; transformers is not imported). A missing or damaged file raises CheckpointError naming it
        and what restores it."""
        model = load_pack(folder)  # checks every file of the pack against its sha256 first
        return cls(JsonTokenizer.from_folder(folder), model, max_length=max_length)

    @classmethod
    def from_pretrained(cls, path: str | Path, max_length: int = 77) -> TextEncoder:
        """Load tokenizer + encoder from a local folder (never the network): an int8 pack (``from_pack``)
        or a Hugging Face folder, through transformers.

        ``path`` is local whatever its shape (relative to the working directory, ``~`` expanded): a
        missing folder, config.json or weights file raises CheckpointError naming it before transformers
        runs, and transformers is held to the folder (``local_files_only``).
        """
        if is_pack(Path(path).expanduser()):
            return cls.from_pack(Path(path).expanduser(), max_length=max_length)
        folder = local_model_folder(path)
        transformers = require_transformers(f"{folder}: a Hugging Face text encoder folder")
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a local folder loads in well under a second: no bar
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            model = transformers.AutoModel.from_pretrained(
                str(folder), local_files_only=True, dtype=torch.float32
            )
        except (OSError, ValueError) as e:
            raise CheckpointError(
                f"{folder}: cannot load a tokenizer and encoder from this folder: {e}"
            ) from e
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        if getattr(model.config, "is_encoder_decoder", False):
            model = model.get_encoder()
        return cls(tokenizer, model, max_length=max_length)

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the tokenizer and encoder (float32 safetensors) into ``directory`` as a Hugging Face
        folder."""
        self.tokenizer.save_pretrained(str(directory))
        self.model.save_pretrained(str(directory))

    @property
    def dim(self) -> int:
        """Width of the states."""
        return int(
            self.model.config.hidden_size
            if hasattr(self.model.config, "hidden_size")
            else self.model.config.d_model
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def train(self, mode: bool = True) -> TextEncoder:
        """The encoder stays frozen in eval mode (no dropout) whatever ``mode`` is."""
        super().train(mode)
        self.model.eval()
        return self

    def _warn_truncation(self, prompts: list[str]) -> None:
        lengths = [len(ids) for ids in self.tokenizer(prompts, truncation=False)["input_ids"]]
        for prompt, n in zip(prompts, lengths):
            if n > self.max_length:
                warnings.warn(
                    f"prompt {prompt[:40]!r}... has {n} tokens; truncated to max_length={self.max_length} "
                    f"({n - self.max_length} dropped)",
                    stacklevel=3,
                )

    @torch.no_grad()
    def forward(self, prompts: str | list[str]) -> TextStates:
        """Encode ``prompts`` -> ``TextStates`` with ``states (B, Lt, dim)`` float32 on the encoder's device."""
        if isinstance(prompts, str):
            prompts = [prompts]
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ConfigError(f"prompts must be a non-empty list of strings, got {prompts!r}")
        self._warn_truncation(prompts)
        enc = self.tokenizer(
            prompts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        ids = enc["input_ids"].to(self.device)
        mask = enc["attention_mask"].to(self.device).bool()
        if ids.shape[1] == 0 or not mask.any(dim=1).all():
            # a tokenizer with no special tokens gives nothing for "": keep one pad token visible
            ids = F.pad(ids, (0, max(0, 1 - ids.shape[1])), value=self.tokenizer.pad_token_id or 0)
            mask = F.pad(mask, (0, ids.shape[1] - mask.shape[1]))
            mask[:, 0] |= ~mask.any(dim=1)
        out = self.model(input_ids=ids, attention_mask=mask.long())
        states = out if isinstance(out, Tensor) else out.last_hidden_state  # MiniLM / transformers
        return TextStates(states.float() * mask[..., None], mask)


def tiny_text_encoder(dim: int = 32, max_length: int = 16, seed: int = 0) -> TextEncoder:
    """A small random BERT with a character vocabulary, built in-process (no files, no network); for tests
    and ``text_encoder: tiny`` smoke runs. A transformers ``BertModel``, so it needs the ``hf`` extra."""
    transformers = require_transformers("tiny_text_encoder (text_encoder 'tiny')", ConfigError)

    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]
    tokenizer = transformers.BertTokenizer(vocab={tok: i for i, tok in enumerate(tokens)})
    config = transformers.BertConfig(
        vocab_size=len(tokens),
        hidden_size=dim,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * dim,
        max_position_embeddings=max(64, max_length),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.BertModel(config, add_pooling_layer=False)
    return TextEncoder(tokenizer, model, max_length=max_length)
