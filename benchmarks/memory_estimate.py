"""Peak memory of a generation: ``avgen.limits.estimate_memory`` (what ``avgen generate`` checks before any
work) against the peak RSS a real call reaches.

Each case (clip seconds, height x width) runs in a fresh process (``benchmarks.perf.machine.run_child``), so
that its high-water mark (``VmHWM``, ``peak_rss_mb``) is its own: import avgen, note the RSS, load the
pipeline, make one clip at the pipeline's own sampling settings, and report the peak RSS minus the RSS after
import (the weights, as loaded, count; the interpreter and torch do not). The estimate is computed from the
pipeline folder's JSON alone, as ``avgen generate`` does, with the guidance branches of the pipeline's
sampling. The estimate is meant to be an upper bound that is not far above: "ratio" is estimate over
measured (>= 1: the check never lets through what does not fit).

    OMP_NUM_THREADS=2 .venv/bin/python -m benchmarks.memory_estimate
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from avgen.atomic import write_text
from benchmarks.perf.machine import command_line, cpu_model, current_rss_mb, peak_rss_mb, run_child

PROMPT = "a big red ball bounces quickly"
CASES = ("2:64x64", "8:64x64", "20:64x64", "4:128x128", "2:96x160")
MIB = 2**20


def child(pipeline: str, seconds: float, height: int, width: int, threads: int) -> dict[str, Any]:
    """One generation in this process: bytes of peak RSS over the RSS after import, and wall seconds."""
    import torch

    from avgen.pipeline import AVPipeline

    torch.set_num_threads(threads)
    base = current_rss_mb()
    t0 = time.perf_counter()
    pipe = AVPipeline.from_pretrained(pipeline)
    clip = pipe(PROMPT, seconds=seconds, height=height, width=width, seed=0, progress=False)
    wall = time.perf_counter() - t0
    measured = int((peak_rss_mb() - base) * MIB)
    return {"measured": measured, "wall_s": wall, "frames": int(clip.video.shape[0])}


def estimate(pipeline: str, seconds: float, height: int, width: int) -> dict[str, Any]:
    """``avgen generate``'s estimate for the case: peak bytes, tokens, and the largest stage."""
    from avgen import limits

    shape = limits.read_model_shape(pipeline)
    geom = shape.geometry(seconds, height, width, shape.config.fps)
    est = limits.estimate_memory(shape, geom, branches=limits.guidance_branches(shape.config.sampling))
    return {"estimate": est.peak, "tokens": est.tokens, "largest": est.largest, "weights": est.weights}


def _case(text: str) -> tuple[float, int, int]:
    try:
        seconds, size = text.split(":")
        h, w = size.lower().split("x")
        return float(seconds), int(h), int(w)
    except ValueError:
        raise SystemExit(f"--cases: {text!r} is not SECONDS:HxW, e.g. 2:64x64") from None


def report(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Memory: the pre-flight estimate against the measured peak",
        "",
        f"`{meta['command']}` ({meta['minutes']:.1f} min)",
        "",
        f"Pipeline `{meta['pipeline']}` at its own sampling settings; {meta['machine']}, torch threads "
        f"{meta['threads']}. One fresh process a case; measured = peak RSS (VmHWM) - RSS after `import avgen` "
        "(weights as loaded included). Estimate = `avgen.limits.estimate_memory`, what `avgen generate` checks before "
        "loading anything (weights + 256 MiB + the largest stage); ratio = estimate / measured (>= 1 is the "
        "contract: a refusal is never needed after the fact).",
        "",
        "| clip | tokens | largest stage | measured MiB | estimate MiB | ratio | call s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seconds']:g} s at {r['height']}x{r['width']} | {r['tokens']} | {r['largest']} | "
            f"{r['measured'] / MIB:.0f} | {r['estimate'] / MIB:.0f} | {r['estimate'] / r['measured']:.2f} | "
            f"{r['wall_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", default="avgen-tiny", help="shipped name or pipeline folder")
    p.add_argument("--cases", nargs="+", default=list(CASES), help="SECONDS:HxW")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/memory_estimate.md"))
    p.add_argument("--child", nargs=3, metavar=("SECONDS", "H", "W"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        result = child(
            args.pipeline, float(args.child[0]), int(args.child[1]), int(args.child[2]), args.threads
        )
        print(json.dumps(result))
        return 0
    cases = [_case(c) for c in args.cases]
    t0, rows = time.perf_counter(), []
    for seconds, h, w in cases:
        cmd = [sys.executable, "-m", "benchmarks.memory_estimate", "--pipeline", args.pipeline]
        cmd += ["--threads", str(args.threads), "--child", str(seconds), str(h), str(w)]
        done = run_child(cmd)
        if done["returncode"] or done["result"] is None:
            raise SystemExit(f"case {seconds:g} s at {h}x{w} failed:\n{done['stderr_tail']}")
        row = {"seconds": seconds, "height": h, "width": w, **done["result"]}
        row.update(estimate(args.pipeline, seconds, h, w))
        rows.append(row)
        print(
            f"{seconds:g} s at {h}x{w}: measured {row['measured'] / MIB:.0f} MiB, estimate "
            f"{row['estimate'] / MIB:.0f} MiB",
            flush=True,
        )
    meta = {
        "command": command_line("benchmarks.memory_estimate", argv),
        "minutes": (time.perf_counter() - t0) / 60,
        "pipeline": args.pipeline,
        "machine": cpu_model(),
        "threads": args.threads,
    }
    write_text(args.out, report(rows, meta))
    write_text(args.out.with_suffix(".json"), json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
