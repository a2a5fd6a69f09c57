"""``avgen generate "PROMPT" -o out.mp4``: text-to-audio-video, or audio-to-video / video-to-audio.

Everything that can be checked before the model loads is, so a request that cannot succeed fails in a
second, not after the sampling: the arguments' bounds, the output path (writable, room on its disk), the
given media (readable, their sizes from the container) and the generation's memory, estimated from the
pipeline folder's JSON against the memory there is (``avgen.limits``; ``docs/limits.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
from fractions import Fraction
from pathlib import Path
from typing import Any

from avgen import limits
from avgen.atomic import check_writable
from avgen.clip import AVClip
from avgen.diffusion import settings
from avgen.errors import ClipError, ConfigError, MediaError
from avgen.io import probe, read_av, write_av
from avgen.pipeline import AVPipeline
from avgen.writer import VIDEO_SUFFIXES

INPUTS = ("audio", "video", "extend")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avgen generate", description=__doc__.splitlines()[0])
    parser.add_argument("prompt", help="what to see and hear, e.g. 'a round green face says \"hello\"'")
    parser.add_argument("-o", "--out", type=Path, default=Path("out.mp4"), help="MP4 (or MKV) to write")
    parser.add_argument("--pipeline", default="avgen-tiny", help="pipeline folder or shipped model name")
    parser.add_argument("--audio", type=Path, help="audio-to-video: generate frames for this sound file")
    parser.add_argument("--video", type=Path, help="video-to-audio: generate sound for this (silent) video")
    parser.add_argument("--extend", type=Path, help="continuation: keep this clip and extend it to --seconds")
    parser.add_argument(
        "--seconds",
        "--duration",
        type=float,
        help="clip length (text-to-AV, or the part of --audio to use; default: the pipeline's / the audio's)",
    )
    parser.add_argument(
        "--fps", help=f"frame rate up to {limits.MAX_FPS}, e.g. 24 or 30000/1001 (default: the pipeline's)"
    )
    parser.add_argument(
        "--size",
        help=f"HxW in pixels, each {limits.MIN_SIDE} to {limits.MAX_SIDE}, e.g. 64x96 (default: the pipeline's)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument(
        limits.MEMORY_FLAG,
        dest="max_memory_gb",
        type=float,
        help=f"memory the generation may use, in GiB (default: what is free; also ${limits.MEMORY_ENV}; inf: no check)",
    )
    parser.add_argument(
        "--speech-start",
        type=float,
        help="second at which the quoted words begin (models that read timed phonemes; default: fitted)",
    )
    parser.add_argument(
        "--speech-rate", type=int, help="speaking rate of the quoted words in words per minute (default 180)"
    )
    parser.add_argument(
        "--raw-prompt",
        action="store_true",
        help="give the model the prompt as written, not rewritten into its training captions' words "
        "(pipelines whose prompt_style is avgen-synth, such as avgen-tiny)",
    )
    settings.add_arguments(parser)
    return parser


@dataclasses.dataclass
class _Plan:
    """The clip a call will make, worked out from the flags, the given media's headers and the pipeline's
    defaults; ``culprits``: the flags that set its size, named when it is refused."""

    seconds: float
    height: int
    width: int
    fps: Fraction
    culprits: list[str]
    encode_audio_samples: int = 0
    encode_video: bool = False
    media_bytes: int = 0
    audio_window: float | None = None  # read only this many seconds of --audio


def _input(path: Path, flag: str) -> dict[str, Any]:
    """``probe`` of a given media file, after checking it can be read at all (the error names it)."""
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise MediaError(path, f"{flag}: file not found") from None
    except IsADirectoryError:
        raise MediaError(path, f"{flag}: is a folder; give a media file") from None
    except OSError as e:
        raise MediaError(path, f"{flag}: cannot be read ({e.strerror}); check its permissions") from None
    return probe(path)


def _stream(info: dict[str, Any], kind: str, path: Path, flag: str) -> dict[str, Any]:
    for s in info["streams"]:
        if s["type"] == kind:
            return s
    raise MediaError(path, f"{flag}: has no {kind} stream")


def _seconds(stream: dict[str, Any], info: dict[str, Any], path: Path, flag: str) -> float:
    for value in (stream.get("duration_s"), info.get("duration_s")):
        if isinstance(value, int | float) and value > 0:
            return float(value)
    raise MediaError(path, f"{flag}: the container does not say how long its {stream['type']} is")


def _video_size(stream: dict[str, Any], path: Path, flag: str) -> tuple[int, int, Fraction]:
    for name in ("height", "width"):
        limits.check_side(int(stream.get(name) or 0), name, f"{flag} {path}")
    return (
        int(stream["height"]),
        int(stream["width"]),
        limits.check_fps(stream.get("fps"), f"{flag} {path} fps"),
    )


def _g(seconds: float | None) -> str | None:
    return None if seconds is None else f"{seconds:g}"


def _plan(args: argparse.Namespace, shape: limits.ModelShape) -> _Plan:
    cfg = shape.config
    size = limits.parse_size(args.size) if args.size else None
    fps = limits.check_fps(args.fps) if args.fps is not None else None
    culprits = [
        f"{flag} {value}"
        for flag, value in (("--seconds", _g(args.seconds)), ("--size", args.size), ("--fps", args.fps))
        if value is not None
    ]
    height, width = size or (cfg.height, cfg.width)
    plan = _Plan(
        args.seconds if args.seconds is not None else cfg.duration,
        height,
        width,
        fps or limits.check_fps(cfg.fps, "the pipeline's fps"),
        culprits,
    )
    if args.audio is not None:
        info = _input(args.audio, "--audio")
        stream = _stream(info, "audio", args.audio, "--audio")
        length = _seconds(stream, info, args.audio, "--audio")
        if args.seconds is None:
            plan.seconds = length
            plan.culprits.append(f"--audio {args.audio} ({length:.1f} s; --seconds uses part of it)")
        elif args.seconds < length:
            plan.audio_window = args.seconds  # a longer file is cut on reading, before anything decodes it
        used = min(plan.seconds, length)
        plan.encode_audio_samples = round(used * shape.sample_rate)
        plan.media_bytes = (
            4 * round(used * (stream.get("sample_rate") or 48_000)) * (stream.get("channels") or 2)
        )
    for flag in ("--video", "--extend"):
        path = getattr(args, flag[2:])
        if path is None:
            continue
        info = _input(path, flag)
        stream = _stream(info, "video", path, flag)
        length = _seconds(stream, info, path, flag)
        plan.height, plan.width, plan.fps = _video_size(stream, path, flag)
        plan.encode_video = True
        plan.media_bytes = plan.height * plan.width * 3 * (stream.get("frames") or round(length * plan.fps))
        if flag == "--video":
            plan.seconds = length
            plan.culprits = [f"--video {path} ({length:.1f} s at {plan.width}x{plan.height}, {plan.fps} fps)"]
        else:
            _stream(info, "audio", path, flag)
            plan.culprits.append(f"--extend {path} ({plan.width}x{plan.height}, {plan.fps} fps)")
            if plan.seconds <= length:
                raise ConfigError(
                    f"--seconds {plan.seconds:g}: must exceed the {length:.3f} s of --extend {path} to extend it"
                )
    if args.video is not None:
        flag = f"the length of --video {args.video}"
    elif args.seconds is not None:
        flag = "--seconds"
    elif args.audio is not None:
        flag = f"the length of --audio {args.audio}; set --seconds"
    else:
        flag = "the pipeline's default length; set --seconds"
    limits.check_seconds(plan.seconds, plan.fps, flag=flag)
    return plan


def _output_bytes(plan: _Plan, shape: limits.ModelShape) -> int:
    """Roughly the most the written file takes: H.264 at crf 18 stores under a quarter of the raw frames
    (generated frames measure about a tenth), AAC far under float32 samples."""
    frames = round(plan.seconds * plan.fps)
    return frames * plan.height * plan.width * 3 // 4 + 4 * round(plan.seconds * shape.sample_rate) + 2**16


def _read(path: Path, flag: str, **kwargs: Any) -> AVClip:
    """``read_av(path)``; an error names the flag that gave the file as well as the file."""
    try:
        return read_av(path, **kwargs)
    except MediaError as e:
        raise MediaError(path, f"{flag}: {e.problem}") from e
    except ClipError as e:  # the clip's own checks (NaN samples, ...) do not know the file's name
        raise MediaError(path, f"{flag}: {e}") from e


def _sampling(shape: limits.ModelShape, overrides: dict[str, Any]) -> settings.SamplingConfig:
    """The pipeline's sampling settings with the flags' overrides, each checked now, by its flag."""
    sampling = shape.config.sampling
    for name, value in overrides.items():
        try:
            sampling = sampling.replace(**{name: value})
        except ConfigError as e:
            raise ConfigError(f"--{name.replace('_', '-')} {value}: {e}") from None
    return sampling


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    limits.check_text("prompt", args.prompt)
    limits.check_seed(args.seed)
    limits.check_device(args.device)
    given = [f"--{name}" for name in INPUTS if getattr(args, name) is not None]
    if len(given) > 1:
        raise ConfigError(f"give at most one of --audio, --video, --extend; got {', '.join(given)}")

    # The model's sizes and settings from its JSON alone: nothing below loads a weight.
    shape = limits.read_model_shape(args.pipeline)
    sampling = _sampling(shape, settings.from_arguments(args))
    limits.check_text("--negative-prompt", sampling.negative_prompt)
    plan = _plan(args, shape)
    geom = shape.geometry(plan.seconds, plan.height, plan.width, plan.fps)
    estimate = limits.estimate_memory(
        shape,
        geom,
        branches=limits.guidance_branches(sampling),
        encode_audio_samples=plan.encode_audio_samples,
        encode_video=plan.encode_video,
        media_bytes=plan.media_bytes,
    )
    limits.check_memory(estimate, *limits.memory_limit(args.device, args.max_memory_gb), plan.culprits)
    check_writable(args.out, what="-o", overwrite=args.overwrite, need_bytes=_output_bytes(plan, shape))
    if args.out.suffix.lower() not in VIDEO_SUFFIXES:
        raise ConfigError(
            f"-o {args.out}: avgen generate writes video with sound; end the name in "
            f"{', '.join(VIDEO_SUFFIXES)}, e.g. {args.out.with_suffix('.mp4')}"
        )

    # Given media are read before the model loads: a bad file fails in a second.
    audio = video = extend = None
    if args.audio is not None:
        window = {} if plan.audio_window is None else {"duration": plan.audio_window}
        audio = _read(args.audio, "--audio", streams="a", **window)
    if args.video is not None:
        video = _read(args.video, "--video", streams="v")
    if args.extend is not None:
        extend = _read(args.extend, "--extend")
    pipe = AVPipeline.from_pretrained(args.pipeline, device=args.device)
    clip = pipe(
        args.prompt,
        seconds=args.seconds,
        height=plan.height if args.size else None,
        width=plan.width if args.size else None,
        fps=args.fps,
        seed=args.seed,
        audio=audio,
        video=video,
        extend=extend,
        speech_start=args.speech_start,
        speech_rate=args.speech_rate,
        rewrite_prompt=not args.raw_prompt,
        **settings.from_arguments(args),
    )
    write_av(args.out, clip, overwrite=args.overwrite)
    print(f"wrote {args.out} ({clip.duration:.2f} s, {clip.width}x{clip.height} @ {clip.fps} fps)")
    return 0
