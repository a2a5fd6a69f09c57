"""How a learning curve reads: its headline metrics, as a markdown table per task and a PNG of small panels.

A curve (``avgen.train.curve``) is a dict::

    {"points": [{"name", "step", "samples_seen", "summary": {task: {family: {...}}}}, ...],
     "gt": {family: {...}} or None, ...}

with points ordered by step and each ``summary`` the ``summary`` of an ``avgen eval model`` report less its
``gt`` row (the ground-truth clips score the same at every step, so ``gt`` is kept once).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avgen.metrics._deps import require
from avgen.metrics.model_eval import SCORED_FAMILIES
from avgen.metrics.report import save_png


@dataclass(frozen=True)
class Headline:
    """One metric of the curve: ``summary[task][family][key]``. ``floor``: the key of what the same score
    reaches with no sync (shuffled pairs), shown beside it in brackets and drawn dotted."""

    family: str
    key: str
    label: str
    floor: str | None = None


def _family_headlines(family: str) -> tuple[Headline, ...]:
    shown = {"talk": "face", "bounce": "ball", "keys": "bars"}[family]
    common = (
        Headline(family, "color_ok", f"{family}: {shown} of the asked colour"),
        Headline(family, "background_ok", f"{family}: backdrop right"),
        Headline(family, "frame_change", f"{family}: frame change (0-255)"),
    )
    own = {
        "talk": (
            Headline("talk", "lag_ms_median", "talk: lip-sync lag median (ms)"),
            Headline("talk", "correlation", "talk: lip-sync corr. (shuffled)", floor="shuffled_correlation"),
            Headline("talk", "phrase_identified", "talk: phrase identified"),
        ),
        "bounce": (
            Headline("bounce", "impact_f1", "bounce: impact F1 (shuffled)", floor="impact_f1_shuffled"),
        ),
        "keys": (),
    }[family]
    return common + own


HEADLINES: tuple[Headline, ...] = tuple(h for f in SCORED_FAMILIES for h in _family_headlines(f))


def headlines(curve: dict[str, Any]) -> list[Headline]:
    """The headline metrics of the families the curve's points were scored on."""
    families = {f for p in curve["points"] for per_task in p["summary"].values() for f in per_task}
    return [h for h in HEADLINES if h.family in families]


def curve_tasks(curve: dict[str, Any]) -> list[str]:
    """The tasks of the curve's points, in the order they were scored."""
    return list(dict.fromkeys(t for p in curve["points"] for t in p["summary"]))


def _value(summary: dict[str, Any] | None, h: Headline, key: str | None = None) -> Any:
    return ((summary or {}).get(h.family) or {}).get(key or h.key)


def _fmt(x: Any) -> str:
    return "n/a" if x is None else (f"{x:.3g}" if isinstance(x, float) else str(x))


def _cell(summary: dict[str, Any] | None, h: Headline) -> str:
    floor = f" ({_fmt(_value(summary, h, h.floor))})" if h.floor else ""
    return _fmt(_value(summary, h)) + floor


def _option(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k}={v}" for k, v in value.items()) + ")" if value else "(the pipeline's)"
    return str(value)


def _step_label(point: dict[str, Any]) -> str:
    return f"{point['step']} (final)" if point["name"] == "final" else str(point["step"])


def curve_markdown(curve: dict[str, Any]) -> str:
    """One table per task: a row per point (step, samples seen, the headline metrics), ground truth last."""
    shown = headlines(curve)
    options = curve.get("config", {})
    lines = [f"# Learning curve of {curve.get('run', 'a run')}", ""]
    if options:
        said = ", ".join(f"{k} {_option(v)}" for k, v in options.items() if k != "save_clips")
        lines += [f"Scored with `avgen eval curve`: {said}.", ""]
    lines += ["Brackets: the same score for shuffled pairs (no sync).", ""]
    for task in curve_tasks(curve):
        lines += [f"## {task}", ""]
        lines += ["| step | samples seen | " + " | ".join(h.label for h in shown) + " |"]
        lines += ["|---|---|" + "---|" * len(shown)]
        for p in curve["points"]:
            seen = "n/a" if p["samples_seen"] is None else f"{p['samples_seen']:,}"
            cells = [_cell(p["summary"].get(task), h) for h in shown]
            lines.append(f"| {_step_label(p)} | {seen} | " + " | ".join(cells) + " |")
        if curve.get("gt"):
            lines.append("| ground truth | | " + " | ".join(_cell(curve["gt"], h) for h in shown) + " |")
        lines.append("")
    for skipped in curve.get("skipped", []):
        lines.append(f"- skipped {skipped['folder']}: {skipped['error']}")
    return "\n".join(lines).rstrip() + "\n"


def _short(n: float) -> str:
    """16000 -> "16k", 2500000 -> "2.5M"."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:g}"


def plot_curve(curve: dict[str, Any], path: str | Path) -> Path:
    """One small panel per headline metric against samples seen (log axis): a line per task, its shuffled
    floor dotted, ground truth dashed. Needs matplotlib (the eval extra); written atomically."""
    require("matplotlib")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    shown = headlines(curve)
    points = [p for p in curve["points"] if p["samples_seen"]]  # a log axis has no place for 0 or unknown
    xs = sorted({p["samples_seen"] for p in points})
    cols = min(4, max(1, len(shown)))
    rows = -(-max(1, len(shown)) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False, constrained_layout=True
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, h in zip(axes.flat, shown):
        for i, task in enumerate(curve_tasks(curve)):
            colour = colours[i % len(colours)]
            for key, style in ((h.key, "-"), (h.floor, ":")):
                xy = (
                    [(p["samples_seen"], _value(p["summary"].get(task), h, key)) for p in points]
                    if key
                    else []
                )
                xy = [(x, y) for x, y in xy if y is not None]
                if xy:
                    label, marker = (task, "o") if style == "-" else (f"{task} shuffled", "")
                    ax.plot(*zip(*xy), style, color=colour, marker=marker, ms=3, lw=1, label=label)
        gt = _value(curve.get("gt"), h)
        if gt is not None:
            ax.axhline(gt, color="0.2", ls="--", lw=1, label="ground truth")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # labels on decades only: minor ones overlap
        if xs and max(xs) < 10 * min(xs):  # within one decade, which may hold no decade: label the points
            ax.minorticks_off()
            ax.set_xticks(xs, [_short(x) for x in xs])
        ax.set_xlabel("samples seen", fontsize=7)
        ax.set_title(h.label, fontsize=8, loc="left")
        ax.tick_params(which="both", labelsize=6)
    for ax in list(axes.flat)[len(shown) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        axes.flat[0].legend(handles, labels, fontsize=6)
    return save_png(fig, path, dpi=90, what="the learning-curve image")
