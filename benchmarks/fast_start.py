"""Fast start: the whole ``avgen generate`` process for the default 2-s clip of avgen-tiny, against the
pipeline call it wraps and the floor that ``import torch`` sets.

Children (fresh processes, ``--repeats`` each, median and best wall seconds, peak RSS; run one after another
from the repository root with this environment): ``python -c "import torch"``, ``python -c "import
avgen.pipeline"`` and ``avgen generate PROMPT -o OUT --overwrite`` (the console script next to this
interpreter, else ``python -m avgen.cli``). One more ``avgen generate`` under ``python -X importtime`` lists
its slowest imports (not timed).

In this process, after the children: ``AVPipeline.from_pretrained("avgen-tiny")`` (the first load imports
what loading needs, a second one does not), the default text encoder alone, the pipeline call
(the first call, then the median of ``--repeats`` more) and ``write_av`` of its clip. The generate process
minus the first in-process call is what starting costs: interpreter, imports, loading, the checks before
loading, writing the file and exiting.

    OMP_NUM_THREADS=1 python -m benchmarks.fast_start   # writes benchmarks/results/fast_start.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.perf.machine import command_line, machine_info, run_child
from benchmarks.perf.pipeline_speed import parse_importtime

PROMPT = "a big red ball bounces on a blue floor"
ENV = {"HF_HUB_OFFLINE": "1"}


def _generate_args(out: Path) -> list[str]:
    return ["generate", PROMPT, "-o", str(out), "--overwrite"]


def _generate_cmd(out: Path) -> list[str]:
    script = Path(sys.executable).parent / "avgen"
    prog = [str(script)] if script.exists() else [sys.executable, "-m", "avgen.cli"]
    return [*prog, *_generate_args(out)]


def child_runs(name: str, cmd: list[str], repeats: int, timeout: float) -> dict[str, Any]:
    """``repeats`` runs of ``cmd``: median / best wall seconds and peak RSS; a failure stops with its error."""
    walls, rss = [], []
    for _ in range(repeats):
        r = run_child(cmd, env=ENV, timeout=timeout)
        if r["returncode"]:
            raise RuntimeError(f"{name} failed ({r['returncode']}): {r['stderr_tail']}")
        walls.append(r["wall_s"])
        rss.append(r["peak_rss_mb"] or 0.0)
    return {"what": name, "median_s": statistics.median(walls), "best_s": min(walls), "peak_rss_mb": max(rss)}


def _timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def in_process(repeats: int, work: Path) -> dict[str, float]:
    """Seconds of the loads, the text encoder's load, the first and later (median) pipeline calls and the
    write, in this process."""
    from avgen.io import write_av
    from avgen.model.text import TextEncoder, TextEncoderConfig
    from avgen.pipeline import AVPipeline

    _, first_load = _timed(lambda: AVPipeline.from_pretrained("avgen-tiny"))
    pipe, load = _timed(lambda: AVPipeline.from_pretrained("avgen-tiny"))
    _, text = _timed(lambda: TextEncoder.from_config(TextEncoderConfig()))
    _, first_call = _timed(lambda: pipe(PROMPT, progress=False))  # also the warm-up: allocator, oneDNN
    calls = [_timed(lambda: pipe(PROMPT, progress=False))[1] for _ in range(repeats)]
    clip = pipe(PROMPT, progress=False)
    _, write = _timed(lambda: write_av(work / "in_process.mp4", clip, overwrite=True))
    return {
        "first_load_s": first_load,
        "load_s": load,
        "text_s": text,
        "first_call_s": first_call,
        "call_s": statistics.median(calls),
        "write_s": write,
    }


def markdown(
    rows: list[dict[str, Any]], inproc: dict[str, float], imports: dict[str, Any], info: dict, cmd: str
) -> str:
    by = {r["what"]: r for r in rows}
    gen = by["avgen generate"]["median_s"]
    lines = [
        "# Fast start: `avgen generate` for the default 2-s clip",
        "",
        f"`{cmd}`",
        "",
        f"Machine: {info['cpu']}, {info['cores']} logical cores; torch {info['torch']} with {info['torch_threads']} "
        f"thread(s) (OMP_NUM_THREADS={info['omp_num_threads']}); load average at the end "
        f"{', '.join(map(str, info['load_average']))}. Prompt {PROMPT!r}, avgen-tiny's defaults.",
        "",
        "| fresh process | median (s) | best (s) | peak RSS (MiB) |",
        "|---|---|---|---|",
        *(
            f"| `{r['what']}` | {r['median_s']:.2f} | {r['best_s']:.2f} | {r['peak_rss_mb']:.0f} |"
            for r in rows
        ),
        "",
        "| in this process | s |",
        "|---|---|",
        f'| `AVPipeline.from_pretrained("avgen-tiny")`, first (imports what loading needs) | {inproc["first_load_s"]:.2f} |',
        f'| `AVPipeline.from_pretrained("avgen-tiny")`, again | {inproc["load_s"]:.2f} |',
        f"| of it: the default text encoder (int8 MiniLM pack) | {inproc['text_s']:.2f} |",
        f"| pipeline call, first | {inproc['first_call_s']:.2f} |",
        f"| pipeline call, later (median) | {inproc['call_s']:.2f} |",
        f"| `write_av` (MP4) | {inproc['write_s']:.2f} |",
        "",
        f"Everything but the first pipeline call takes {gen - inproc['first_call_s']:.2f} s of the {gen:.2f} s "
        f"process ({inproc['first_call_s'] / gen:.0%} of it is that call).",
        "",
        f"Slowest top-level imports of `avgen generate` (cumulative; {imports['total_s']:.2f} s of imports):",
        "",
        "| module | s |",
        "|---|---|",
        *(f"| `{m['module']}` | {m['s']:.2f} |" for m in imports["top_cumulative"][:8]),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="runs of each child and pipeline calls")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per child before it is killed")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "fast_start.md")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = [
            child_runs(
                'python -c "import torch"', [sys.executable, "-c", "import torch"], args.repeats, args.timeout
            ),
            child_runs(
                'python -c "import avgen.pipeline"',
                [sys.executable, "-c", "import avgen.pipeline"],
                args.repeats,
                args.timeout,
            ),
            child_runs("avgen generate", _generate_cmd(work / "cli.mp4"), args.repeats, args.timeout),
        ]
        imp_cmd = [sys.executable, "-X", "importtime", "-m", "avgen.cli", *_generate_args(work / "i.mp4")]
        imp = run_child(imp_cmd, env=ENV, timeout=args.timeout, full_stderr=True)
        imports = parse_importtime(imp["stderr"])
        inproc = in_process(args.repeats, work)
    md = markdown(rows, inproc, imports, machine_info(), command_line("benchmarks.fast_start", argv))
    from avgen.atomic import write_text

    write_text(args.out, md, mkdir_parents=True)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
