"""Few-step sampling: fewer network evaluations at equal quality, guidance folded into the DiT or not.

For a guided pipeline (``--pipeline``, e.g. avgen-tiny's stage 3: 8 Heun steps, text and sync guidance, three
branches per step) and optionally its guidance-distilled student (``--distilled``, made by ``avgen train
configs/avgen-tiny/4_distill.yaml``: one forward per step; the shipped avgen-tiny is one), each setting
(pipeline, sampler, steps, shift) gets:

- cost: DiT forwards per clip and samples per forward (a hook counts them during one call), and the pipeline
  call's wall time for the default 2-s clip (``pipe(prompt, seed=0)``: text encoding, sampling and decoding),
  the median of ``--repeats`` calls taken round-robin over the settings so that a load change on the machine
  hits them alike; "speed-up" is the reference's median over the setting's, "x real time" clip seconds over
  call seconds (>= 2 is the target);
- distance to the reference, the guided pipeline at its own settings with the same prompt and seed (the
  full 8-step guided sampling for avgen-tiny): RMS of the generated latent tokens over the reference's RMS,
  PSNR of the decoded frames (dB) and the multi-resolution mel distance of the decoded audio
  (``avgen.metrics.codec``), each a mean over ``--prompts`` x ``--seeds``;
- with ``--eval-per-family N`` > 0: the text-to-audio-video scores of ``avgen eval model``
  (``avgen.metrics.model_eval``, the columns of ``benchmarks/perf/quality_steps.py``) on N held-out prompts
  per family of the ``--split`` split, next to the ground truth.

It writes the markdown table to ``--out`` (and the numbers as JSON beside it) with the command:

    OMP_NUM_THREADS=2 .venv/bin/python -m benchmarks.few_step --pipeline runs/avgen-tiny/3_joint/pipeline \\
        --distilled runs/avgen-tiny/4_distill/pipeline

With the defaults (13 settings, 3 prompts x 2 seeds, 5 timed calls each, 8 prompts per family scored) it
makes about 500 clips: roughly 20-30 min on an idle 2-core CPU (an estimate; ``--eval-per-family 0`` leaves
out the scores, most of it).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from avgen.atomic import write_text
from avgen.metrics.codec import mel_distance, psnr
from avgen.metrics.report import write_json
from benchmarks.perf import pipelines
from benchmarks.perf.machine import command_line, machine_info
from benchmarks.perf.quality_steps import METRICS, row_from_summary

PROMPTS = (
    "a big red ball bounces quickly on a dark green background",
    'a round blue face says "hello there" on a white background',
    "three yellow bars play a slow melody",
)
# (sampler, steps, shift) of the guided pipeline beside its own settings: fewer steps without distillation
TEACHER_SETTINGS = ("heun:4", "ab2:7")
# (sampler, steps, shift) of the distilled pipeline: 2 to 8 forwards, one-evaluation solvers and Heun
DISTILLED_SETTINGS = (
    "heun:8",
    "heun:4",
    "ab2:7",
    "dpm2m:7:2",
    "euler:4",
    "euler:4:3",
    "ab2:4",
    "dpm2m:4:2",
    "heun:2",
    "euler:2:3",
)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One row: ``which`` pipeline ("guided" or "distilled") sampled with ``overrides`` of its settings."""

    which: str
    overrides: dict[str, Any]

    @property
    def label(self) -> str:
        o = self.overrides
        return f"{self.which} {o['sampler']} {o['steps']}" + (
            f" shift {o['shift']:g}" if o["shift"] != 1 else ""
        )


def parse_setting(which: str, text: str) -> Setting:
    """``"sampler:steps[:shift]"`` -> a ``Setting``; a bad field is a ValueError naming the text."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[1].isdigit():
        raise ValueError(f"setting {text!r}: expected sampler:steps[:shift], e.g. dpm2m:4:2")
    shift = float(parts[2]) if len(parts) == 3 else 1.0
    return Setting(which, {"sampler": parts[0], "steps": int(parts[1]), "shift": shift})


def _rms(x: torch.Tensor) -> float:
    return float(x.double().pow(2).mean().sqrt())


def generate(
    pipe: Any, prompt: str, seed: int, overrides: dict[str, Any]
) -> tuple[Any, torch.Tensor, list[int]]:
    """The clip, its final latent tokens (B, L, F) and the batch size of each DiT forward of one call."""
    batches: list[int] = []
    final: list[torch.Tensor] = []
    hook = pipe.dit.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))

    def keep(pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        final[:] = [kwargs["latents"].detach().clone()]
        return kwargs

    try:
        clip = pipe(
            prompt,
            seed=seed,
            progress=False,
            callback_on_step_end=keep,
            callback_on_step_end_tensor_inputs=["latents"],
            **overrides,
        )
    finally:
        hook.remove()
    return clip, final[0], batches


def distances(rows: list[Setting], pipes: dict[str, Any], args: argparse.Namespace) -> dict[str, dict]:
    """Per setting label: mean latent relative RMS, video PSNR and audio mel distance to the reference."""
    found: dict[str, dict[str, list[float]]] = {}
    for prompt in args.prompts:
        for seed in range(args.seeds):
            ref, ref_lat, _ = generate(pipes["guided"], prompt, seed, {})
            for s in rows:
                clip, lat, _ = generate(pipes[s.which], prompt, seed, s.overrides)
                d = found.setdefault(s.label, {"latent_rel_rms": [], "video_psnr_db": [], "audio_mel": []})
                d["latent_rel_rms"].append(_rms(lat - ref_lat) / _rms(ref_lat))
                d["video_psnr_db"].append(min(psnr(ref.video, clip.video), 99.0))
                d["audio_mel"].append(mel_distance(ref.audio, clip.audio, ref.sample_rate))
    return {label: {k: statistics.mean(v) for k, v in d.items()} for label, d in found.items()}


def timings(rows: list[Setting], pipes: dict[str, Any], args: argparse.Namespace) -> dict[str, dict]:
    """Per setting label (and "reference"): forwards per clip, samples per forward, median call seconds."""
    plan = [("reference", "guided", {})] + [(s.label, s.which, s.overrides) for s in rows]
    calls: dict[str, list[float]] = {label: [] for label, _, _ in plan}
    counts: dict[str, list[int]] = {}
    for which in pipes:  # warm-up: allocator, oneDNN primitives
        pipes[which](args.prompts[0], seconds=0.5, progress=False)
    for _ in range(args.repeats):
        for label, which, overrides in plan:
            if label not in counts:
                counts[label] = generate(pipes[which], args.prompts[0], 0, overrides)[2]
            t0 = time.perf_counter()
            pipes[which](args.prompts[0], seed=0, progress=False, **overrides)
            calls[label].append(time.perf_counter() - t0)
    out = {}
    for label, _, _ in plan:
        batches = counts[label]
        out[label] = {
            "forwards": len(batches),
            "samples_per_forward": statistics.mean(batches),
            "call_s": statistics.median(calls[label]),
            "calls_s": [round(c, 3) for c in calls[label]],
        }
    return out


def scores(rows: list[Setting], pipes: dict[str, Any], args: argparse.Namespace) -> dict[str, dict]:
    """Per setting label (and "reference", "ground truth"): ``avgen eval model``'s t2av columns."""
    from avgen.metrics.model_eval import ModelEvalConfig, evaluate_model

    out: dict[str, dict] = {}
    plan = [("reference", "guided", {})] + [(s.label, s.which, s.overrides) for s in rows]
    base = pipes["guided"].config
    for label, which, overrides in plan:
        cfg = ModelEvalConfig(
            per_family=args.eval_per_family,
            families=tuple(args.families),
            tasks=("t2av",),
            size=(base.height, base.width),
            seconds=base.duration,
            fps=int(base.fps),
            sampling=overrides,
            split=args.split,
            phrase_pool=args.phrase_pool,
        )
        report = evaluate_model(pipes[which], cfg, progress=False)
        out[label] = row_from_summary(report["summary"]["t2av"])
        out.setdefault("ground truth", row_from_summary(report["summary"]["gt"]))
    return out


def _cell(v: Any, fmt: str = ".3g") -> str:
    return "-" if v is None else (format(v, fmt) if isinstance(v, float) else str(v))


def report(result: dict[str, Any]) -> str:
    """The markdown page: command, machine, the cost and distance table, and the eval table."""
    t, d, cfg = result["timing"], result["distance"], result["config"]
    ref = t["reference"]
    seconds = cfg["seconds"]
    lines = [
        "# Few-step sampling: guidance folded into the DiT, fewer steps",
        "",
        f"`{result['command']}` ({result['wall_s'] / 60:.1f} min)",
        "",
        f"Guided pipeline `{cfg['pipeline']}` (its own settings are the reference: {cfg['reference']}); "
        f"distilled pipeline `{cfg['distilled']}`. Machine: {result['machine'].get('cpu', '?')}, torch threads "
        f"{result['machine'].get('torch_threads')}, load average at the start {result['machine'].get('load_average')}. "
        f"Call: the default {seconds:g}-s clip at {cfg['size']}, median of {cfg['repeats']} calls round-robin over "
        "the settings. Distances: to the reference with the same prompt and seed, mean over "
        f"{len(cfg['prompts'])} prompts x {cfg['seeds']} seeds (latent: RMS of the difference over the "
        "reference's RMS, 0 = identical; PSNR: decoded frames, higher = closer; mel: decoded audio, lower = closer).",
        "",
        "| setting | forwards | samples / forward | call s | speed-up | x real time | latent rel. RMS |"
        " video PSNR dB | audio mel dist. |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines.append(
        f"| reference ({cfg['reference']}) | {ref['forwards']} | {ref['samples_per_forward']:.3g} | "
        f"{ref['call_s']:.2f} | 1.00 | {seconds / ref['call_s']:.2f} | 0 | inf | 0 |"
    )
    for label in result["labels"]:
        r, q = t[label], d.get(label, {})
        lines.append(
            f"| {label} | {r['forwards']} | {r['samples_per_forward']:.3g} | {r['call_s']:.2f} | "
            f"**{ref['call_s'] / r['call_s']:.2f}** | **{seconds / r['call_s']:.2f}** | "
            f"{_cell(q.get('latent_rel_rms'))} | {_cell(q.get('video_psnr_db'), '.1f')} | "
            f"{_cell(q.get('audio_mel'))} |"
        )
    if result.get("scores"):
        cols = [c for c, _, _ in METRICS]
        lines += [
            "",
            f"## Evaluation scores (t2av, {cfg['eval_per_family']} {cfg['split']} prompts per family of "
            f"{', '.join(cfg['families'])}; talk phrase pool {cfg.get('phrase_pool', 'fixed')})",
            "",
            "`avgen eval model`'s text-to-audio-video columns (as `benchmarks/perf/quality_steps.py`): lag in ms "
            "(0 best); shuffled: the score with no sync; frame change: nearer the ground truth's is better; the "
            "others higher = better.",
            "",
            "| setting | " + " | ".join(cols) + " |",
            "|---|" + "---|" * len(cols),
        ]
        for label in ["reference", *result["labels"], "ground truth"]:
            row = result["scores"][label]
            lines.append(f"| {label} | " + " | ".join(_cell(row.get(c)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def measure(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    with pipelines.workdir() as tmp:
        source, description = pipelines.resolve(args.pipeline, Path(tmp))
        pipes = {"guided": pipelines.load(source)}
        rows = [parse_setting("guided", s) for s in args.teacher_settings]
        if args.distilled:
            pipes["distilled"] = pipelines.load(args.distilled)
            rows += [parse_setting("distilled", s) for s in args.settings]
        ref = pipes["guided"].config.sampling
        result: dict[str, Any] = {
            "benchmark": "few_step",
            "command": args.command,
            "machine": machine_info(),
            "config": {
                "pipeline": description,
                "distilled": args.distilled,
                "reference": f"{ref.sampler} {ref.steps} steps, guidance {ref.guidance}",
                "seconds": pipes["guided"].config.duration,
                "size": f"{pipes['guided'].config.height}x{pipes['guided'].config.width}",
                "prompts": list(args.prompts),
                "seeds": args.seeds,
                "repeats": args.repeats,
                "eval_per_family": args.eval_per_family,
                "families": list(args.families),
                "split": args.split,
                "phrase_pool": args.phrase_pool,
            },
            "labels": [s.label for s in rows],
            "settings": {s.label: {"pipeline": s.which, **s.overrides} for s in rows},
        }
        result["distance"] = distances(rows, pipes, args)
        result["timing"] = timings(rows, pipes, args)
        if args.eval_per_family:
            result["scores"] = scores(rows, pipes, args)
    result["wall_s"] = time.perf_counter() - start
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--pipeline", default="avgen-tiny", help="the guided pipeline: folder, shipped name, random:tiny"
    )
    p.add_argument("--distilled", help="its guidance-distilled pipeline folder (none: the guided rows alone)")
    p.add_argument(
        "--settings", nargs="+", default=list(DISTILLED_SETTINGS), help="distilled: sampler:steps[:shift]"
    )
    p.add_argument(
        "--teacher-settings", nargs="*", default=list(TEACHER_SETTINGS), help="guided: sampler:steps[:shift]"
    )
    p.add_argument("--prompts", nargs="+", default=list(PROMPTS))
    p.add_argument("--seeds", type=int, default=2, help="seeds per prompt for the distances")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per setting")
    p.add_argument(
        "--eval-per-family", type=int, default=8, help="held-out prompts per family (0: no scores)"
    )
    p.add_argument("--families", nargs="+", default=["talk", "bounce", "keys"], help="families scored")
    p.add_argument(
        "--split", default="val", help="avgen-synth split of the eval prompts (val: settings are chosen here)"
    )
    p.add_argument(
        "--phrase-pool",
        default="fixed",
        choices=["fixed", "composed"],
        help="what the scored talk prompts say (composed: the sentences avgen-tiny was trained on)",
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/few_step.md"))
    args = p.parse_args(argv)
    for text in [*args.settings, *args.teacher_settings]:
        try:
            parse_setting("check", text)
        except ValueError as e:
            p.error(str(e))
    if args.seeds < 1 or args.repeats < 1 or args.eval_per_family == 1 or args.eval_per_family < 0:
        p.error("--seeds and --repeats must be >= 1, --eval-per-family 0 or >= 2")
    args.command = command_line("benchmarks.few_step", argv)
    result = measure(args)
    page = report(result)
    write_json(args.out.with_suffix(".json"), result)
    write_text(args.out, page, mkdir_parents=True)
    print(page)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
