"""Long clips: cost per second of clip and peak memory, whole-clip vs windowed, seams, and quality per window.

Each measurement runs in a fresh process (peak RSS, ``ru_maxrss``, is a process's high-water mark): load the
pipeline, one 0.5-s warm-up call (allocator, oneDNN primitives), then the timed call(s). ``whole`` is one
pass over the clip (``window=None``); ``windowed`` reads ``pipe.stream(..., window=, overlap=)`` piece by
piece (the same bits as ``pipe(..., window=...)``) and also reports the time to the first piece. Costs are
ratios to the 2-s whole clip of the same run, so load on a shared machine shifts them less than the
seconds. RSS growth = peak RSS - RSS after the warm-up; it includes the clip the run keeps (a streaming
writer keeps none of it).

Seams (``seam_metrics``): video and audio change at the window joins over the same change inside the
windows, for the default crossfade, a hard cut, and a shorter held part (``--hold``), with the whole-clip
pass measured at the same positions as a control. Quality (``segment_scores``): the prompted scores of
``avgen.metrics.prompted`` and the picture level, frame change and audio level per consecutive 2-s segment
of the longest windowed clip, against 2-s clips; and per segment of a second prompt's clips (drift).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/long_clips.py --seconds 2 8 32 60 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avgen.atomic import write_text
from avgen.diffusion.windows import Windowing, WindowPlan, plan_windows
from avgen.metrics.prompted import score_prompted
from avgen.pipeline import AVPipeline

PROMPT = "a big red ball bounces quickly"  # captions of avgen-tiny's grammar: read as written
DRIFT_PROMPT = "a small blue ball bounces slowly"
SEGMENT = 2.0  # seconds per quality segment: the model's trained length


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


# -- seams -------------------------------------------------------------------------------------------------
def _frame_change(video: np.ndarray) -> np.ndarray:
    """(T-1,) mean |frame t+1 - frame t| in levels 0-255."""
    v = video.astype(np.float32)
    return np.abs(np.diff(v, axis=0)).mean(axis=(1, 2, 3))


def _hf_level(audio: np.ndarray, at: np.ndarray, half: int) -> np.ndarray:
    """RMS of the first difference of mono ``audio`` over ``[n - half, n + half)`` at each sample ``n``: a
    click is a burst of it."""
    d = np.diff(audio.mean(0))
    return np.array([np.sqrt(np.mean(d[max(0, n - half) : n + half] ** 2)) for n in at])


def seam_metrics(video: np.ndarray, audio: np.ndarray, fps: float, rate: int, plan: WindowPlan) -> dict:
    """Change at each join over the same change inside the windows at the same phase of the latent grid.

    Joins: the cut (where window k + 1's decode takes over: the end of the crossfade, and of the held
    part) and the fade start (window k + 1's first frame). Inside: ``plan.grid`` frames after each cut,
    within window k + 1's own generated part and at the same phase of the token grid, since the model
    puts onsets and motion on that grid. Video: mean |frame t - frame t-1|; audio: 2-ms RMS of the sample
    difference, which a click or a sudden onset raises.
    """
    cuts = np.array([s + plan.fade for s in plan.starts[1:]])
    fades = np.array(plan.starts[1:])
    inside = cuts + plan.grid
    keep = inside < len(video)
    change = _frame_change(video)
    half = max(1, rate // 1000)

    def audio_at(frames: np.ndarray) -> np.ndarray:
        return _hf_level(audio, np.round(frames * rate / fps).astype(int), half)

    v_in, a_in = change[inside[keep] - 1].mean(), audio_at(inside[keep]).mean()
    return {
        "joins": len(cuts),
        "video_cut": round(float(change[cuts - 1].mean() / v_in), 3),
        "video_cut_worst": round(float(change[cuts - 1].max() / v_in), 3),
        "video_fade_start": round(float(change[fades - 1].mean() / v_in), 3),
        "audio_cut": round(float(audio_at(cuts).mean() / a_in), 3),
        "audio_cut_worst": round(float(audio_at(cuts).max() / a_in), 3),
        "audio_fade_start": round(float(audio_at(fades).mean() / a_in), 3),
    }


# -- quality -----------------------------------------------------------------------------------------------
def segment_scores(
    video: np.ndarray, audio: np.ndarray, fps: float, rate: int, prompt: str
) -> list[dict[str, Any]]:
    """Per consecutive ``SEGMENT``-second part: impact F1 and caption colour share (prompted scores),
    brightness (mean level), frame change, audio RMS."""
    frames, samples = round(SEGMENT * fps), round(SEGMENT * rate)
    out = []
    for i in range(len(video) // frames):
        v, a = video[i * frames : (i + 1) * frames], audio[:, i * samples : (i + 1) * samples]
        s = score_prompted(v, fps, a, rate, prompt)
        out.append(
            {
                "start": i * SEGMENT,
                "impact_f1": round(float(s["impact"]["f1"]), 3),
                "colour": round(float((s.get("prompt") or {}).get("color_fraction", float("nan"))), 3),
                "level": round(float(v.mean()), 1),
                "change": round(float(_frame_change(v).mean()), 2),
                "rms": round(float(np.sqrt(np.mean(a**2))), 4),
            }
        )
    return out


# -- one measurement (child process) ------------------------------------------------------------------------
def run_one(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    pipe = AVPipeline.from_pretrained(args.pipeline)
    pipe(args.prompt, seconds=0.5, progress=False)  # warm-up
    mode, seconds = args.child, args.child_seconds
    geom = pipe.geometry(seconds, pipe.config.height, pipe.config.width)
    hold = args.hold if mode == "hold" else None
    plan = plan_windows(geom, pipe.dit.config.tokens, args.window, args.overlap, hold)
    fps, rate = float(geom.fps), geom.sample_rate

    def reference() -> float:  # a 2-s clip in this process: the load on the machine now
        t0 = time.perf_counter()
        pipe(args.prompt, seconds=2.0, seed=1000, progress=False)
        return time.perf_counter() - t0

    refs = [reference()]
    before = _rss_mb()
    times, firsts, clips = [], [], []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        if mode == "whole":
            clip = pipe(args.prompt, seconds=seconds, seed=seed, progress=False)
        else:
            window = Windowing(args.window, args.overlap, crossfade=mode != "cut", hold=hold)
            pieces = []
            for piece in pipe.stream(args.prompt, seconds=seconds, seed=seed, window=window, progress=False):
                if not pieces:
                    firsts.append(time.perf_counter() - t0)
                pieces.append(piece)
            video = np.concatenate([p.video for p in pieces])
            clip = pieces[0].replace(video=video, audio=np.concatenate([p.audio for p in pieces], axis=1))
        times.append(time.perf_counter() - t0)
        clips.append(clip)
    refs.append(reference())
    out = {
        "mode": mode,
        "overlap": args.overlap,
        "prompt": args.prompt,
        "seconds": seconds,
        "seeds": args.seeds,
        "call_s": round(statistics.median(times), 3),
        "ref_2s_s": round(statistics.mean(refs), 3),
        "ratio": round(statistics.median(times) / seconds / (statistics.mean(refs) / 2), 3),
        "first_piece_s": round(statistics.median(firsts), 3) if firsts else None,
        "windows": len(plan) if mode != "whole" else 1,
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(_peak_mb(), 1),
        "output_mb": round((clips[0].video.nbytes + clips[0].audio.nbytes) / 2**20, 1),
    }
    out["growth_mb"] = round(max(0.0, out["peak_rss_mb"] - before), 1)
    if len(plan) > 1:
        seams = [seam_metrics(c.video, c.audio, fps, rate, plan) for c in clips]
        out["seams"] = {k: round(float(np.mean([s[k] for s in seams])), 3) for k in seams[0]}
        out["seams"]["joins"] = sum(s["joins"] for s in seams)
    if args.score:
        out["quality"] = [segment_scores(c.video, c.audio, fps, rate, args.prompt) for c in clips]
    return out


def _spawn(args: argparse.Namespace, mode: str, seconds: float, **extra: Any) -> dict[str, Any]:
    given = {"seeds": 1, "prompt": args.prompt, "score": False, "overlap": args.overlap, **extra}
    cmd = [sys.executable, __file__, "--child", mode, "--child-seconds", str(seconds)]
    cmd += ["--seeds", str(given["seeds"]), "--prompt", given["prompt"], "--threads", str(args.threads)]
    cmd += ["--window", str(args.window), "--overlap", str(given["overlap"]), "--hold", str(args.hold)]
    cmd += ["--pipeline", args.pipeline] + (["--score"] if given["score"] else [])
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps({k: v for k, v in result.items() if k != "quality"}), flush=True)
    return result


# -- report -------------------------------------------------------------------------------------------------
def _mean_sd(values: list[float]) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def report(args: argparse.Namespace, runs: list[dict[str, Any]], command: str, wall: float) -> str:
    base = next(r for r in runs if r["mode"] == "whole" and r["seconds"] == 2 and r["prompt"] == args.prompt)
    per_s = base["call_s"] / 2
    timed = [r for r in runs if r["mode"] in ("whole", "windowed") and r["prompt"] == args.prompt]
    lines = [
        "# Long clips: whole-clip vs windowed generation (issue 45)",
        "",
        f"`{command}` ({wall / 60:.1f} min)",
        "",
        f"{args.pipeline} on a CPU ({platform.machine()}, {os.cpu_count()} logical cores, load average at "
        f"the end {', '.join(f'{x:.2f}' for x in os.getloadavg())}), torch threads {args.threads}, window "
        f"{args.window} s, overlap {args.overlap} s. Other work on the machine makes the seconds noisy; the "
        "ratios are within this one run. One process per row; cost per clip-second is relative to a 2-s "
        "clip timed in "
        "the same process just before and after the measured call (the load changes over minutes), and, "
        f"for comparison, to the first row's 2-s clips (median of {base['seeds']} seeds, "
        f"{base['call_s']:.2f} s): both references move with the load, so read the two together with "
        "the window passes per 2 s of clip (window count x window / clip length, exact), which is what a "
        f"windowed clip costs in 2-s clips when one window costs one 2-s clip. Whole-clip passes stop at "
        f"{args.whole_max:g} s (`--whole-max`): their cost per clip-second grows with the length.",
        "",
        "| mode | overlap s | clip s | windows | call s | 2-s clip, same process s | per clip-second"
        " (x 2-s clip, same process) | (x 2-s clip of the first row) | window passes per 2 s of clip |"
        " first piece s | peak RSS MB | RSS growth MB | of it, the clip MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in timed:
        ratio, global_ratio = r["ratio"], r["call_s"] / r["seconds"] / per_s
        first = "-" if r["first_piece_s"] is None else f"{r['first_piece_s']:.2f}"
        overlap = "-" if r["mode"] == "whole" else f"{r['overlap']:g}"
        passes = "-" if r["mode"] == "whole" else f"{r['windows'] * args.window / r['seconds']:.2f}"
        lines.append(
            f"| {r['mode']} | {overlap} | {r['seconds']:g} | {r['windows']} | {r['call_s']:.2f} | "
            f"{r['ref_2s_s']:.2f} | **{ratio:.2f}** | {global_ratio:.2f} | {passes} | {first} | "
            f"{r['peak_rss_mb']:.0f} | {r['growth_mb']:.1f} | {r['output_mb']:.1f} |"
        )
    names = {
        "windowed": "crossfade",
        "cut": "hard cut",
        "hold": f"crossfade, first {args.hold:g} s held",
        "whole": "whole-clip pass (control)",
    }

    seams = [r for r in runs if "seams" in r and r["prompt"] == args.prompt]
    if seams:
        lines += [
            "",
            "## Seams",
            "",
            "Change at the joins over the same change inside the windows, at the same phase of the latent "
            "grid (1 = a join is like any other place; see `seam_metrics`). Cut: where the next window's "
            "decode takes over (end of the crossfade and of the held part); fade start: the next window's "
            "first frame. Video: mean |frame t - frame t-1|; audio: 2-ms RMS of the sample difference (a "
            "click or a sudden onset raises it). The whole-clip control is measured at the same positions.",
            "",
            "| clip | overlap s | s | joins | video cut (worst) | video fade start | audio cut (worst) |"
            " audio fade start |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in seams:
            m = r["seams"]
            lines.append(
                f"| {names[r['mode']]} | {r['overlap']:g} | {r['seconds']:g} | {m['joins']} | {m['video_cut']:.2f} "
                f"({m['video_cut_worst']:.2f}) | {m['video_fade_start']:.2f} | {m['audio_cut']:.2f} "
                f"({m['audio_cut_worst']:.2f}) | {m['audio_fade_start']:.2f} |"
            )
    keys = ("impact_f1", "colour", "level", "change", "rms")
    long = next((r for r in runs if r["mode"] == "windowed" and "quality" in r), None)
    if long:
        groups = [(f"2-s clips, {base['seeds']} seeds", [q[0] for q in base["quality"]])]
        segments, total = long["quality"][0], long["seconds"]
        for lo, hi in ((0, 2), (2, 30), (30, total)):
            part = [q for q in segments if lo <= q["start"] < hi]
            if part:
                groups.append((f"{total:g}-s windowed, {lo:g}-{hi:g} s ({len(part)} segments)", part))
        lines += [
            "",
            "## Quality per 2-s segment",
            "",
            f"Prompt `{args.prompt}`. Prompted scores (`avgen.metrics.prompted.score_prompted`, no ground "
            "truth): impact F1 = the ball's visible bounces against the audio onsets within one frame; "
            "colour = share of the coloured foreground in the caption's colour. Level = mean pixel level "
            "(0-255); change = mean frame-to-frame change (a frozen picture gives 0); RMS = audio level. "
            "Mean ± sd over clips or segments.",
            "",
            "| clips | impact F1 | colour | level | change | audio RMS |",
            "|---|---|---|---|---|---|",
        ]
        for name, part in groups:
            lines.append(f"| {name} | " + " | ".join(_mean_sd([q[k] for q in part]) for k in keys) + " |")
    drift = [r for r in runs if r["prompt"] == args.drift_prompt and "quality" in r]
    if drift:
        count = len(drift[0]["quality"][0])
        lines += [
            "",
            "## Drift, a second prompt",
            "",
            f"`{args.drift_prompt}`, {drift[0]['seconds']:g} s, windowed and in one whole-clip pass, per 2-s "
            "segment: mean level / frame change / audio RMS (windowed segment 0 is, up to the crossfade at "
            "its end, the 2-s clip of that seed).",
            "",
            "| clip | seed | " + " | ".join(f"{2 * i}-{2 * i + 2} s" for i in range(count)) + " |",
            "|---|---|" + "---|" * count,
        ]
        for r in drift:
            for seed, segments in enumerate(r["quality"]):
                cells = [f"{q['level']:.0f} / {q['change']:.0f} / {q['rms']:.3f}" for q in segments]
                lines.append(f"| {r['mode']} | {seed} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, nargs="+", default=[2, 8, 32, 60])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--window", type=float, default=2.0)
    ap.add_argument("--overlap", type=float, default=0.25)
    ap.add_argument("--compare-overlap", type=float, default=0.5, help="longest clip again (0: not)")
    ap.add_argument("--hold", type=float, default=0.17, help="held seconds of the --seam-seconds variant")
    ap.add_argument("--pipeline", default="avgen-tiny")
    ap.add_argument("--prompt", default=PROMPT)
    ap.add_argument("--whole-max", type=float, default=32, help="longest clip also made in one pass")
    ap.add_argument("--seam-seconds", type=float, default=16, help="hard-cut and hold variants (0: none)")
    ap.add_argument("--baseline-seeds", type=int, default=6, help="2-s clips timed and scored")
    ap.add_argument("--drift-prompt", default=DRIFT_PROMPT)
    ap.add_argument("--drift-seconds", type=float, default=12, help="0: no drift run")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/long_clips.md"))
    ap.add_argument("--child", choices=["whole", "windowed", "cut", "hold"], help=argparse.SUPPRESS)
    ap.add_argument("--child-seconds", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--seeds", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--score", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(args)))
        return
    t0 = time.perf_counter()
    command = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/long_clips.py " + " ".join(sys.argv[1:])
    longest = max(args.seconds)
    runs = [_spawn(args, "whole", 2.0, seeds=args.baseline_seeds, score=True)]
    runs += [_spawn(args, "whole", s) for s in sorted(set(args.seconds) - {2.0}) if s <= args.whole_max]
    runs += [_spawn(args, "windowed", s, score=s == longest) for s in sorted(args.seconds)]
    if args.compare_overlap:
        runs.append(_spawn(args, "windowed", longest, overlap=args.compare_overlap))
    if args.seam_seconds:
        runs.append(_spawn(args, "cut", args.seam_seconds))
        runs.append(_spawn(args, "hold", args.seam_seconds, overlap=args.compare_overlap or 0.5))
    if args.drift_seconds:
        for mode in ("windowed", "whole"):
            runs.append(_spawn(args, mode, args.drift_seconds, seeds=2, prompt=args.drift_prompt, score=True))
    write_text(args.out, report(args, runs, command.strip(), time.perf_counter() - t0))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
