"""What ``torch.compile`` of the DiT's blocks buys when sampling: seconds per pipeline call, eager vs compiled.

Two copies of one pipeline, one left eager and one through ``AVPipeline.compile``, are called in turn on the
same prompts and seeds (so load on a shared machine hits both alike), at the pipeline's own sampling
settings. The compiled copy's first call, which compiles, is reported apart (``compile_call_s``), and so
is the largest difference between the two copies' clips (compiled kernels round differently, not more).
Training speed with ``loop.compile`` is ``benchmarks/train_throughput.py --precision bf16,bf16+compile``.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/compile_speed.py --pipeline avgen-tiny --batch 8 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avgen.atomic import write_text
from avgen.pipeline import AVPipeline

PROMPTS = (
    "a big red ball bounces quickly on a dark green background",
    'a round green face says "hello there" on a grey background',
    "two small blue balls bounce slowly on a cream background",
    'a square pink face says "good morning" on a black background',
)


def _call(pipe: AVPipeline, prompts: list[str], steps: int | None) -> tuple[float, list[Any]]:
    t0 = time.perf_counter()
    clips = pipe(prompts, seed=0, steps=steps, progress=False)
    return time.perf_counter() - t0, clips


def _max_diff(a: list[Any], b: list[Any]) -> dict[str, float]:
    video = max(
        float(np.abs(x.video.astype(np.int16) - y.video.astype(np.int16)).max()) for x, y in zip(a, b)
    )
    audio = max(float(np.abs(x.audio - y.audio).max()) for x, y in zip(a, b))
    return {"video_levels": video, "audio": audio}


def measure(pipeline: str, batch: int, repeats: int, steps: int | None) -> dict[str, Any]:
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(batch)]
    eager = AVPipeline.from_pretrained(pipeline)
    compiled = AVPipeline.from_pretrained(pipeline).compile()
    # The eager warm-up (allocator, oneDNN primitives) also gives the reference clips: same prompts and seed.
    _, reference = _call(eager, prompts, steps)
    compile_s, first = _call(compiled, prompts, steps)
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(repeats):
        for name, pipe in (("eager", eager), ("compiled", compiled)):
            times[name].append(_call(pipe, prompts, steps)[0])
    eager_s, compiled_s = statistics.median(times["eager"]), statistics.median(times["compiled"])
    return {
        "pipeline": pipeline,
        "batch": batch,
        "steps": steps or eager.config.sampling.steps,
        "sampler": eager.config.sampling.sampler,
        "repeats": repeats,
        "eager_call_s": times["eager"],
        "compiled_call_s": times["compiled"],
        "compile_call_s": compile_s,
        "speedup": eager_s / compiled_s,
        "max_diff": _max_diff(reference, first),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }


def report(r: dict[str, Any]) -> str:
    med = {k: statistics.median(r[f"{k}_call_s"]) for k in ("eager", "compiled")}
    return "\n".join(
        [
            "# torch.compile of the DiT blocks: sampling speed",
            "",
            "```",
            f"OMP_NUM_THREADS={r['threads']} .venv/bin/python benchmarks/compile_speed.py --pipeline "
            f"{r['pipeline']} --batch {r['batch']} --repeats {r['repeats']}",
            "```",
            "",
            f"{r['machine']}, {r['threads']} threads, torch {r['torch']}; pipeline {r['pipeline']}, "
            f"{r['batch']} prompts per call, {r['sampler']} {r['steps']} steps; the two copies called in turn.",
            "",
            "| | seconds per call (median) | every call |",
            "|---|---|---|",
            f"| eager | {med['eager']:.2f} | {', '.join(f'{s:.2f}' for s in r['eager_call_s'])} |",
            f"| compiled blocks | {med['compiled']:.2f} | {', '.join(f'{s:.2f}' for s in r['compiled_call_s'])} |",
            "",
            f"Speedup {r['speedup']:.2f}x. The compiled copy's first call, which compiles, took "
            f"{r['compile_call_s']:.1f} s. Largest difference between the copies' clips: "
            f"{r['max_diff']['video_levels']:.0f} pixel levels, {r['max_diff']['audio']:.2g} in audio.",
            "",
        ]
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline", default="avgen-tiny")
    p.add_argument("--batch", type=int, default=8, help="prompts per pipeline call")
    p.add_argument("--repeats", type=int, default=3, help="timed calls of each copy")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the pipeline's)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/compile_speed"))
    args = p.parse_args()
    result = measure(args.pipeline, args.batch, args.repeats, args.steps)
    write_text(args.out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    write_text(args.out.with_suffix(".md"), report(result))
    print(report(result))


if __name__ == "__main__":
    main()
