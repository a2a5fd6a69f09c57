"""``avgen data synth``: write N procedural clips (MP4 + events JSON) and captions.jsonl, on all cores."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from avgen import atomic
from avgen.errors import AVGenError, ConfigError

_PRELOAD = [
    "numpy",
    "torch",
    "av",
    "avgen.io",
    "avgen.dsp",
    "avgen.data.synth.generate",
    "avgen.data.synth.talk",
    "avgen.data.synth.bounce",
    "avgen.data.synth.keys",
    "avgen.data.synth.ambience",
]


def build_parser() -> argparse.ArgumentParser:
    from avgen.data.synth.captions import PHRASE_POOLS

    p = argparse.ArgumentParser(
        prog="avgen data synth",
        description="Write procedural audio-visual clips (talk, bounce, keys, ambience) with captions and "
        "ground-truth events. Sample SEED of a split is the same clip on every run.",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    p.add_argument("--n", required=True, type=int, help="number of clips")
    p.add_argument(
        "--seed", type=int, default=0, help="first seed, an offset within the split's seed range (default 0)"
    )
    p.add_argument("--split", choices=("train", "val", "test"), default="train")
    p.add_argument(
        "--size", help="force every clip to HEIGHTxWIDTH, e.g. 64x64 (default: 64x64, 64x96, 96x64)"
    )
    p.add_argument("--fps", help="frame rate, int or fraction such as 30000/1001 (default 24)")
    p.add_argument(
        "--duration", type=float, help="force every clip to this many seconds (default: 1.5, 2 or 2.5)"
    )
    p.add_argument("--sample-rate", type=int, help="audio rate in Hz (default 16000)")
    p.add_argument("--families", help="comma-separated subset of talk,bounce,keys,ambience (equal weights)")
    p.add_argument(
        "--phrase-pool",
        choices=PHRASE_POOLS,
        help="what talk clips say: fixed (44 train / 10 test phrases, the default) or composed (thousands, "
        "test sentences with held-out words)",
    )
    p.add_argument("--config", type=Path, help="YAML file with SynthConfig fields")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    p.add_argument("--lossless", action="store_true", help="write bit-exact MKV (FFV1 + FLAC) instead of MP4")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> Any:
    """SynthConfig from --config, --set and the direct flags (in that order of precedence, lowest first)."""
    from avgen.config import apply_overrides, from_dict, load_yaml
    from avgen.data.synth.spec import SynthConfig, parse_fps, parse_size

    data = load_yaml(args.config) if args.config else {}
    data = apply_overrides(data, args.set)
    if args.size:
        data["sizes"] = [list(parse_size(args.size))]
    if args.fps:
        parse_fps(args.fps, where="--fps")
        data["fps"] = int(args.fps) if args.fps.strip().isdigit() else args.fps.strip()
    if args.duration is not None:
        data["durations"] = [args.duration]
    if args.sample_rate is not None:
        data["sample_rate"] = args.sample_rate
    if args.families:
        data["families"] = {f.strip(): 1.0 for f in args.families.split(",") if f.strip()}
    if args.phrase_pool:
        data["phrase_pool"] = args.phrase_pool
    return from_dict(SynthConfig, data, where=str(args.config) if args.config else "avgen data synth")


_JOB: dict[str, Any] = {}


def _init_worker(job: dict[str, Any]) -> None:
    import torch

    torch.set_num_threads(1)  # one process per core already
    _JOB.update(job)


def _work(seed: int) -> dict[str, Any]:
    from avgen.config import from_dict
    from avgen.data.synth.generate import make_sample, write_sample
    from avgen.data.synth.spec import SynthConfig

    job = _JOB
    try:
        sample = make_sample(seed, job["split"], from_dict(SynthConfig, job["config"]))
        return write_sample(sample, Path(job["out"]), lossless=job["lossless"], overwrite=job["overwrite"])
    except AVGenError as e:
        raise AVGenError(f"{job['split']} seed {seed}: {e}") from None


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from avgen.config import to_dict
    from avgen.data.synth.spec import SPLIT_BASE, SPLIT_SIZE

    if args.n < 1:
        raise ConfigError(f"--n must be >= 1, got {args.n}")
    if args.seed < 0 or args.seed + args.n > SPLIT_SIZE:
        raise ConfigError(f"--seed {args.seed} --n {args.n} leaves the split's seed range [0, {SPLIT_SIZE})")
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    cfg = config_from_args(args)
    out: Path = args.out
    captions = out / "captions.jsonl"
    if captions.exists() and not args.overwrite:
        raise ConfigError(
            f"{out} already holds a dataset ({captions.name}); pass --overwrite or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    job = {
        "split": args.split,
        "config": to_dict(cfg),
        "out": str(out),
        "lossless": args.lossless,
        "overwrite": args.overwrite,
    }
    seeds = range(args.seed, args.seed + args.n)
    workers = min(args.workers, args.n)

    from tqdm import tqdm

    start = time.perf_counter()
    records: list[dict[str, Any]] = []
    if workers == 1:
        _init_worker(job)
        for seed in tqdm(seeds, desc="synth", unit="clip", disable=args.quiet):
            records.append(_work(seed))
    else:
        import multiprocessing as mp

        ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        if ctx.get_start_method() == "forkserver":
            ctx.set_forkserver_preload(_PRELOAD)
        with ctx.Pool(workers, initializer=_init_worker, initargs=(job,)) as pool:
            results = pool.imap(_work, seeds, chunksize=2)
            for record in tqdm(results, total=args.n, desc="synth", unit="clip", disable=args.quiet):
                records.append(record)
    elapsed = time.perf_counter() - start

    atomic.write_text(captions, "".join(json.dumps(r) + "\n" for r in records))
    manifest = {
        "version": 1,
        "split": args.split,
        "seed_start": args.seed,
        "global_seed_start": SPLIT_BASE[args.split] + args.seed,
        "n": args.n,
        "format": "mkv" if args.lossless else "mp4",
        "config": to_dict(cfg),
        "families": {f: sum(r["family"] == f for r in records) for f in cfg.families},
        "elapsed_s": round(elapsed, 3),
        "workers": workers,
    }
    atomic.write_json(out / "synth.json", manifest, indent=2)
    rate = args.n / elapsed * 60
    print(
        f"wrote {args.n} {args.split} clips to {out} in {elapsed:.1f} s ({rate:.0f} clips/min, {workers} workers)",
        file=sys.stderr,
    )
    return 0
