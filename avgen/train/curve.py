"""Learning curves: ``avgen eval curve RUN``, ``avgen eval model``'s scores of a run's snapshots by samples seen.

The points of a run are its snapshots (``RUN/snapshots/step_N/pipeline``, written every
``loop.snapshot_every`` steps, ``avgen.train.snapshots``) and its final ``RUN/pipeline`` unless a snapshot
holds the same step. Each is scored by ``avgen.metrics.model_eval.evaluate_model`` with the given options,
and its report kept beside it in ``eval_KEY/report.json`` (KEY: a digest of the options; the final
pipeline's under ``RUN/final_eval/step_N/``), so a rerun scores only new points and other options score
afresh. ``--out`` (default ``RUN/curve``) gets:

    curve.json   per point: name, step, samples_seen, its report's summary less ``gt``; ``gt`` once, the
                 options, and the points skipped with why
    curve.md     per task, a row per point of the headline metrics (``avgen.metrics.curve_report``), gt last
    curve.png    a panel per headline metric against samples seen, log axis (needs the eval extra's
                 matplotlib; without it a note says so and json and md are still written)

A snapshot that cannot be read or loaded is skipped with a warning naming it and listed in curve.json: one
damaged folder does not cost the rest of the curve. No point left to score is an error. A packed run
(``avgen train pack``) carries its snapshots' reports but not their pipelines: its curve reads the points
scored under the same options and skips the others, naming them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from avgen.atomic import check_writable_dir, write_text
from avgen.errors import AVGenError, CheckpointError, ConfigError
from avgen.metrics._deps import MissingDependencyError, missing
from avgen.metrics.curve_report import curve_markdown, plot_curve
from avgen.metrics.model_eval import ModelEvalConfig, evaluate_model
from avgen.metrics.model_eval_args import add_model_eval_arguments, model_eval_config
from avgen.metrics.report import write_json
from avgen.pipeline import AVPipeline
from avgen.train.snapshots import read_snapshot, snapshot_folders, snapshot_root

SCORED_TASKS = ("joint", "distill")  # the run tasks whose export is a pipeline
FINAL_EVAL = "final_eval"


@dataclass(frozen=True)
class Point:
    """One model of a run to score: ``pipeline`` folder, where its reports are kept (``home``)."""

    name: str
    step: int
    samples_seen: int | None
    pipeline: Path
    home: Path


def options_key(cfg: ModelEvalConfig) -> str:
    """A short digest of the options that decide a report (all of ``cfg`` but ``save_clips``)."""
    options = {k: v for k, v in asdict(cfg).items() if k != "save_clips"}
    return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:10]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _check_run(run: Path) -> None:
    if not run.is_dir():
        raise ConfigError(f"{run}: not a folder; give a training run's folder (the recipe's out)")
    config = _read_json(run / "config.json")
    task = config.get("task") if isinstance(config, dict) else None
    if task is not None and task not in SCORED_TASKS:
        raise ConfigError(f"{run}: a {task!r} run; learning curves score the pipelines of joint runs")


def run_points(run: str | Path) -> tuple[list[Point], list[dict[str, str]]]:
    """(points to score by step, skipped snapshots as ``{"folder", "error"}``) of a run folder.

    ConfigError when the run has neither a snapshot nor a final pipeline, naming where it looked.
    """
    run = Path(run)
    _check_run(run)
    points, skipped, per_step = [], [], None
    for folder in snapshot_folders(run):
        try:
            record = read_snapshot(folder)
            scored = any(folder.glob("eval_*/report.json"))  # a packed run keeps reports, not pipelines
            if not (folder / "pipeline" / "pipeline.json").is_file() and not scored:
                raise CheckpointError(f"{folder}: damaged snapshot (no pipeline/pipeline.json)")
        except (AVGenError, OSError) as e:
            _skip(skipped, folder, str(e))
            continue
        if record["step"]:
            per_step = record["samples_seen"] // record["step"]
        points.append(Point(folder.name, record["step"], record["samples_seen"], folder / "pipeline", folder))
    final = _final_point(run, per_step)
    if final is not None and all(p.step != final.step for p in points):
        points.append(final)
    if not points and not skipped:
        raise ConfigError(
            f"{run}: no snapshots in {snapshot_root(run)} and no final pipeline in {run / 'pipeline'}; "
            "train with loop.snapshot_every=N (e.g. --set loop.snapshot_every=500) to export the model "
            "every N steps"
        )
    return sorted(points, key=lambda p: p.step), skipped


def _final_point(run: Path, per_step: int | None) -> Point | None:
    """``RUN/pipeline`` at the step of ``RUN/metrics.json`` (None without a pipeline; skipped with a
    warning when its step is unknown)."""
    if not (run / "pipeline" / "pipeline.json").is_file():
        return None
    metrics = _read_json(run / "metrics.json")
    step = metrics.get("step") if isinstance(metrics, dict) else None
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        warnings.warn(
            f"{run / 'pipeline'}: skipped, its step is unknown ({run / 'metrics.json'})", stacklevel=3
        )
        return None
    seen = metrics.get("samples_seen", None if per_step is None else step * per_step)
    return Point("final", step, seen, run / "pipeline", run / FINAL_EVAL / f"step_{step:08d}")


def _skip(skipped: list[dict[str, str]], folder: Path, error: str) -> None:
    warnings.warn(f"skipping a snapshot: {error}", stacklevel=3)
    skipped.append({"folder": str(folder), "error": error})


def score_point(point: Point, cfg: ModelEvalConfig, device: str = "cpu") -> tuple[dict[str, Any], bool]:
    """(the report of ``point`` under ``cfg``, whether it was read from its cache rather than scored).

    CheckpointError naming the folder when the pipeline cannot be loaded."""
    cache = point.home / f"eval_{options_key(cfg)}" / "report.json"
    report = _read_json(cache)
    if isinstance(report, dict) and isinstance(report.get("summary"), dict):
        return report, True
    if not (point.pipeline / "pipeline.json").is_file():
        raise CheckpointError(
            f"{point.pipeline}: not here, and {point.name} has no report under these options (a packed run "
            "carries the reports scored before it was packed); score it with the options it was scored with"
        )
    try:
        pipe = AVPipeline.from_pretrained(point.pipeline, device=device)
    except Exception as e:  # whatever a damaged folder raises (safetensors, JSON, shapes)
        raise CheckpointError(f"{point.pipeline}: cannot be loaded ({type(e).__name__}: {e})") from e
    return evaluate_model(pipe, cfg, cache.parent, progress=False), False


def learning_curve(
    run: str | Path, cfg: ModelEvalConfig, out: str | Path, *, device: str = "cpu", progress: bool = True
) -> dict[str, Any]:
    """Score every point of ``run`` (cached reports reused) and write curve.json, curve.md and curve.png
    into ``out``; returns the curve (``points`` also say whether each was ``cached``)."""
    if cfg.save_clips:
        raise ConfigError(
            "learning curves keep reports only; score one snapshot with avgen eval model for clips"
        )
    run, out = Path(run), Path(out)
    points, skipped = run_points(run)
    rows, gt = [], None
    bar = tqdm(points, desc="snapshots", unit="model", disable=not progress)
    for point in bar:
        bar.set_postfix(step=point.step)
        try:
            report, cached = score_point(point, cfg, device)
        except CheckpointError as e:  # a damaged pipeline folder: one point lost, not the curve
            _skip(skipped, point.home, str(e))
            continue
        summary = dict(report["summary"])
        gt = summary.pop("gt", gt)
        rows.append({"name": point.name, "step": point.step, "samples_seen": point.samples_seen})
        rows[-1] |= {"pipeline": str(point.pipeline), "cached": cached, "summary": summary}
    bar.close()
    if not rows:
        raise ConfigError(f"{run}: no snapshot could be scored ({len(skipped)} skipped, see the warnings)")
    config = {k: v for k, v in asdict(cfg).items() if k != "save_clips"}
    curve = {"run": str(run), "config": config, "key": options_key(cfg), "points": rows, "gt": gt}
    curve["skipped"] = skipped
    write_json(out / "curve.json", curve)
    write_text(out / "curve.md", curve_markdown(curve))
    if missing(("matplotlib",)):
        print(
            "note: curve.png needs matplotlib: pip install 'avgen[eval]'; wrote curve.json and curve.md",
            file=sys.stderr,
        )
    else:
        plot_curve(curve, out / "curve.png")
    return curve


def main(argv: list[str]) -> int:
    """``avgen eval curve RUN [--out DIR] [avgen eval model's options]``."""
    parser = argparse.ArgumentParser(
        prog="avgen eval curve",
        description="score every snapshot of a training run (loop.snapshot_every) with avgen eval model and "
        "write the headline metrics against samples seen: curve.json, curve.md, curve.png",
    )
    parser.add_argument("run", type=Path, help="training run folder (the recipe's out)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the curve (default RUN/curve)")
    add_model_eval_arguments(parser)
    args = parser.parse_args(argv)
    cfg = model_eval_config(args)
    if gone := missing(("cv2", "librosa")):
        raise MissingDependencyError(
            f"avgen eval curve needs {', '.join(gone)}: install the eval extra: pip install 'avgen[eval]'"
        )
    out = args.out or args.run / "curve"
    check_writable_dir(out, what="--out")
    curve = learning_curve(args.run, cfg, out, device=args.device)
    print(curve_markdown(curve), end="")
    cached = sum(p["cached"] for p in curve["points"])
    files = ", ".join(n for n in ("curve.json", "curve.md", "curve.png") if (out / n).is_file())
    print(f"{len(curve['points'])} points ({cached} from cache) -> {out}: {files}")
    return 0
