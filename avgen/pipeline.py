"""AVPipeline: prompt in, AVClip out. Text encoder + joint DiT + sampler + video VAE + audio codec.

One model, three tasks: text-to-audio-video, audio-to-video (bring your own speech: the given audio
is held clean at t = 0 while the video is generated) and video-to-audio (foley for a silent clip).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from avgen.atomic import atomic_dir, write_json
from avgen.clip import AVClip
from avgen.codecs import load_codec
from avgen.codecs.tiny import tiny_audio_codec, tiny_video_vae
from avgen.config import to_dict
from avgen.diffusion import generate, streaming, windows  # (modules: a benchmark times generate_tokens)
from avgen.diffusion.settings import SamplingConfig
from avgen.dsp import fit_length, resample
from avgen.errors import CheckpointError, ClipError, ConfigError
from avgen.geometry import ClipGeometry
from avgen.model.dit import JointDiT, tiny_dit
from avgen.model.phonemes import Timeline
from avgen.model.text import TextEncoder, TextStates, default_encoder_path, tiny_text_encoder
from avgen.pipeline_calls import (
    autocast_for,
    clip_generators,
    clip_timelines,
    diffusers_step_end,
    expand_prompts,
    model_caption,
    model_prompts,
    resolve_aliases,
    resolve_task,
    text_batches,
    to_arguments,
    warn_cpu_dtype,
)
from avgen.pipeline_config import (
    FORMAT,
    PARTS,
    PIPELINE_FILE,
    SHIPPED,
    VERSION,
    PipelineConfig,
    config_from_json,
    shipped_path,
)
from avgen.tokens import Packed, TokenSpec, pack, unpack


def to_pixels(video: Tensor) -> np.ndarray:
    """(B, 3, T, H, W) float in [-1, 1] -> uint8 (B, T, H, W, 3)."""
    x = ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).cpu().numpy()


def from_pixels(frames: np.ndarray) -> Tensor:
    """uint8 (T, H, W, 3) -> (1, 3, T, H, W) float32 in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float() / 127.5 - 1
    return x.permute(3, 0, 1, 2)[None]


def frames_at(frames: np.ndarray, src_fps: Fraction, geom: ClipGeometry) -> np.ndarray:
    """uint8 (T, H, W, 3) at ``src_fps`` -> ``geom.num_frames`` frames at ``geom.fps`` (the latest source
    frame shown at each target frame's time; the last one repeats past the end)."""
    idx = np.minimum((np.arange(geom.num_frames) * src_fps / geom.fps).astype(np.int64), len(frames) - 1)
    return frames[idx]


def _is_packaged_encoder(encoder: Any) -> bool:
    """True for the default text encoder, the MiniLM pack shipped inside avgen (``default_encoder_path``)."""
    default = Path(default_encoder_path()).resolve()
    return Path(str(getattr(encoder.model, "name_or_path", ""))).resolve() == default


class AVPipeline:
    """Generate clips: ``AVPipeline.from_pretrained("avgen-tiny")("a red ball bounces", seed=0)``.

    dit: a JointDiT; video_codec / audio_codec: avgen codecs (see avgen.codecs); text_encoder: a
    TextEncoder whose width is the DiT's ``text_dim``.
    """

    def __init__(
        self,
        dit: Any,
        video_codec: Any,
        audio_codec: Any,
        text_encoder: Any,
        config: PipelineConfig | None = None,
    ) -> None:
        self.dit, self.video_codec, self.audio_codec, self.text_encoder = (
            dit,
            video_codec,
            audio_codec,
            text_encoder,
        )
        self.config = config or PipelineConfig()
        spec = dit.config.tokens
        checks = [
            ("video latent channels", spec.video_channels, video_codec.latent_channels),
            ("audio latent channels", spec.audio_channels, audio_codec.latent_channels),
            ("text width", dit.config.text_dim, text_encoder.dim),
        ]
        for what, model_side, part_side in checks:
            if model_side != part_side:
                raise CheckpointError(
                    f"pipeline parts disagree on {what}: DiT expects {model_side}, got {part_side}"
                )
        for module in (dit, video_codec, audio_codec, text_encoder):
            module.eval().requires_grad_(False)

    # -- devices ---------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.dit.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The DiT's dtype (``to``); the text encoder, the codecs and the sampler's state are float32."""
        return next(self.dit.parameters()).dtype

    def to(
        self,
        *args: Any,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        torch_dtype: torch.dtype | None = None,
    ) -> AVPipeline:
        """Move every part to a device and/or put the DiT in a dtype, as diffusers' ``to`` does:
        ``to("cuda")``, ``to(torch.bfloat16)``, ``to("cuda", torch.float16)``, ``to(torch_dtype=...)``;
        returns ``self``.

        The dtype (float32, bfloat16 or float16) is the DiT's, which holds nearly all the weights and the
        compute; it runs under autocast to that dtype (on CUDA a float32 DiT runs under bf16 autocast). The
        text encoder and both codecs stay float32: they are small, and the codecs' outputs are the final
        pixels and samples. The sampler's state stays float32. A reduced dtype on a CPU warns: CPU autocast
        emulates bf16 / fp16 matmuls without avx512_bf16 or AMX (slower than float32), and is less precise.
        """
        where, dt = to_arguments(args, device, dtype, torch_dtype)
        if where is not None:
            for module in (self.dit, self.video_codec, self.audio_codec, self.text_encoder):
                module.to(where)
        if dt is not None:
            self.dit.to(dtype=dt)
        warn_cpu_dtype(self.device, self.dtype)
        return self

    def compile(self, **options: Any) -> AVPipeline:
        """``torch.compile`` the DiT's blocks (``JointDiT.compile_blocks``), where sampling spends its time;
        returns ``self``. Meant for CUDA, where a small DiT is bound by kernel launches; on a CPU sampling
        is matmul-bound and gains little (``benchmarks/compile_speed.py``). The first call compiles (seconds;
        on a CPU it needs a C++ compiler, g++ or ``$CXX``).
        """
        self.dit.compile_blocks(**options)
        return self

    # -- folders ---------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``pipeline.json`` and one sub-folder per part (config JSON + safetensors), atomically:
        the folder is built beside ``directory`` and renamed into place."""

        target = Path(directory)
        if target.exists() and not overwrite:
            raise CheckpointError(f"{target}: exists; pass overwrite=True to replace it")
        with atomic_dir(target) as tmp:
            tmp.mkdir(parents=True)
            for name in PARTS:
                getattr(self, name).save_pretrained(tmp / name)
            if not _is_packaged_encoder(self.text_encoder):  # the MiniLM ships in avgen; others travel along
                self.text_encoder.save_pretrained(tmp / "text_encoder")
            write_json(
                tmp / PIPELINE_FILE, {"format": FORMAT, "version": VERSION, "config": to_dict(self.config)}
            )
        return target

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        device: str | torch.device = "cpu",
        torch_dtype: torch.dtype | None = None,
    ) -> AVPipeline:
        """Load a pipeline folder, or a shipped model by name (``"avgen-tiny"``). Works offline.
        ``torch_dtype``: the DiT's dtype (``to``; default float32, as stored)."""

        path = shipped_path(str(name_or_path)) if str(name_or_path) in SHIPPED else Path(name_or_path)
        meta_file = path / PIPELINE_FILE
        if not meta_file.is_file():
            hint = (
                "the avgen-tiny weights are not in this install; train them with the recipe in configs/ "
                "(see the README) or pass a pipeline folder"
                if str(name_or_path) in SHIPPED
                else "expected a folder written by AVPipeline.save_pretrained"
            )
            raise CheckpointError(f"{meta_file}: not found; {hint}")
        try:
            meta = json.loads(meta_file.read_text())
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{meta_file}: not valid JSON ({e})") from e
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"{meta_file}: format is {meta.get('format')!r}, expected {FORMAT!r}")
        config = config_from_json(meta, str(meta_file))
        dit = JointDiT.from_pretrained(path / "dit")
        text_dir = path / "text_encoder"
        if text_dir.is_dir():
            text = TextEncoder.from_pretrained(text_dir, max_length=config.text.max_length)
        else:
            text = TextEncoder.from_config(config.text)
            if text.dim != dit.config.text_dim:  # a pipeline saved with its own encoder lost that folder
                raise CheckpointError(
                    f"{text_dir}: missing; the DiT reads {dit.config.text_dim}-wide text states and the "
                    f"configured encoder gives {text.dim}: restore the folder the pipeline was saved with"
                )
        pipe = cls(dit, load_codec(path / "video_codec"), load_codec(path / "audio_codec"), text, config)
        return pipe.to(device, torch_dtype=torch_dtype)

    # -- generation ------------------------------------------------------------------------------------
    def geometry(self, seconds: float, height: int, width: int, fps: Any = None) -> ClipGeometry:
        """The clip's frame/sample counts and latent grid; errors say which values are valid."""
        for name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or not 8 <= value <= 4096:
                raise ConfigError(f"{name} must be a whole number of pixels in [8, 4096], got {value!r}")
        return ClipGeometry.from_duration(
            seconds,
            self.config.fps if fps is None else fps,
            height=height,
            width=width,
            sample_rate=self.audio_codec.sample_rate,
            temporal_downsample=self.video_codec.temporal_downsample,
            spatial_downsample=self.video_codec.spatial_downsample,
            hop_length=self.audio_codec.hop_length,
        )

    def _encode_audio(self, clip: AVClip, geom: ClipGeometry, batch: int) -> Tensor:
        """The clip's audio (mono, at the codec rate, cut or zero-padded to the clip) as (B, D, L) latents."""

        wav = torch.from_numpy(clip.audio).float().mean(0, keepdim=True)  # (1, N) mono
        wav = fit_length(resample(wav, clip.sample_rate, geom.sample_rate), geom.num_samples)
        return self.audio_codec.encode(wav[None].to(self.device)).expand(batch, -1, -1)

    def _encode_video(self, clip: AVClip, geom: ClipGeometry, batch: int) -> Tensor:
        """The clip's frames at the clip's fps, padded to the VAE grid, as (B, D, T', H', W') latents."""
        x = geom.pad_video(from_pixels(frames_at(clip.video, clip.fps, geom))).to(self.device)
        return self.video_codec.encode(x).expand(batch, -1, -1, -1, -1)

    def _decode(self, v_lat: Tensor, a_lat: Tensor, geom: ClipGeometry) -> tuple[np.ndarray, np.ndarray]:
        """Latents -> uint8 frames (B, T, H, W, 3) cut to the clip and float32 audio (B, C, N).

        NaN or inf in either decoded signal raises ClipError naming the stage (the sampler's latents or the
        codec's decoder) instead of coming out as black frames or silence; one ``isfinite`` pass per modality
        (the latents are looked at only then).
        """

        def check(what: str, out: Tensor, lat: Tensor) -> None:
            if bool(torch.isfinite(out).all()):  # note: a device sync point, once per modality
                return
            stage = (
                f"the sampler produced non-finite {what} latents (the DiT diverged: check its weights, or "
                "lower the guidance)"
                if not bool(torch.isfinite(lat).all())
                else f"the {what} codec decoded non-finite values from finite latents (its decoder "
                "overflowed: check the codec weights, or run it in float32)"
            )
            raise ClipError(f"{stage}; refusing to return a clip of NaN/inf {what}")

        video = self.video_codec.decode(v_lat)
        check("video", video, v_lat)
        frames = to_pixels(video)[:, : geom.num_frames, : geom.height, : geom.width]
        audio = self.audio_codec.decode(a_lat, length=geom.num_samples)
        check("audio", audio, a_lat)
        wav = audio.cpu().numpy()
        return frames, wav

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | Sequence[str],
        *,
        seconds: float | None = None,
        height: int | None = None,
        width: int | None = None,
        fps: Any = None,
        seed: int = 0,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        audio: AVClip | None = None,
        video: AVClip | None = None,
        extend: AVClip | None = None,
        progress: bool = True,
        speech_start: float | None = None,
        speech_rate: int | None = None,
        phonemes: Sequence[Timeline] | None = None,
        num_videos_per_prompt: int = 1,
        window: float | windows.Windowing | None = None,
        overlap: float = 0.25,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] | None = None,
        rewrite_prompt: bool = True,
        **sampling: Any,
    ) -> AVClip | list[AVClip]:
        """Generate ``num_videos_per_prompt`` clips per prompt, prompt-major: an AVClip for a string prompt
        and one clip per prompt, otherwise a list (for a list of prompts, always).

        Tasks: text-to-audio-video (default) of ``seconds`` at ``height`` x ``width`` and ``fps``;
        ``audio=`` an AVClip with audio -> audio-to-video (its length sets ``seconds`` unless given; the
        returned clip carries that audio unchanged, cut to ``seconds`` if given shorter); ``video=`` an
        AVClip with video -> video-to-audio (its frames, size, fps and length are kept); ``extend=`` an
        AVClip with both -> continuation: its frames and sound are kept and the clip grows to ``seconds``. ``sampling``: any field of
        ``SamplingConfig`` (``steps``, ``sampler``, ``shift``, ``video_guidance``, ``audio_guidance``,
        ``video_sync``, ``audio_sync``, ``order``, ``negative_prompt``) overriding the pipeline's
        ``config.sampling`` for this call (None keeps it), or a diffusers / audiocraft name for one
        (``pipeline_calls.ALIASES``: ``num_inference_steps``, ``guidance_scale`` = both guidance scales,
        ``audio_guidance_scale``, ``num_frames``, ``frame_rate``, ``duration``). ``negative_prompt`` may
        also be a list, one per prompt.

        Randomness: clip i draws all its noise from its own generator, seeded ``seed + i``, or from
        ``generator`` (one per clip; a single one stands for ``seed=generator.initial_seed()``), and its
        metadata's ``seed`` regenerates it alone: ``pipe(its_prompt, seed=that)`` with the same settings
        gives the same frames and audio, bit for bit on a CPU. For that, each prompt is encoded alone, clips
        whose texts pad alike are sampled as one batch, and each clip is decoded alone.
        ``callback_on_step_end(pipe, step_index, timestep, callback_kwargs) -> dict`` runs after each
        solver step of each batch, as in diffusers (``pipeline_calls.diffusers_step_end``).

        Speech, for a DiT that reads timed phonemes (``DiTConfig.phonemes``): the words a prompt quotes are
        timed by espeak-ng (the ``speech`` extra) from ``speech_start`` seconds at ``speech_rate`` words per
        minute (``avgen.data.speech_timing.speak_timeline``; defaults fit the words into the clip), or
        ``phonemes`` gives each prompt's timeline itself: ``[(start_s, end_s, espeak_mnemonic), ...]``.
        ``window=`` seconds: a long t2av clip in windows, each continuing the last ``overlap`` seconds of the
        one before (``avgen.diffusion.windows``, docs/long_clips.md); None: one whole-clip pass.

        Prompt style (``config.prompt_style``): "avgen-synth" reads each prompt about avgen-synth's world as
        a caption of its grammar (``avgen.data.synth.rewrite``), logging one line when that changes it;
        ``rewrite_prompt=False`` reads every prompt as given. Each clip's metadata keeps the prompt as given
        (``prompt``) and the text the model read (``caption``).
        """
        cfg = self.config
        call = resolve_aliases({"seconds": seconds, "fps": fps, **sampling}, cfg.fps)
        seconds, fps, negative = call.pop("seconds"), call.pop("fps"), call.pop("negative_prompt", None)
        settings = cfg.sampling.replace(
            **call, negative_prompt=negative if isinstance(negative, str) else None
        )
        generate.check_guidance(settings, cfg.sampling, self.dit.config.guidance_embed)
        if negative is not None and not isinstance(negative, str) and settings.guidance == "folded":
            raise ConfigError(
                "negative_prompt: this pipeline's guidance is folded into its DiT at negative_prompt="
                f"{cfg.sampling.negative_prompt!r}, so a list of negative prompts cannot change it; leave it out"
            )
        texts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not texts or not all(isinstance(p, str) for p in texts):
            raise ConfigError(f"prompt must be a string or a non-empty list of strings, got {prompt!r}")
        prompts, negatives, source = expand_prompts(
            model_prompts(texts, cfg, rewrite_prompt),
            settings.negative_prompt if negative is None else negative,
            num_videos_per_prompt,
        )
        task, seconds, height, width, fps = resolve_task(
            audio, video, extend, seconds, height, width, fps, cfg.duration
        )
        geom = self.geometry(  # None takes the pipeline's default; 0 is refused by the geometry, not replaced
            cfg.duration if seconds is None else seconds,
            cfg.height if height is None else height,
            cfg.width if width is None else width,
            fps,
        )
        gens, seeds = clip_generators(len(prompts), seed, generator, self.device)
        sample = (
            windows.WindowedSampler(self, task, geom, window, overlap) if window is not None else self._sample
        )

        # Given modalities are encoded once (batch 1; the causal VAE encodes a prefix alone); prompts alone.
        a_given = self._encode_audio(audio or extend, geom, 1) if task in ("a2v", "continue") else None
        v_given = self._encode_video(video or extend, geom, 1) if task in ("v2a", "continue") else None
        held = 0.0  # "continue": the tokens wholly inside the given clip are held clean
        if extend is not None:
            samples = round(extend.audio_duration * geom.sample_rate)
            held = windows.given_threshold(
                geom, self.dit.config.tokens, extend.num_frames, samples, exact=False
            )
        cond = {p: self.text_encoder([p]) for p in dict.fromkeys(prompts)}
        uncond = {n: self.text_encoder([n]) for n in dict.fromkeys(negatives)}
        speech = None
        if self.dit.config.phonemes:
            timing = {"seconds": geom.duration, "start": speech_start, "rate": speech_rate}
            speech = clip_timelines(prompts, source, phonemes, timing)
        batches = text_batches([cond[p] for p in prompts], [uncond[n] for n in negatives], speech)
        passes = 1 if settings.order == "joint" or task in ("a2v", "v2a") else 2
        bar = None
        if progress:
            total = len(batches) * passes * settings.steps * (1 if window is None else sample.count)
            bar = tqdm(total=total, desc=f"avgen {task}", unit="step", leave=False)
        on_step = None
        if callback_on_step_end is not None:
            on_step = diffusers_step_end(self, callback_on_step_end, callback_on_step_end_tensor_inputs)
        frames: list[np.ndarray] = [np.empty(0)] * len(prompts)
        wavs: list[np.ndarray] = [np.empty(0)] * len(prompts)
        for members, cond_states, uncond_states in batches:
            batch_frames, batch_wavs = sample(
                task,
                geom,
                settings,
                cond_states.to(self.device),
                uncond_states,
                [gens[i] for i in members],
                (v_given, a_given),
                seconds=held,
                callback=(lambda i, x: bar.update(1)) if bar is not None else None,
                on_step=on_step,
            )
            for row, i in enumerate(members):
                frames[i], wavs[i] = batch_frames[row], batch_wavs[row]
        if bar is not None:
            bar.close()
        clips = []
        for i, text in enumerate(prompts):
            meta = {
                "model": cfg.name,
                "prompt": texts[source[i]],
                "caption": text,
                "seed": str(seeds[i]),
                "task": task,
                "steps": str(settings.steps),
            }
            if passes == 2:
                meta["order"] = settings.order
            if window is not None:
                meta.update(sample.metadata)
            if extend is not None:  # the given prefix comes back exactly as given
                frames[i][: extend.num_frames] = extend.video[: geom.num_frames]
                n = min(extend.num_samples, geom.num_samples) if extend.sample_rate == geom.sample_rate else 0
                wavs[i][:, :n] = extend.audio.mean(0)[:n]
            clip_frames, clip_fps = (video.video, video.fps) if video is not None else (frames[i], geom.fps)
            sound, rate = (
                (audio.audio[:, : round(geom.duration * audio.sample_rate)], audio.sample_rate)
                if audio is not None  # the given sound, cut to the clip when seconds= asked for less
                else (wavs[i], geom.sample_rate)
            )
            clips.append(
                AVClip(video=clip_frames, fps=clip_fps, audio=sound, sample_rate=rate, metadata=meta)
            )
        return clips[0] if isinstance(prompt, str) and len(clips) == 1 else clips

    def stream(self, prompt: str, **kwargs: Any) -> Iterator[AVClip]:
        """Generate one long clip window by window, yielding each window's new part as an AVClip as soon
        as it is decoded (``avgen.diffusion.streaming.stream``; ``write_stream`` writes them to a file)."""
        rewrite = kwargs.get("rewrite_prompt", True)
        caption = model_caption(prompt, self.config, rewrite) if isinstance(prompt, str) else None
        return streaming.stream(self, prompt, caption=caption, **kwargs)

    def _sample(
        self,
        task: str,
        geom: ClipGeometry,
        settings: SamplingConfig,
        cond: TextStates,
        uncond: TextStates,
        generators: list[torch.Generator],
        given: tuple[Tensor | None, Tensor | None],
        **options: Any,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One batch (a row of ``cond`` and a generator per clip) sampled, then decoded clip by clip (the
        codecs' last bits depend on the batch size): uint8 frames (B, T, H, W, 3), float32 audio (B, C, N).

        ``given``: the video and audio latents (batch 1) that the task keeps, or None for a generated
        modality; ``options``: ``generate_tokens``'s ``seconds``, ``callback`` and ``on_step``.
        """
        batch, spec = len(cond), self.dit.config.tokens
        v_given, a_given = given
        v_lat = torch.zeros(batch, spec.video_channels, *geom.video_latent_shape, device=self.device)
        a_lat = torch.zeros(batch, spec.audio_channels, geom.audio_latent_length, device=self.device)
        if v_given is not None:
            v_lat = v_given.expand(batch, *v_given.shape[1:])
        if a_given is not None:
            a_lat = a_given.expand(batch, *a_given.shape[1:])
        packed = pack(spec, v_lat, a_lat, geom.video_times(), geom.audio_times())
        with autocast_for(self.device, self.dtype):
            tokens = generate.generate_tokens(
                self.dit, packed, cond, uncond, task=task, sampling=settings, generator=generators, **options
            )
        v_out, a_out = unpack(tokens.float(), packed.layout)
        decoded = [self._decode(v_out[i : i + 1], a_out[i : i + 1], geom) for i in range(batch)]
        return np.concatenate([f for f, _ in decoded]), np.concatenate([w for _, w in decoded])

    def _latents(self, clip: AVClip, what: str) -> tuple[Tensor, Tensor, ClipGeometry]:
        """Both codecs' latents of ``clip`` (batch 1) at its own size, fps and length, and its geometry."""
        if not isinstance(clip, AVClip) or clip.video is None or clip.audio is None:
            raise ClipError(f"{what} needs an AVClip with video and audio, e.g. read_av(path, streams='av')")
        geom = self.geometry(clip.video_duration, clip.height, clip.width, clip.fps)
        return self._encode_video(clip, geom, 1), self._encode_audio(clip, geom, 1), geom

    @torch.no_grad()
    def encode(self, clip: AVClip) -> Packed:
        """``clip`` as the DiT sees it: video latent patches and audio codec frames packed into one token
        sequence (batch 1), positions on one time axis, at the clip's own size, fps and length. These are
        the clean tokens that training noises and that a2v / v2a keep; ``avgen.tokens.unpack`` and the
        codecs' ``decode`` invert it (``reconstruct``). Audio is mixed to mono at the codec's rate."""
        v_lat, a_lat, geom = self._latents(clip, "encode")
        return pack(self.dit.config.tokens, v_lat, a_lat, geom.video_times(), geom.audio_times())

    @torch.no_grad()
    def reconstruct(self, clip: AVClip) -> AVClip:
        """``clip`` through both codecs (encode, then decode) at its own size, fps and length: what the
        latent space keeps of it, so the ceiling of what any generated clip can show. Audio is mixed to
        mono at the codec's rate, as generation does."""
        v_lat, a_lat, geom = self._latents(clip, "reconstruct")
        frames, wav = self._decode(v_lat, a_lat, geom)
        meta = {"model": self.config.name, "task": "reconstruct"}
        return AVClip(
            video=frames[0], fps=geom.fps, audio=wav[0], sample_rate=geom.sample_rate, metadata=meta
        )


def tiny_pipeline(seed: int = 0) -> AVPipeline:
    """A random pipeline built in-process in well under a second, for tests (no files, no network)."""

    video_codec, audio_codec = tiny_video_vae(seed), tiny_audio_codec(seed)
    text = tiny_text_encoder(seed=seed)
    spec = TokenSpec(video_channels=video_codec.latent_channels, audio_channels=audio_codec.latent_channels)
    dit = tiny_dit(spec, text_dim=text.dim, seed=seed)
    return AVPipeline(
        dit,
        video_codec,
        audio_codec,
        text,
        PipelineConfig(name="tiny-random", sampling=SamplingConfig(steps=2)),
    )
