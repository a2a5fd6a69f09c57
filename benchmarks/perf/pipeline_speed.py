"""Pipeline speed: each phase of a default 2-s clip, the realtime factor per step count, and the whole
``avgen generate`` process (imports included) with its slowest imports and peak memory.

Phases are timed without changing avgen: the pipeline is called as users call it, with timers wrapped
around the parts ``AVPipeline.__call__`` calls (instance attributes shadow the methods for this one
pipeline; the module attribute ``avgen.diffusion.generate.generate_tokens``, which ``__call__`` looks up at
call time, is swapped for the run and restored):

- text: ``text_encoder.forward`` (prompt + negative prompt);
- sampling: ``generate_tokens`` (noise, schedule, sampler and every DiT forward; the DiT forwards alone are
  also counted and timed: ``nfe``, ``dit``);
- decode: ``video_codec.decode`` and ``audio_codec.decode``;
- other: the rest of the call (packing, unpacking, uint8 conversion);
- mux: ``avgen.io.write_av`` of the clip to MP4 (H.264 + AAC), timed after the call.

Realtime factor = clip seconds / wall seconds (> 1 is faster than real time), for the pipeline call and
with muxing. Peak RSS: of this process after each step count (it only grows), and of each
``avgen generate`` child (``os.wait4``).

    OMP_NUM_THREADS=2 python -m benchmarks.perf.pipeline_speed --pipeline random:default --out benchmarks/perf/results/pipeline_speed.json
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

STEPS = (4, 8, 16, 32, 50)
PROMPT = 'a round green face says "hello" on a grey background'


def _timed(
    fn: Callable[..., Any], name: str, acc: dict[str, float], counts: dict[str, int], sync: Callable
) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        sync()
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            sync()
            acc[name] += time.perf_counter() - t0
            counts[name] += 1

    return wrapper


@contextlib.contextmanager
def phase_timers(pipe: Any) -> Iterator[tuple[dict[str, float], dict[str, int]]]:
    """Wrap the parts of ``pipe`` that ``__call__`` runs with timers; yields (seconds, calls) per phase,
    accumulated over everything called inside the block."""
    import torch

    import avgen.diffusion.generate as gen_module

    cuda = pipe.device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    acc: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    targets = [
        (pipe.text_encoder, "forward", "text"),
        (pipe.dit, "forward", "dit"),
        (pipe.video_codec, "decode", "decode_video"),
        (pipe.audio_codec, "decode", "decode_audio"),
    ]
    original = gen_module.generate_tokens
    try:
        for obj, attr, name in targets:
            setattr(obj, attr, _timed(getattr(obj, attr), name, acc, counts, sync))
        gen_module.generate_tokens = _timed(original, "sampling", acc, counts, sync)
        yield acc, counts
    finally:
        gen_module.generate_tokens = original
        for obj, attr, _ in targets:
            with contextlib.suppress(AttributeError):
                delattr(obj, attr)  # the class's method shows through again


def time_call(pipe: Any, steps: int, args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    """One timed pipeline call of ``steps`` steps and the MP4 write of its clip."""
    from avgen.io import write_av

    with phase_timers(pipe) as (acc, counts):
        t0 = time.perf_counter()
        clip = pipe(
            args.prompt,
            seconds=args.seconds,
            height=args.size[0],
            width=args.size[1],
            fps=args.fps,
            steps=steps,
            sampler=args.sampler,
            seed=0,
            progress=False,
        )
        call = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_av(out_dir / f"steps{steps}.mp4", clip, overwrite=True)
    mux = time.perf_counter() - t0
    phases = {k: acc[k] for k in ("text", "sampling", "dit", "decode_video", "decode_audio")}
    phases["other"] = (
        call - phases["text"] - phases["sampling"] - phases["decode_video"] - phases["decode_audio"]
    )
    return {"call_s": call, "mux_s": mux, "phases_s": phases, "nfe": counts["dit"], "clip_s": clip.duration}


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median call time (its phases stay consistent with each other)."""
    ordered = sorted(runs, key=lambda r: r["call_s"])
    return ordered[(len(ordered) - 1) // 2]


def parse_importtime(stderr: str, top: int = 12) -> dict[str, Any]:
    """``python -X importtime`` output -> total import seconds (sum of the top-level imports' cumulative
    times) and the slowest top-level packages (cumulative) and modules (self)."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|", 2)
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header line
        rows.append((int(parts[0]), int(parts[1]), parts[2][1:]))  # name keeps its nesting indent
    top_level = [(cum, name) for _, cum, name in rows if not name.startswith(" ")]
    by_cum = sorted(top_level, reverse=True)[:top]
    by_self = sorted(((s, name.strip()) for s, _, name in rows), reverse=True)[:top]
    return {
        "total_s": sum(c for c, _ in top_level) / 1e6,
        "top_cumulative": [{"module": n, "s": c / 1e6} for c, n in by_cum],
        "top_self": [{"module": n, "s": s / 1e6} for s, n in by_self],
    }


# Where a whole ``avgen generate`` spends its time: (label, file suffix, function) found in its profile.
PROCESS_PARTS = (
    ("load pipeline", "avgen/pipeline.py", "from_pretrained"),
    ("generate (pipeline call)", "avgen/pipeline.py", "__call__"),
    ("write MP4", "avgen/writer.py", "write_av"),
)


def profile_summary(stats_file: Path, top: int = 15) -> dict[str, Any]:
    """A cProfile dump of ``avgen generate`` -> total seconds, the cumulative seconds of the parts in
    ``PROCESS_PARTS``, and the ``top`` functions by cumulative time (profiler overhead included)."""
    import pstats

    stats = pstats.Stats(str(stats_file)).stats  # {(file, line, func): (cc, nc, tt, ct, callers)}
    parts = {}
    for label, suffix, func in PROCESS_PARTS:
        hits = [v[3] for (f, _, name), v in stats.items() if f.endswith(suffix) and name == func]
        parts[label] = max(hits) if hits else None
    total = max((v[3] for v in stats.values()), default=0.0)

    def where(key: tuple[str, int, str]) -> str:
        file, line, func = key
        short = file.split("site-packages/")[-1].split("/work/main/")[-1]
        return f"{short}:{line}({func})" if line else func

    # import machinery, runpy and builtins wrap everything: leave them out of the ranking
    ranked = sorted(
        ((k, v) for k, v in stats.items() if not k[0].startswith("<") and k[0] != "~"),
        key=lambda kv: kv[1][3],
        reverse=True,
    )
    return {
        "total_s": total,
        "parts_s": parts,
        "top_cumulative": [{"function": where(k), "s": v[3], "calls": v[1]} for k, v in ranked[:top]],
    }


def generate_argv(pipeline: str, out: Path, steps: int | None) -> list[str]:
    """The arguments after ``avgen``: ``generate PROMPT -o OUT --pipeline P --overwrite [--steps N]``."""
    extra = [] if steps is None else ["--steps", str(steps)]
    return ["generate", PROMPT, "-o", str(out), "--pipeline", pipeline, "--overwrite", *extra]


def time_process(pipeline: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Whole ``avgen generate`` processes (the console script next to this interpreter, else ``python -m
    avgen.cli``): best and median wall time and peak RSS; one more run under ``-X importtime`` for the
    slowest imports (not timed); and ``avgen generate --help`` (imports avgen.cli and the subcommand only)."""
    from benchmarks.perf.machine import run_child

    script = Path(sys.executable).parent / "avgen"
    prog = [str(script)] if script.exists() else [sys.executable, "-m", "avgen.cli"]
    env = {"HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    steps = args.process_steps
    runs = []
    for i in range(args.process_repeats):
        cmd = [*prog, *generate_argv(pipeline, work / f"cli{i}.mp4", steps)]
        r = run_child(cmd, env=env, timeout=args.process_timeout)
        if r["returncode"]:
            return {"error": r["stderr_tail"], "command": " ".join(cmd)}
        runs.append(r)
    walls = sorted(r["wall_s"] for r in runs)
    imp_cmd = [
        sys.executable,
        "-X",
        "importtime",
        "-m",
        "avgen.cli",
        *generate_argv(pipeline, work / "i.mp4", steps),
    ]
    imp = run_child(imp_cmd, env=env, timeout=args.process_timeout, full_stderr=True)
    help_run = run_child([*prog, "generate", "--help"], env=env)
    profile = None
    if args.profile_process:
        stats_file = work / "generate.pstats"
        prof_cmd = [sys.executable, "-m", "cProfile", "-o", str(stats_file), "-m", "avgen.cli"]
        prof = run_child(
            [*prof_cmd, *generate_argv(pipeline, work / "p.mp4", steps)],
            env=env,
            timeout=args.process_timeout,
        )
        profile = profile_summary(stats_file) if prof["returncode"] == 0 else {"error": prof["stderr_tail"]}
    return {
        "command": "avgen " + shlex.join(generate_argv(args.pipeline, Path("out.mp4"), steps)),
        "runs": len(runs),
        "wall_s_best": walls[0],
        "wall_s_median": statistics.median(walls),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "help_wall_s": help_run["wall_s"],
        "imports": parse_importtime(imp["stderr"]),
        "profile": profile,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Everything in the module docstring, for ``args.steps`` step counts."""
    import torch

    from benchmarks.perf import pipelines
    from benchmarks.perf.machine import machine_info, peak_rss_mb

    if args.threads:
        torch.set_num_threads(args.threads)
    with pipelines.workdir() as tmp:
        work = Path(tmp)
        source, description = pipelines.resolve(args.pipeline, work)
        t0 = time.perf_counter()
        pipe = pipelines.load(source, device=args.device)
        load_s = time.perf_counter() - t0
        time_call(pipe, min(args.steps), args, work)  # warm-up: first-call costs stay out of the table
        rows = []
        for steps in args.steps:
            runs = [time_call(pipe, steps, args, work) for _ in range(args.repeats)]
            row = {"steps": steps, **median_run(runs), "repeats": len(runs)}
            row["realtime_factor"] = row["clip_s"] / row["call_s"]
            row["realtime_factor_with_mux"] = row["clip_s"] / (row["call_s"] + row["mux_s"])
            row["peak_rss_mb_so_far"] = peak_rss_mb()
            rows.append(row)
        process = None if args.no_process else time_process(source, work, args)
    return {
        "benchmark": "pipeline_speed",
        "command": args.command,
        "machine": machine_info(),
        "pipeline": description,
        "sampler": args.sampler or pipe.config.sampling.sampler,
        "default_steps": pipe.config.sampling.steps,
        "clip": {"size": list(args.size), "seconds": args.seconds, "fps": args.fps, "prompt": args.prompt},
        "load_s": load_s,
        "steps": rows,
        "process": process,
    }


def main(argv: list[str] | None = None) -> int:
    from benchmarks.perf.mfu import parse_size

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--pipeline", default="avgen-tiny", help="folder, shipped name, random:tiny or random:default"
    )
    p.add_argument("--steps", type=int, nargs="+", default=list(STEPS))
    p.add_argument("--sampler", choices=["euler", "heun", "ab2", "euler_sde"], help="default: the pipeline's")
    p.add_argument("--size", type=parse_size, default=(64, 64), help="HxW pixels")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--fps", type=int, default=24)
    p.add_argument("--prompt", default=PROMPT)
    p.add_argument("--repeats", type=int, default=3, help="calls per step count (the median is kept)")
    p.add_argument(
        "--threads", type=int, default=0, help="torch threads in this process (0: torch's default)"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--process-repeats", type=int, default=3, help="whole avgen generate runs")
    p.add_argument("--process-steps", type=int, help="--steps for avgen generate (default: the pipeline's)")
    p.add_argument("--process-timeout", type=float, default=600.0)
    p.add_argument("--no-process", action="store_true", help="skip the avgen generate processes")
    p.add_argument(
        "--no-profile-process", dest="profile_process", action="store_false", help="skip the cProfile run"
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 1 repeat, 1 process run")
    p.add_argument("--out", type=Path, help="JSON file to write (atomically)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.process_repeats = 1, 1
    if min(args.steps) < 1 or args.repeats < 1 or args.process_repeats < 1:
        p.error("--steps, --repeats and --process-repeats must be >= 1")
    from benchmarks.perf.machine import command_line, emit_result

    args.command = command_line("benchmarks.perf.pipeline_speed", argv)
    emit_result(measure(args), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
