"""The call conventions of diffusers and audiocraft, mapped onto ``AVPipeline``'s own.

``AVPipeline.__call__`` takes the names users of those libraries know (``num_inference_steps``,
``guidance_scale``, ``num_frames``, ...) beside its own, expands prompts for ``num_videos_per_prompt``, gives
each clip its own generator and seed, batches the clips whose texts pad alike, and runs a diffusers
``callback_on_step_end``; ``AVPipeline.to`` parses diffusers' ``to(device, dtype)`` forms; ``model_prompts``
applies the pipeline's prompt style. The helpers here read only their arguments (``model_prompts`` and the
``warn_*`` ones log or warn).
"""

from __future__ import annotations

import contextlib
import logging
import math
import operator
import warnings
from collections.abc import Hashable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import torch
from torch import Tensor

from avgen.checks import as_fps
from avgen.clip import AVClip
from avgen.data.speech_timing import prompt_timeline
from avgen.data.synth.rewrite import Rewrite, rewrite_prompt
from avgen.diffusion.generate import StepEnd
from avgen.errors import ClipError, ConfigError
from avgen.model.phonemes import Phonemes, Timeline
from avgen.model.text import TextStates
from avgen.pipeline_config import PipelineConfig, unknown_words

log = logging.getLogger("avgen")

# alias -> the avgen names it sets (docs/api.md has the table)
ALIASES: dict[str, tuple[str, ...]] = {
    "num_inference_steps": ("steps",),  # diffusers
    "guidance_scale": ("video_guidance", "audio_guidance"),  # diffusers; audio too unless the next is given
    "audio_guidance_scale": ("audio_guidance",),  # diffusers LTX-2
    "frame_rate": ("fps",),  # diffusers LTX / LTX-2
    "num_frames": ("seconds",),  # diffusers video pipelines: seconds = num_frames / fps
    "duration": ("seconds",),  # audiocraft's set_generation_params(duration=)
}

# the dtypes a pipeline's DiT may take (AVPipeline.to / from_pretrained(torch_dtype=))
DTYPES = (torch.float32, torch.bfloat16, torch.float16)

# tensors a callback_on_step_end may ask for (callback_on_step_end_tensor_inputs)
CALLBACK_TENSOR_INPUTS = ("latents",)


def _same(name: str, a: Any, b: Any) -> bool:
    if name == "fps":
        return as_fps(a, name="fps") == as_fps(b, name="frame_rate")
    if isinstance(a, int | float | Fraction) and isinstance(b, int | float | Fraction):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def resolve_aliases(given: Mapping[str, Any], default_fps: Any) -> dict[str, Any]:
    """``given`` (a call's keywords by name, None = not given) with every alias of ``ALIASES`` replaced by
    the avgen names it sets. ``guidance_scale`` sets both guidance scales, the audio one only where
    ``audio_guidance_scale`` is not given; ``num_frames`` sets ``seconds = num_frames / fps`` (the call's
    ``fps`` or ``frame_rate``, else ``default_fps``). An alias and a name it sets given with different
    values is a ConfigError naming both."""
    out = {k: v for k, v in given.items() if k not in ALIASES}
    set_by = {k: k for k, v in out.items() if v is not None}
    aliases = {k: given[k] for k in ALIASES if given.get(k) is not None}  # frame_rate before num_frames
    for alias, value in aliases.items():
        targets = ALIASES[alias]
        if alias == "guidance_scale" and "audio_guidance_scale" in aliases:
            targets = ("video_guidance",)
        if alias == "num_frames":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"num_frames must be a whole number of frames >= 1, got {value!r}")
            fps = out.get("fps")
            value = float(Fraction(value) / as_fps(default_fps if fps is None else fps, name="fps"))
        for target in targets:
            if out.get(target) is not None and not _same(target, out[target], value):
                raise ConfigError(
                    f"{alias}={given[alias]!r} and {set_by[target]}={given[set_by[target]]!r} disagree "
                    f"(both set {target}); give one of them"
                )
            out[target] = value
            set_by[target] = alias
    return out


def expand_prompts(
    prompts: Sequence[str], negative: str | Sequence[str], per_prompt: int
) -> tuple[list[str], list[str], list[int]]:
    """Each prompt and its negative prompt ``per_prompt`` times, prompt-major (as diffusers orders
    ``num_videos_per_prompt``), and for each clip the index of its prompt. ``negative``: one for all, or
    one per prompt."""
    if isinstance(per_prompt, bool) or not isinstance(per_prompt, int) or per_prompt < 1:
        raise ConfigError(f"num_videos_per_prompt must be a whole number >= 1, got {per_prompt!r}")
    negatives = [negative] * len(prompts) if isinstance(negative, str) else list(negative)
    if len(negatives) != len(prompts) or not all(isinstance(n, str) for n in negatives):
        raise ConfigError(
            f"negative_prompt must be a string or a list of {len(prompts)} strings (one per prompt), "
            f"got {negative!r}"
        )
    source = [i for i in range(len(prompts)) for _ in range(per_prompt)]
    return [prompts[i] for i in source], [negatives[i] for i in source], source


def clip_generators(
    count: int, seed: int, generator: Any, device: torch.device
) -> tuple[list[torch.Generator], list[int]]:
    """One generator per clip and the seed that regenerates it alone (``pipe(prompt, seed=that)``).

    ``generator`` None: clip i gets a new generator on ``device`` seeded ``seed + i``. One
    ``torch.Generator``: clip 0 draws from it and clip i > 0 from a new one seeded ``initial_seed() + i``,
    so it equals ``seed=generator.initial_seed()``. A sequence of ``count`` generators: one per clip, each
    recorded by its ``initial_seed()`` (which regenerates the clip if that generator was fresh and on
    ``device``: a generator elsewhere draws other numbers from the same seed).
    """
    if generator is None:
        try:
            first = operator.index(seed) if not isinstance(seed, bool) else None
        except TypeError:
            first = None
        if first is None:
            raise ConfigError(f"seed must be a whole number, got {seed!r}")
        seeds = [first + i for i in range(count)]
        return [torch.Generator(device=device).manual_seed(s) for s in seeds], seeds
    if isinstance(generator, torch.Generator):
        first = generator.initial_seed()
        rest = [torch.Generator(device=generator.device).manual_seed(first + i) for i in range(1, count)]
        return [generator, *rest], [first + i for i in range(count)]
    gens = list(generator) if isinstance(generator, Sequence) else None
    if gens is None or not all(isinstance(g, torch.Generator) for g in gens):
        raise ConfigError(f"generator must be a torch.Generator or a list of them, got {generator!r}")
    if len(gens) != count:
        raise ConfigError(
            f"generator: a list of {len(gens)} generators for {count} clips (prompts x "
            "num_videos_per_prompt); give one per clip, or one generator, or seed="
        )
    if len({id(g) for g in gens}) != len(gens):
        raise ConfigError("generator: the same torch.Generator appears twice in the list; give one per clip")
    return gens, [g.initial_seed() for g in gens]


def warn_unknown_words(prompts: Sequence[str], config: PipelineConfig) -> None:
    """One log warning per prompt that is mostly words outside ``config.vocabulary`` (the model's training
    captions), which the model cannot draw."""
    for text in dict.fromkeys(prompts):
        if unknown := unknown_words(text, config.vocabulary):
            log.warning(
                "avgen: %s knows few words of %r (not: %s); it draws only what its training captions "
                "name (see its model card)",
                config.name,
                text,
                ", ".join(dict.fromkeys(unknown)),
            )


def _rewritten(text: str, config: PipelineConfig, rewrite: bool) -> Rewrite | None:
    """``rewrite_prompt(text)`` where the pipeline rewrites prompts, else None."""
    return rewrite_prompt(text) if rewrite and config.prompt_style == "avgen-synth" else None


def model_caption(text: str, config: PipelineConfig, rewrite: bool = True) -> str:
    """The text the model reads for one prompt (``model_prompts`` without its log lines)."""
    done = _rewritten(text, config, rewrite)
    return text if done is None or done.caption is None else done.caption


def model_prompts(prompts: Sequence[str], config: PipelineConfig, rewrite: bool = True) -> list[str]:
    """The text the model reads for each prompt. With ``config.prompt_style`` "avgen-synth" and ``rewrite``,
    a prompt about avgen-synth's world is read as its caption (``rewrite_prompt``), with one log line for
    each distinct prompt that this changes; any other prompt is read as given, with the unknown-word warning
    (``warn_unknown_words``)."""
    if not isinstance(rewrite, bool):
        raise ConfigError(f"rewrite_prompt must be True or False, got {rewrite!r}")
    captions: dict[str, str] = {}
    as_given = []
    for text in dict.fromkeys(prompts):
        done = _rewritten(text, config, rewrite)
        if done is None or done.caption is None:
            captions[text] = text
            as_given.append(text)
            continue
        captions[text] = done.caption
        if done.changed:
            log.warning(
                "avgen: %s reads %r as %r (%s); rewrite_prompt=False or --raw-prompt keeps the prompt",
                config.name,
                text,
                done.caption,
                done.explanation,
            )
    warn_unknown_words(as_given, config)
    return [captions[text] for text in prompts]


def resolve_task(
    audio: AVClip | None,
    video: AVClip | None,
    extend: AVClip | None,
    seconds: Any,
    height: Any,
    width: Any,
    fps: Any,
    duration: float,
) -> tuple[str, Any, Any, Any, Any]:
    """The task that the given clip makes ("t2av", "a2v", "v2a", "continue") and the clip's ``(seconds,
    height, width, fps)``: ``video=`` fixes all four, ``extend=`` the picture and fps, ``audio=`` the length
    unless given; None is left for the pipeline's default (``duration`` for an extension)."""
    given = [(n, c) for n, c in (("audio", audio), ("video", video), ("extend", extend)) if c is not None]
    if len(given) > 1:
        raise ConfigError(
            f"give at most one of audio=, video=, extend=; got {', '.join(n for n, _ in given)}"
        )
    task = {"audio": "a2v", "video": "v2a", "extend": "continue"}[given[0][0]] if given else "t2av"
    needs = {"audio": ("audio",), "video": ("video",), "extend": ("audio", "video")}
    for name, c in given:
        if not isinstance(c, AVClip) or any(getattr(c, part) is None for part in needs[name]):
            what = " and ".join(needs[name])
            raise ClipError(f"{name}= must be an AVClip with {what}, e.g. read_av(path, streams='av')")
    if video is not None:
        return task, video.video_duration, video.height, video.width, video.fps
    if extend is not None:
        seconds = duration if seconds is None else seconds
        if seconds <= extend.video_duration:
            raise ConfigError(
                f"seconds={seconds} must exceed the given clip's {extend.video_duration:.3f} s to extend it"
            )
        return task, seconds, extend.height, extend.width, extend.fps
    if audio is not None and seconds is None:
        seconds = audio.audio_duration
    return task, seconds, height, width, fps


def clip_timelines(
    prompts: Sequence[str], source: Sequence[int], phonemes: Sequence[Timeline] | None, timing: dict[str, Any]
) -> list[Timeline]:
    """Each clip's phoneme timeline: from ``phonemes`` (one per prompt; clip i's prompt is ``source[i]``),
    or timed from the words its prompt quotes (``prompt_timeline(prompt, **timing)``)."""
    if phonemes is None:
        lines = {p: prompt_timeline(p, **timing) for p in dict.fromkeys(prompts)}
        return [lines[p] for p in prompts]
    if len(phonemes) != max(source) + 1:
        raise ConfigError(
            f"{len(phonemes)} phoneme timelines for {max(source) + 1} prompts; give one per prompt"
        )
    return [phonemes[i] for i in source]


def text_batches(
    cond: Sequence[TextStates], uncond: Sequence[TextStates], speech: Sequence[Timeline] | None
) -> list[tuple[list[int], TextStates, TextStates]]:
    """Clips (each one's prompt and negative prompt encoded alone, and its phoneme timeline if the DiT
    reads them) grouped into batches of clips whose texts and phonemes pad to the same lengths, in order of
    first appearance: (clip indices, their text with phonemes, their negative text) per batch.

    On a CPU the DiT's last bits depend on how far a text is padded but not on the batch size, so a clip
    comes out of its batch as it would alone."""
    width = [Phonemes.from_timelines([s]).ids.shape[1] for s in speech] if speech else [0] * len(cond)
    found: dict[Hashable, list[int]] = {}
    for i, (c, u) in enumerate(zip(cond, uncond, strict=True)):
        found.setdefault((c.states.shape[1], u.states.shape[1], width[i]), []).append(i)
    out = []
    for members in found.values():
        text = TextStates.cat([cond[i] for i in members])
        if speech:
            text = text.with_phonemes(Phonemes.from_timelines([speech[i] for i in members]))
        out.append((members, text, TextStates.cat([uncond[i] for i in members])))
    return out


def diffusers_step_end(pipe: Any, callback: Any, tensor_inputs: Sequence[str] | None) -> StepEnd:
    """A ``generate_tokens`` ``on_step`` that calls a diffusers ``callback_on_step_end(pipe, step_index,
    timestep, callback_kwargs) -> dict``.

    ``callback_kwargs`` holds the tensors named in ``tensor_inputs`` (default ``["latents"]``, or the
    callback's own ``tensor_inputs`` as on diffusers' ``PipelineCallback``); ``"latents"`` is the packed
    token state ``(B, L, F)`` float32 after the step. ``timestep`` is a 0-d float32 tensor, the largest
    token time the step started from, in [0, 1] (1 = noise; diffusers' schedulers count 1000 -> 0). A
    ``"latents"`` in the returned dict replaces the state (same shape).
    """
    if not callable(callback):
        raise ConfigError(f"callback_on_step_end must be callable, got {callback!r}")
    names = list(getattr(callback, "tensor_inputs", None) or tensor_inputs or ["latents"])
    if unknown := [n for n in names if n not in CALLBACK_TENSOR_INPUTS]:
        raise ConfigError(
            f"callback_on_step_end_tensor_inputs: {unknown} not available; choose from "
            f"{list(CALLBACK_TENSOR_INPUTS)}"
        )

    def on_step(i: int, t: Tensor, x: Tensor) -> Tensor | None:
        out = callback(pipe, i, t.max().float(), {"latents": x} if "latents" in names else {})
        if out is None:
            return None
        if not isinstance(out, Mapping):
            raise ConfigError(f"callback_on_step_end must return a dict (its callback_kwargs), got {out!r}")
        latents = out.get("latents")
        if latents is not None and (not isinstance(latents, Tensor) or latents.shape != x.shape):
            got = tuple(latents.shape) if isinstance(latents, Tensor) else type(latents).__name__
            raise ConfigError(
                f"callback_on_step_end returned latents {got}; expected a tensor {tuple(x.shape)}"
            )
        return latents

    return on_step


def autocast_for(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """The DiT's precision while sampling: autocast to its ``dtype``; bf16 for a float32 DiT on CUDA."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16 if dtype == torch.float32 else dtype)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def warn_cpu_dtype(device: torch.device, dtype: torch.dtype) -> None:
    """A RuntimeWarning, pointing at the caller of ``to``, for a DiT in a reduced dtype on a CPU."""
    if device.type == "cpu" and dtype != torch.float32:
        warnings.warn(
            f"avgen: the DiT is in {dtype} on a CPU: it runs under CPU autocast, which is slower than "
            "float32 on CPUs without avx512_bf16 / AMX and less precise; on a CPU keep float32 "
            "(to(torch.float32), or torch_dtype=None)",
            RuntimeWarning,
            stacklevel=3,
        )


def to_arguments(
    args: Sequence[Any], device: Any, dtype: Any, torch_dtype: Any
) -> tuple[torch.device | None, torch.dtype | None]:
    """The device and dtype of ``pipe.to(*args, device=, dtype=, torch_dtype=)`` as diffusers takes them:
    ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, or keywords; None = leave as is."""
    devices = [a for a in args if not isinstance(a, torch.dtype)] + ([device] if device is not None else [])
    dtypes = [a for a in args if isinstance(a, torch.dtype)]
    dtypes += [d for d in (dtype, torch_dtype) if d is not None]
    if len(args) > 2 or len(devices) > 1 or len(set(dtypes)) > 1:
        raise ConfigError(
            f"to() takes one device and one dtype (to(device), to(dtype), to(device, dtype)); got "
            f"args={tuple(args)!r}, device={device!r}, dtype={dtype!r}, torch_dtype={torch_dtype!r}"
        )
    if dtypes and dtypes[0] not in DTYPES:
        raise ConfigError(f"torch_dtype must be one of {', '.join(map(str, DTYPES))}, got {dtypes[0]!r}")
    try:
        where = torch.device(devices[0]) if devices else None
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"to(): {devices[0]!r} is not a device (e.g. 'cpu', 'cuda', 'cuda:1'): {e}") from e
    return where, (dtypes[0] if dtypes else None)
