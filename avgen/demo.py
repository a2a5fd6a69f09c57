"""``avgen demo``: generate a talking face and bouncing balls with the default model, and a PNG of the clip.

The two prompts are captions from avgen-synth's held-out test split (combinations the model never saw in
training). Each scene is generated at the model's native size (64x64 for avgen-tiny), the two are joined in
time and enlarged ``--scale`` times (nearest neighbour) so a player shows them at a watchable size. The
console reports what the clip's own pixels and sound say about sync: the lip-sync lag of the talking face
and the impact F1 of the balls (see ``avgen.metrics.prompted``). ``--ground-truth`` renders the avgen-synth
scenes themselves instead (no model needed).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from avgen.atomic import check_writable
from avgen.clip import AVClip
from avgen.data.synth import SynthConfig, make_sample
from avgen.data.synth.spec import parse_size
from avgen.io import probe, write_av
from avgen.metrics._deps import missing
from avgen.metrics.evaluate import evaluate_clip
from avgen.metrics.prompted import score_prompted
from avgen.metrics.report import plot_clip
from avgen.pipeline import AVPipeline

# The first talk and bounce captions of the test split (seed 0, the composed phrase pool avgen-tiny was trained
# on), not picked by result: "spoons" is a word no training clip says.
DEMO_PROMPTS = (
    'a square yellow face says "eight white spoons"',
    "two big white balls bounce slowly",
)


def join(clips: list[AVClip], scale: int = 1, metadata: dict[str, str] | None = None) -> AVClip:
    """Clips of one fps, size and sample rate one after another, frames enlarged ``scale`` times."""
    video = np.concatenate([c.video for c in clips])  # (T, H, W, 3)
    if scale > 1:
        video = video.repeat(scale, axis=1).repeat(scale, axis=2)
    return AVClip(
        video=video,
        fps=clips[0].fps,
        audio=np.concatenate([c.audio for c in clips], axis=1),
        sample_rate=clips[0].sample_rate,
        metadata=metadata or {},
    )


def render_ground_truth(seed: int, size: tuple[int, int], duration: float) -> list[tuple[str, AVClip]]:
    """A talk scene and a bounce scene of avgen-synth's test split: (caption, clip) each, 24 fps, 16 kHz."""
    parts = [
        make_sample(
            seed,
            "test",
            SynthConfig(sizes=(size,), durations=(duration,), families={family: 1.0}, phrase_pool="composed"),
        )
        for family in ("talk", "bounce")
    ]
    return [(p.caption, p.clip) for p in parts]


def generate_scenes(
    model: str, prompts: tuple[str, ...], seed: int, steps: int | None
) -> tuple[list[tuple[str, AVClip]], str]:
    """One generated clip per prompt at the pipeline's default geometry; returns them and the model name."""
    pipe = AVPipeline.from_pretrained(model)
    clips = pipe(list(prompts), seed=seed, steps=steps, progress=True)
    return list(zip(prompts, clips, strict=True)), pipe.config.name


def sync_line(caption: str, clip: AVClip) -> str:
    """What the clip's pixels and sound say about sync, in words (caption-only scoring)."""
    s: dict[str, Any] = score_prompted(clip.video, float(clip.fps), clip.audio, clip.sample_rate, caption)
    if s.get("lip_sync"):
        ls = s["lip_sync"]
        if ls["lag_ms"] is None:  # a mouth that never moves (or silence) has no lag to measure
            return "face found, but its mouth does not move with the sound (no lip-sync lag measurable)"
        corr = "n/a" if ls["correlation"] is None else f"{ls['correlation']:.2f}"
        return f"lip-sync lag {ls['lag_ms']:+.0f} ms (mouth/sound correlation {corr})"
    if s["family"] == "talk":
        return "no face of the asked colour found"
    if "impact" in s:
        imp = s["impact"]
        f1 = "n/a" if imp["f1"] is None else f"{imp['f1']:.2f}"
        if not imp["impacts"]:
            return f"impact F1 {f1} (no ball of the asked colour is seen hitting the floor)"
        return f"impact F1 {f1} ({imp['hits']} of {imp['impacts']} visible impacts heard within one frame)"
    return ""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="avgen demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo.mp4"), help="MP4 to write")
    parser.add_argument("--model", default="avgen-tiny", help="pipeline folder or shipped model name")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, default=3, help="enlarge frames this many times (nearest)")
    parser.add_argument(
        "--ground-truth", action="store_true", help="render the avgen-synth scenes instead of generating"
    )
    parser.add_argument("--size", default="64x64", help="HxW of each ground-truth scene")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per ground-truth scene")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    parser.add_argument("--no-png", action="store_true", help="skip the PNG of frames, waveform and events")
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error("--scale must be >= 1")
    if args.out.exists() and not args.overwrite:
        parser.error(f"{args.out} exists; pass --overwrite to replace it")
    check_writable(args.out, what="--out", overwrite=args.overwrite)  # before any generation

    if args.ground_truth:
        scenes, name = render_ground_truth(args.seed, parse_size(args.size), args.duration), "avgen-synth"
    else:
        scenes, name = generate_scenes(args.model, DEMO_PROMPTS, args.seed, args.steps)
    prompt = " | ".join(caption for caption, _ in scenes)
    clip = join([c for _, c in scenes], args.scale, {"prompt": prompt, "seed": str(args.seed), "model": name})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    path = write_av(args.out, clip, overwrite=args.overwrite)
    info = probe(path)
    v, a = info["streams"]
    print(
        f"wrote {path}: {v['codec']} {v['width']}x{v['height']} @ {v['fps']} fps, {v['frames']} frames "
        f"({v['duration_s']:.3f} s) + {a['codec']} {a['sample_rate']} Hz ({a['duration_s']:.3f} s)"
    )
    if gone := missing():  # the clip is written; scoring and the PNG need the eval extra
        print(f"(sync scores and the PNG need {', '.join(gone)}: pip install 'avgen[eval]')")
        return 0
    for caption, scene in scenes:
        print(f"{name}: {caption!r}: {sync_line(caption, scene)}")
    if not args.no_png:
        evaluation = evaluate_clip(clip.video, float(clip.fps), clip.audio, clip.sample_rate)
        png = plot_clip(
            args.out.with_suffix(".png"),
            clip.video,
            float(clip.fps),
            clip.audio,
            clip.sample_rate,
            evaluation,
            title=f"{name}: {prompt}",
        )
        print(f"wrote {png}")
    return 0
