"""``avgen codec stats FOLDER --codec CODEC_DIR``: per-channel latent mean/std of a codec over a media folder,
written atomically as ``CODEC_DIR/latent_stats.json`` (or ``--out``), which the codec reads when it loads."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from avgen.codecs import load_codec
from avgen.codecs.base import HF_CLASS_NAMES, HF_MODEL_TYPES, fingerprint, read_codec_config
from avgen.codecs.hf_base import HFCodec
from avgen.codecs.latent_stats import (
    AUDIO_SUFFIXES,
    STATS_NAME,
    VIDEO_SUFFIXES,
    StatsSettings,
    compute_stats,
    is_audio_codec,
    media_files,
    write_stats_file,
)
from avgen.errors import ConfigError

SHOWN_SKIPS = 20  # skipped files listed in the stats file; the count is always there


def _progress_bar(files: Sequence[Path]) -> Iterable[Path]:
    from tqdm import tqdm

    return tqdm(files, desc="latent stats", unit="file", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avgen codec stats",
        description="per-channel latent mean/std of a codec over a folder of media, stored with the codec",
    )
    parser.add_argument(
        "folder", help="folder of media, searched recursively (the footage you will train on)"
    )
    parser.add_argument("--codec", required=True, help="codec folder (Hugging Face layout or avgen's)")
    parser.add_argument(
        "--out",
        help=f"where to write the stats (default: CODEC/{STATS_NAME}, which the codec reads when it loads)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="encode the first S seconds of each file")
    parser.add_argument(
        "--max-size", type=int, help="shrink video frames to at most this many pixels on the longest side"
    )
    parser.add_argument("--limit", type=int, help="use only the first N files (sorted by path)")
    parser.add_argument("--device", default="cpu", help="torch device for the codec (cpu, cuda, cuda:1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    kind = read_codec_config(args.codec)[0]
    hf_kinds = {*HF_MODEL_TYPES.values(), *HF_CLASS_NAMES.values()}
    if args.out is None and kind not in hf_kinds:
        raise ConfigError(
            f"{args.codec}: an avgen {kind!r} codec keeps its stats in model.safetensors (fitted when it was "
            "trained); pass --out FILE to only measure them"
        )
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    settings = StatsSettings(seconds=args.seconds, max_size=args.max_size, device=args.device)
    codec = load_codec(args.codec).eval().to(settings.device)
    suffixes = VIDEO_SUFFIXES + AUDIO_SUFFIXES if is_audio_codec(codec) else VIDEO_SUFFIXES
    files = media_files(args.folder, suffixes)[: args.limit]
    stats, summary = compute_stats(codec, files, settings, None if args.no_progress else _progress_bar)
    out = Path(args.out).expanduser() if args.out else Path(args.codec).expanduser() / STATS_NAME
    info = {
        "codec": kind,
        "codec_folder": str(args.codec),
        "data": str(args.folder),
        **summary,
        "skipped_count": len(summary["skipped"]),
        "skipped": summary["skipped"][:SHOWN_SKIPS],
    }
    if isinstance(codec, HFCodec):  # the weights the stats belong to (the stats themselves left out)
        info["model_id"] = fingerprint(codec.model_config(), codec.model)
    write_stats_file(out, stats.mean, stats.std, info)
    report = {k: v for k, v in info.items() if k != "skipped"}
    report["out"] = str(out)
    report["std_range"] = [float(stats.std.min()), float(stats.std.max())]
    print(json.dumps(report, indent=2))
    return 0
