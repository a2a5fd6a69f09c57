"""``avgen eval files DIR [--out DIR]``: score existing videos (any system's) for A/V sync.

Writes ``report.json`` (per-clip scores and the mean over clips) and one PNG per clip into ``--out``.
With ``--fad-weights`` / ``--fvd-weights`` (local files, never downloaded) and ``--reference DIR`` the
summary also gets ``fad`` / ``fvd`` against the reference clips. ``avgen eval convert-weights SRC DST
--network vggish|i3d`` checks published weights by name and rewrites them as safetensors.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from avgen.atomic import check_writable_dir
from avgen.config import to_dict
from avgen.diffusion import settings
from avgen.errors import AVGenError, MediaError
from avgen.io import read_av, write_av
from avgen.metrics._deps import require_eval
from avgen.metrics.evaluate import evaluate_clip
from avgen.metrics.fad_fvd import DEFINITIONS, DistributionScorer, find_reference
from avgen.metrics.model_eval import evaluate_model
from avgen.metrics.model_eval_args import add_model_eval_arguments, model_eval_config
from avgen.metrics.offset_result import describe_offset, round_ms
from avgen.metrics.report import plot_clip, write_json
from avgen.metrics.synth import score_synth
from avgen.metrics.weights import convert_weights
from avgen.pipeline import AVPipeline

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm")


def find_videos(folder: Path, recursive: bool) -> list[Path]:
    """Video files under ``folder`` (sorted); raises MediaError when there are none."""
    if not folder.is_dir():
        raise MediaError(folder, "is not a folder; give the folder that holds the videos to score")
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not files:
        raise MediaError(folder, f"holds no videos ({', '.join(VIDEO_SUFFIXES)}); try --recursive")
    return files


def _mean(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def summarize(clips: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over the scored clips (clips with an undefined score are left out of that mean)."""
    scored = [c for c in clips if "scores" in c]
    s = [c["scores"] for c in scored]
    lags = [x["offset"]["lag_ms"] for x in s]
    synth = [c["synth"] for c in scored if "synth" in c]
    prompts = [x["prompt"] for x in synth if x.get("prompt")]
    return {
        "clips": len(clips),
        "scored": len(scored),
        "failed": len(clips) - len(scored),
        "av_align": _mean([x["av_align"] for x in s]),
        "av_align_variant": "current",
        "av_align_legacy": _mean([x["av_align_legacy"] for x in s]),
        "av_align_chance": _mean([x["av_align_chance"] for x in s]),
        "offset_ms_mean": round_ms(_mean(lags)),
        "abs_offset_ms_mean": round_ms(_mean([abs(v) for v in lags if v is not None])),
        "offset_estimated": sum(v is not None for v in lags),
        "synth_clips": len(synth),
        "impact_f1": _mean([x["impact"]["f1"] for x in synth if "impact" in x]),
        "lip_sync_correlation": _mean([x["lip_sync"]["correlation"] for x in synth if "lip_sync" in x]),
        "prompt_adherence": _mean([float(p["adherent"]) for p in prompts]),
    }


def _synth_json(video: Path) -> dict[str, Any] | None:
    """The avgen-synth events JSON next to ``video`` (same stem), if there is one."""
    path = video.with_suffix(".json")
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise MediaError(
            path, f"is not readable JSON ({e}); remove it or rewrite it with avgen data synth"
        ) from e
    return data if isinstance(data, dict) and "family" in data and "version" in data else None


def score_file(path: Path, out: Path, *, png: bool, scorer: Any = None) -> dict[str, Any]:
    """Score one video file; a failure is recorded in the entry (``error``) rather than raised.

    Whatever one file raises (a damaged stream, a metric that cannot handle it) stays with that file, so a
    folder is always scored to the end.

    ``scorer`` (a DistributionScorer) also embeds the clip for FAD / FVD.
    """
    entry: dict[str, Any] = {"file": str(path)}
    try:
        clip = read_av(path, streams="av")
        if scorer is not None:
            entry["distribution"] = scorer.add(clip)
        fps = float(clip.fps)
        evaluation = evaluate_clip(clip.video, fps, clip.audio, clip.sample_rate)
        entry["scores"] = evaluation.to_dict()
        sidecar = _synth_json(path)
        if sidecar is not None:
            entry["synth"] = score_synth(clip.video, fps, clip.audio, clip.sample_rate, sidecar)
        if png:
            image = plot_clip(
                out / f"{path.stem}.png",
                clip.video,
                fps,
                clip.audio,
                clip.sample_rate,
                evaluation,
                title=path.name,
            )
            entry["png"] = str(image)
    except AVGenError as e:
        entry["error"] = str(e)
    except Exception as e:
        entry["error"] = f"{path}: unexpected {e.__class__.__name__}: {e}"
    return entry


def read_prompts(path: Path) -> list[str]:
    """Prompts from a text file (one per line) or a JSONL file with a ``caption`` or ``prompt`` field."""
    if not path.is_file():
        raise MediaError(path, "prompts file not found")
    prompts = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if path.suffix == ".jsonl":
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise MediaError(path, f"line {n} is not JSON ({e})") from e
            text = record.get("caption") or record.get("prompt") if isinstance(record, dict) else None
            if not isinstance(text, str):
                raise MediaError(path, f"line {n} has no 'caption' or 'prompt' string")
            line = text
        prompts.append(line)
    if not prompts:
        raise MediaError(path, "holds no prompts")
    return prompts


def score_all(
    videos: list[Path],
    out: Path,
    *,
    png: bool,
    source: dict[str, Any],
    scorer: Any = None,
    reference: list[Path] | None = None,
) -> dict[str, Any]:
    """Score each video, print a line per clip (its scores or ``FAILED: reason``), and write
    ``out/report.json``; returns the report. A file that fails is recorded with its error and the others
    are still scored; ``summary["failed"]`` counts them.

    With a ``scorer`` (DistributionScorer) and the ``reference`` files, the summary also gets its metrics
    (``fad`` / ``fvd``) and the report a ``distribution`` section with counts, KID and the reference files.
    """
    start = time.perf_counter()
    clips = []
    for i, path in enumerate(videos, 1):
        entry = score_file(path, out, png=png, scorer=scorer)
        clips.append(entry)
        if "error" in entry:
            status = f"FAILED: {entry['error']}"
        else:
            status = (
                f"AV-Align {entry['scores']['av_align']}, offset {describe_offset(entry['scores']['offset'])}"
            )
        print(f"[{i}/{len(videos)}] {path.name}: {status}", file=sys.stderr)
    summary = summarize(clips)
    definitions = {
        "av_align": "TempoTokens AV-Align, current variant (flow peaks >= 0.1, each video peak used once)",
        "av_align_legacy": "older AV-Align copies (no 0.1 threshold, video peaks reusable; may exceed 1)",
        "av_align_chance": "mean current AV-Align over random circular shifts of the audio peaks",
        "offset.lag_ms": "lag best aligning audio onsets/offsets with motion changes, to 10 ms; positive = audio "
        "late; None = no estimate (offset.reason)",
        "offset.probability": "calibrated P(lag within one frame of the truth), fitted on avgen-synth shifts",
    }
    distribution: dict[str, Any] = {}
    if scorer is not None:
        print(
            f"embedding {len(reference or [])} reference files for {', '.join(scorer.metrics)}",
            file=sys.stderr,
        )
        ref_entries = scorer.add_reference(reference or [])
        distribution = scorer.results()
        for metric, result in distribution.items():
            summary[metric] = result["value"]
            definitions[metric] = DEFINITIONS[metric]
        distribution["reference_files"] = ref_entries
    report = {
        **source,
        "summary": summary,
        "definitions": definitions,
        **({"distribution": distribution} if distribution else {}),
        "seconds": round(time.perf_counter() - start, 3),
        "clips": clips,
    }
    path = write_json(out / "report.json", report)
    extra = "".join(f", {m.upper()} {summary[m]}" for m in ("fad", "fvd") if m in summary)
    if summary["failed"]:
        extra += f"; {summary['failed']} failed (errors in the report)"
    print(
        f"scored {summary['scored']}/{summary['clips']} clips: AV-Align {summary['av_align']} "
        f"(chance {summary['av_align_chance']}), mean |offset| {summary['abs_offset_ms_mean']} ms "
        f"({summary['offset_estimated']} estimated){extra} -> {path}"
    )
    return report


def _distribution(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[Any, list[Path] | None]:
    """(DistributionScorer, reference files) from the FAD/FVD flags, or (None, None); loads weights now so a
    bad path fails before any clip is generated or scored."""
    wanted = args.fad_weights is not None or args.fvd_weights is not None
    if not wanted:
        if args.reference is not None or args.fad_pca is not None:
            parser.error("--reference/--fad-pca need --fad-weights and/or --fvd-weights (local weight files)")
        return None, None
    if args.reference is None:
        parser.error(
            "--fad-weights/--fvd-weights need --reference DIR (a folder of real clips to compare against)"
        )

    reference = find_reference(args.reference)
    scorer = DistributionScorer(
        fad_weights=args.fad_weights, fvd_weights=args.fvd_weights, fad_pca=args.fad_pca, device=args.device
    )
    return scorer, reference


def _add_distribution_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fad-weights", default=None, help="local VGGish weights (.safetensors/.pth); adds FAD")
    p.add_argument(
        "--fvd-weights", default=None, help="local I3D Kinetics-400 weights (.safetensors/.pt); adds FVD"
    )
    p.add_argument("--fad-pca", default=None, help="optional VGGish PCA params (.npz/.safetensors) for FAD")
    p.add_argument(
        "--reference", type=Path, default=None, help="folder of real clips that FAD/FVD compare against"
    )


def convert_main(args: argparse.Namespace) -> int:
    """``avgen eval convert-weights``: safe read, strict name/shape check, atomic safetensors write."""
    path = convert_weights(args.src, args.dst, args.network)
    print(f"wrote {args.network} weights -> {path}")
    return 0


def generate_main(args: argparse.Namespace, scorer: Any = None, reference: list[Path] | None = None) -> int:
    """Generate ``--n`` clips from the prompts (cycling; seed = index) with a pipeline, then score them."""
    prompts = read_prompts(args.prompts)
    overrides = settings.from_arguments(args)
    check_writable_dir(args.out, what="--out")
    pipe = AVPipeline.from_pretrained(args.pipeline, device=args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    videos = []
    for i in tqdm(range(args.n), desc="generating", unit="clip"):
        clip = pipe(prompts[i % len(prompts)], seed=args.seed + i, progress=False, **overrides)
        videos.append(write_av(args.out / f"clip_{i:04d}.mp4", clip, overwrite=True))
    source = {
        "pipeline": str(args.pipeline),
        "prompts": str(args.prompts),
        "sampling": to_dict(pipe.config.sampling.replace(**overrides)),
    }
    report = score_all(
        videos, args.out, png=not args.no_png, source=source, scorer=scorer, reference=reference
    )
    return 0 if report["summary"]["failed"] == 0 else 1


def model_main(args: argparse.Namespace) -> int:
    """``avgen eval model``: generate for held-out synth prompts and print the per-task summary table."""
    cfg = model_eval_config(args, save_clips=args.save_clips)
    check_writable_dir(args.out, what="--out")
    pipe = AVPipeline.from_pretrained(args.pipeline, device=args.device)
    report = evaluate_model(pipe, cfg, args.out)
    for task, families in report["summary"].items():
        for family, numbers in families.items():
            print(f"{task:5s} {family:7s} " + ", ".join(f"{k} {v}" for k, v in numbers.items()))
    print(f"-> {args.out / 'report.json'} ({report['seconds']} s)")
    return 0


def main(argv: list[str]) -> int:
    """Entry point of ``avgen eval``; ``argv`` starts after ``eval``.

    ``avgen eval files DIR`` scores existing videos; ``avgen eval --pipeline DIR --prompts FILE --n N
    --out DIR`` (or ``avgen eval generate ...``) generates clips and scores them.
    """
    if argv and argv[0].startswith("--"):
        argv = ["generate", *argv]
    parser = argparse.ArgumentParser(
        prog="avgen eval",
        description="Score audio-video sync.",
        epilog="avgen eval loss RECIPE --pipeline P: a pipeline's flow-matching losses on a joint recipe's "
        "validation clips (avgen eval loss -h). avgen eval curve RUN: eval model's scores of every snapshot "
        "of a training run against samples seen (avgen eval curve -h)",
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    files = sub.add_parser("files", help="score existing videos in a folder (any system's outputs)")
    files.add_argument("dir", type=Path, help="folder of videos with sound (.mp4, .mov, .mkv, ...)")
    files.add_argument("--out", type=Path, default=None, help="report folder (default: DIR/avgen_eval)")
    files.add_argument("--recursive", action="store_true", help="also score videos in subfolders")
    files.add_argument("--no-png", action="store_true", help="skip the per-clip PNG figures")
    files.add_argument("--device", default="cpu", help="device for the FAD/FVD networks")
    _add_distribution_flags(files)
    gen = sub.add_parser("generate", help="generate clips from prompts with a pipeline and score them")
    gen.add_argument("--pipeline", default="avgen-tiny", help="pipeline folder or shipped model name")
    gen.add_argument("--prompts", type=Path, required=True, help="text file (one per line) or captions.jsonl")
    gen.add_argument("--n", type=int, default=8, help="clips to generate (prompts are cycled)")
    gen.add_argument("--out", type=Path, required=True, help="folder for the clips, PNGs and report.json")
    gen.add_argument("--seed", type=int, default=0, help="seed of the first clip (clip i uses seed + i)")
    gen.add_argument("--device", default="cpu")
    gen.add_argument("--no-png", action="store_true", help="skip the per-clip PNG figures")
    _add_distribution_flags(gen)
    settings.add_arguments(gen)
    model = sub.add_parser(
        "model", help="quality of a pipeline on held-out avgen-synth prompts (t2av, a2v, v2a; sync, colour)"
    )
    model.add_argument("--pipeline", default="avgen-tiny", help="pipeline folder or shipped model name")
    model.add_argument("--out", type=Path, required=True, help="folder for report.json (and --save-clips)")
    model.add_argument("--save-clips", action="store_true", help="also write every generated clip (MP4)")
    add_model_eval_arguments(model)
    conv = sub.add_parser(
        "convert-weights", help="check local FAD/FVD network weights and save them as safetensors"
    )
    conv.add_argument("src", help="local weights file (.pth/.pt plain state dict, .safetensors or .npz)")
    conv.add_argument("dst", type=Path, help="output .safetensors file (written atomically)")
    conv.add_argument("--network", required=True, choices=("vggish", "i3d"), help="which network SRC holds")
    args = parser.parse_args(argv)
    if args.mode != "convert-weights":
        require_eval(f"avgen eval {args.mode}")  # once, before any clip: not one error per clip
    if args.mode == "convert-weights":
        return convert_main(args)
    if args.mode == "model":
        return model_main(args)
    if args.mode == "generate":
        if args.n < 1:
            parser.error("--n must be >= 1")
        return generate_main(args, *_distribution(args, parser))
    videos = find_videos(args.dir, args.recursive)
    check_writable_dir(args.out or (args.dir / "avgen_eval"), what="--out")
    scorer, reference = _distribution(args, parser)
    report = score_all(
        videos,
        args.out or (args.dir / "avgen_eval"),
        png=not args.no_png,
        source={"folder": str(args.dir)},
        scorer=scorer,
        reference=reference,
    )
    return 0 if report["summary"]["failed"] == 0 else 1
