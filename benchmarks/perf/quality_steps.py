"""Quality against sampler steps: the evaluation issue's text-to-audio-video scores at 4, 8, 16, 32, 50 steps.

For each step count this runs ``avgen.metrics.model_eval.evaluate_model`` with
``ModelEvalConfig(sampling={"steps": s}, tasks=("t2av",), per_family=N)`` on the same held-out avgen-synth prompts and
seeds, and keeps per step count: lip-sync (talk: median lag, share within one frame, correlation against
the shuffled-pair floor), impact F1 and AV-Align as a ratio of the ground-truth clips' (bounce), the share of
clips with the caption's colour (talk, bounce, keys), and the generation seconds. The ground-truth row is
the ceiling. ``plateau_steps``: the fewest steps whose scores all lie within ``--tolerance`` of the most
steps' scores (what the speed benchmark's realtime factor should be read at).

    OMP_NUM_THREADS=2 python -m benchmarks.perf.quality_steps --pipeline PIPELINE_DIR --per-family 16 --out benchmarks/perf/results/quality_steps.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

STEPS = (4, 8, 16, 32, 50)
# (column, family, key in evaluate_model's summary); higher is better but for the lag (0 best), the shuffled
# levels (the score with no sync) and the frame change (nearer the ground truth's is better)
METRICS = (
    ("lag_ms", "talk", "lag_ms_median"),
    ("within_one_frame", "talk", "within_one_frame"),
    ("lip_corr", "talk", "correlation"),
    ("shuffled_corr", "talk", "shuffled_correlation"),
    ("phrase_identified", "talk", "phrase_identified"),
    ("impact_f1", "bounce", "impact_f1"),
    ("shuffled_f1", "bounce", "impact_f1_shuffled"),
    ("av_align", "bounce", "av_align"),
    ("av_align_vs_gt", "bounce", "av_align_vs_gt"),
    ("color_talk", "talk", "color_ok"),
    ("color_bounce", "bounce", "color_ok"),
    ("color_keys", "keys", "color_ok"),
    ("frame_change_bounce", "bounce", "frame_change"),
)
# the scores whose plateau decides the step count (the lag is signed and the floor is a reference)
PLATEAU_KEYS = ("within_one_frame", "impact_f1", "av_align_vs_gt", "color_talk", "color_bounce", "color_keys")


def row_from_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """One task's ``{family: {...}}`` summary -> the flat columns of ``METRICS`` (None where absent)."""
    return {col: summary.get(family, {}).get(key) for col, family, key in METRICS}


def plateau_steps(rows: list[dict[str, Any]], tolerance: float) -> int | None:
    """Fewest steps whose every ``PLATEAU_KEYS`` score is within ``tolerance`` (absolute) of, or above, the
    score at the most steps; None without rows. Scores missing at either end are ignored."""
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: r["steps"])
    ref = rows[-1]
    for row in rows:
        ok = all(row[k] is None or ref[k] is None or row[k] >= ref[k] - tolerance for k in PLATEAU_KEYS)
        if ok:
            return row["steps"]
    return ref["steps"]


def to_markdown(result: dict[str, Any]) -> str:
    """The step table as markdown (one row per step count, the ground truth last)."""
    cols = ["steps", "gen_s", "gen_s_per_clip", *(c for c, _, _ in METRICS)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]

    def cell(v: Any) -> str:
        return "-" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))

    for row in [*result["rows"], {**result["ground_truth"], "steps": "ground truth"}]:
        lines.append("| " + " | ".join(cell(row.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from avgen.metrics.model_eval import ModelEvalConfig, evaluate_model
    from benchmarks.perf import pipelines
    from benchmarks.perf.machine import machine_info, peak_rss_mb

    if args.threads:
        torch.set_num_threads(args.threads)
    rows, ground_truth = [], None
    with pipelines.workdir() as tmp:
        source, description = pipelines.resolve(args.pipeline, Path(tmp))
        pipe = pipelines.load(source, device=args.device)
        for steps in args.steps:
            cfg = ModelEvalConfig(
                per_family=args.per_family,
                families=tuple(args.families),
                tasks=("t2av",),
                sampling={"steps": steps},
                size=args.size,
                seconds=args.seconds,
                fps=args.fps,
                batch=args.batch,
            )
            t0 = time.perf_counter()
            report = evaluate_model(pipe, cfg, progress=False)
            gen = report["generation_seconds"]["t2av"]
            clips = args.per_family * len(args.families)
            row = {"steps": steps, **row_from_summary(report["summary"]["t2av"])}
            row.update(gen_s=gen, gen_s_per_clip=gen / clips, eval_s=time.perf_counter() - t0)
            rows.append(row)
            ground_truth = row_from_summary(report["summary"]["gt"])
    return {
        "benchmark": "quality_steps",
        "command": args.command,
        "machine": machine_info(),
        "pipeline": description,
        "sampler": pipe.config.sampling.sampler,
        "config": {
            "per_family": args.per_family,
            "families": list(args.families),
            "size": list(args.size),
            "seconds": args.seconds,
            "fps": args.fps,
            "batch": args.batch,
        },
        "rows": rows,
        "ground_truth": ground_truth,
        "tolerance": args.tolerance,
        "plateau_steps": plateau_steps(rows, args.tolerance),
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    from avgen.metrics.model_eval import SCORED_FAMILIES
    from benchmarks.perf.mfu import parse_size

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline", default="avgen-tiny", help="folder, shipped name, or random:tiny/default")
    p.add_argument("--steps", type=int, nargs="+", default=list(STEPS))
    p.add_argument("--per-family", type=int, default=16, help="held-out prompts per family (>= 2)")
    p.add_argument("--families", nargs="+", default=list(SCORED_FAMILIES), choices=SCORED_FAMILIES)
    p.add_argument("--size", type=parse_size, default=(64, 64), help="HxW pixels")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--fps", type=int, default=24)
    p.add_argument("--batch", type=int, default=8, help="prompts per pipeline call")
    p.add_argument("--tolerance", type=float, default=0.05, help="plateau: absolute slack on each score")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, help="JSON file to write; the markdown table goes beside it (.md)")
    args = p.parse_args(argv)
    if min(args.steps) < 1:
        p.error("--steps must be >= 1")
    from benchmarks.perf.machine import command_line

    args.command = command_line("benchmarks.perf.quality_steps", argv)
    result = measure(args)
    table = to_markdown(result)
    if args.out:
        from avgen.atomic import write_text
        from avgen.metrics.report import write_json

        write_json(args.out, result)
        write_text(args.out.with_suffix(".md"), table + "\n", mkdir_parents=True)
    print(table)
    print(f"plateau at {result['plateau_steps']} steps (tolerance {args.tolerance})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
