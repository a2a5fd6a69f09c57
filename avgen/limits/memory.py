"""An estimate of a generation's peak memory against the memory there is, before any work
(``docs/limits.md`` names each limit, its default and how to raise it).

The estimate reads only a pipeline folder's JSON configs (``read_model_shape``), so a request that cannot
fit is refused before a weight is loaded. What it counts, per sample and guidance branch, in float32:

- weights: every parameter at 4 bytes (from the safetensors headers; the DiT's config when a file is
  missing);
- sampling: the live activations of one DiT block, linear in the token count L (self-attention through
  ``F.scaled_dot_product_attention``, whose fused CPU and CUDA kernels never hold an (L, L) matrix), plus
  the sync bridge's (L, L) mask when the model has one, the one O(L^2) term;
- codecs: the video decoder's feature maps per output pixel and the audio codec's per sample (decoding, and
  encoding a given ``--audio`` / ``--video``).

Not counted: PyTorch's math attention fallback (``efficient_attention=False`` adds its B x heads x L^2
scores), allocator fragmentation, and the short-lived copies while weights load. The coefficients were
measured with torch 2.13 on a CPU and rounded up (``docs/limits.md``); under CUDA's bf16 autocast the
activations are about half the estimate.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from avgen.codecs import load_codec
from avgen.codecs.base import HF_ENCODEC, read_codec_config
from avgen.codecs.encodec_config import EncodecCodecConfig
from avgen.codecs.pixel import PixelCodecConfig
from avgen.codecs.video_vae import VideoVAEConfig
from avgen.config import from_dict
from avgen.diffusion.settings import SamplingConfig
from avgen.errors import CheckpointError, ConfigError
from avgen.geometry import ClipGeometry
from avgen.limits.arguments import GIB, MEMORY_ENV, MEMORY_FLAG, MIB, gib
from avgen.model.dit import DiTConfig, parameter_count
from avgen.pipeline_config import PIPELINE_FILE, SHIPPED, PipelineConfig, config_from_json, shipped_path

# Calibration (torch 2.13, CPU, float32; docs/limits.md has the measurements), rounded up.
RUNTIME_BYTES = 256 * MIB  # tokenizer, text activations, PyAV buffers, allocator slack
DIT_FLOATS_PER_TOKEN = 16  # x width, per sample and branch: one block's live activations (measured ~12)
BRIDGE_BYTES_PER_PAIR = 8  # the sync bridge's mask: float time gaps + bool masks, (L, L) once (measured ~6)
MATH_ATTENTION_BYTES_PER_PAIR = 8  # x heads, per sample and branch: float32 scores + softmax, no fused kernel
VIDEO_FLOATS_PER_FEATURE = 8  # x the decoder's features per output pixel summed over levels (measured ~5)
AUDIO_FLOATS_PER_FILTER = 8  # x num_filters per audio sample, EnCodec's convolutions (measured ~5.3)
PIXEL_CODEC_FLOATS = 8  # per pixel: a pixel-space codec only reshapes
FOREIGN_VIDEO = ("hf_wan", "hf_ltx")  # adapters of pretrained codecs (``avgen.codecs``): their decoders'
FOREIGN_AUDIO = ("hf_dac", "hf_oobleck")  # activations are not in the estimate (the DiT and latents are)

# -- what sizes a generation, from JSON ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """What sizes a pipeline's generations, read from its folder's JSON configs without loading weights.

    ``video_floats_per_pixel`` / ``audio_floats_per_sample``: the codecs' working memory per output pixel
    (per VAE frame, at the VAE's padded size) and per audio sample, in float32 values.
    """

    folder: Path
    config: PipelineConfig
    dit: DiTConfig
    temporal_downsample: int
    spatial_downsample: int
    video_floats_per_pixel: float
    sample_rate: int
    hop_length: int
    audio_floats_per_sample: float
    weight_bytes: int

    def geometry(self, seconds: float, height: int, width: int, fps: Any) -> ClipGeometry:
        return ClipGeometry.from_duration(
            seconds,
            fps,
            height=height,
            width=width,
            sample_rate=self.sample_rate,
            temporal_downsample=self.temporal_downsample,
            spatial_downsample=self.spatial_downsample,
            hop_length=self.hop_length,
        )


def pipeline_folder(name_or_path: str | Path) -> Path:
    """The folder ``AVPipeline.from_pretrained`` reads for ``name_or_path`` (a shipped name or a path)."""
    return shipped_path(str(name_or_path)) if str(name_or_path) in SHIPPED else Path(name_or_path)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path}: not found; expected a folder written by AVPipeline.save_pretrained")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from e
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror})") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def tensor_bytes(path: Path) -> int | None:
    """Bytes the tensors of a safetensors file take as float32, from its header alone; None if unreadable."""
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > 100 * MIB:
                return None
            header = json.loads(f.read(size))
    except (OSError, struct.error, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict):
        return None
    total = 0
    for key, entry in header.items():
        if key != "__metadata__" and isinstance(entry, dict) and isinstance(entry.get("shape"), list):
            total += 4 * math.prod(int(n) for n in entry["shape"])
    return total


def _folder_weights(folder: Path) -> int:
    return sum(tensor_bytes(p) or 0 for p in sorted(folder.glob("*.safetensors")))


def _video_codec(folder: Path) -> tuple[int, int, float]:
    """(temporal_downsample, spatial_downsample, floats per output pixel) of a video codec folder."""
    kind, data = read_codec_config(folder)
    where = str(folder / "config.json")
    if kind == "video_vae":
        cfg = from_dict(VideoVAEConfig, data, where=where)
        per_pixel = sum(c / (cfg.patch_size * 2**i) ** 2 for i, c in enumerate(cfg.channels))
        return cfg.temporal_downsample, cfg.spatial_downsample, 3 + VIDEO_FLOATS_PER_FEATURE * per_pixel
    if kind == "pixel":
        cfg = from_dict(PixelCodecConfig, data, where=where)
        return cfg.patch_t, cfg.patch_h * cfg.downsample, PIXEL_CODEC_FLOATS
    if kind in FOREIGN_VIDEO:  # the field's VAEs: factors from the loaded codec; activations not estimated
        codec = load_codec(folder)
        return codec.temporal_downsample, codec.spatial_downsample, 0.0
    raise CheckpointError(f"{where}: a {kind!r} codec is not a video codec (expected video_vae or pixel)")


def _audio_codec(folder: Path) -> tuple[int, int, float]:
    """(sample_rate, hop_length, floats per sample) of an audio codec folder."""
    kind, data = read_codec_config(folder)
    where = str(folder / "config.json")
    if kind == HF_ENCODEC:
        rate, ratios = data.get("sampling_rate"), data.get("upsampling_ratios")
        filters, channels = data.get("num_filters", 32), data.get("audio_channels", 1)
        if not (
            isinstance(rate, int) and isinstance(ratios, list) and all(isinstance(r, int) for r in ratios)
        ):
            raise CheckpointError(
                f"{where}: an EnCodec config needs an int sampling_rate and upsampling_ratios"
            )
        return rate, math.prod(ratios), AUDIO_FLOATS_PER_FILTER * filters * channels
    if kind == "encodec":
        cfg = from_dict(EncodecCodecConfig, data, where=where)
        return cfg.sample_rate, cfg.hop_length, AUDIO_FLOATS_PER_FILTER * cfg.num_filters * cfg.channels
    if kind in FOREIGN_AUDIO:  # DAC, Oobleck: rates from the loaded codec; activations not estimated
        codec = load_codec(folder)
        return codec.sample_rate, codec.hop_length, 0.0
    raise CheckpointError(f"{where}: a {kind!r} codec is not an audio codec (expected encodec)")


def read_model_shape(name_or_path: str | Path) -> ModelShape:
    """The ``ModelShape`` of a pipeline folder (or shipped model name), from JSON only: ``pipeline.json``,
    ``dit/config.json`` and each codec's ``config.json``; errors name the file. Weight files are only read
    for their headers, and may be missing."""
    folder = pipeline_folder(name_or_path)
    meta_file = folder / PIPELINE_FILE
    if str(name_or_path) in SHIPPED and not meta_file.is_file():
        raise CheckpointError(
            f"{meta_file}: not found; the {name_or_path} weights are not in this install; train them with the "
            "recipe in configs/ (see the README) or pass a pipeline folder"
        )
    meta = _read_json(meta_file)
    config = config_from_json(meta, str(meta_file))
    dit_file = folder / "dit" / "config.json"
    dit = from_dict(DiTConfig, _read_json(dit_file), where=str(dit_file))
    ts, ss, video_floats = _video_codec(folder / "video_codec")
    rate, hop, audio_floats = _audio_codec(folder / "audio_codec")
    dit_weights = tensor_bytes(folder / "dit" / "model.safetensors")
    weights = 4 * parameter_count(dit) if dit_weights is None else dit_weights
    weights += _folder_weights(folder / "video_codec") + _folder_weights(folder / "audio_codec")
    text = folder / "text_encoder"
    if not text.is_dir() and config.text.path is not None:
        text = Path(config.text.path)
    elif not text.is_dir():
        from avgen.model.text import default_encoder_path

        try:
            text = Path(default_encoder_path())
        except ConfigError:  # loading will say so; the estimate goes on without it
            text = folder / "text_encoder"
    weights += _folder_weights(text) if text.is_dir() else 0
    return ModelShape(folder, config, dit, ts, ss, video_floats, rate, hop, audio_floats, weights)


# -- the estimate --------------------------------------------------------------------------------------------


def token_counts(geom: ClipGeometry, dit: DiTConfig) -> tuple[int, int]:
    """(video tokens, audio tokens) of a clip: ``avgen.tokens.pack``'s patching of its latent grid."""
    spec = dit.tokens
    t, h, w = geom.video_latent_shape
    pt, ph, pw = spec.video_patch
    video = -(-t // pt) * -(-h // ph) * -(-w // pw)
    return video, -(-geom.audio_latent_length // spec.audio_patch)


def guidance_branches(sampling: SamplingConfig) -> int:
    """Forward passes the guided sampler batches per step: conditional, unconditional (when guided) and one
    per sync guidance (``avgen.diffusion.guidance.guided_velocity``); one with guidance folded into the DiT."""
    if sampling.guidance == "folded":
        return 1
    guided = sampling.video_guidance != 1.0 or sampling.audio_guidance != 1.0
    return 1 + int(guided) + int(sampling.video_sync != 0.0) + int(sampling.audio_sync != 0.0)


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Peak bytes of one generation: ``weights`` + ``RUNTIME_BYTES`` + ``media`` (given clips, held
    throughout) + the largest of ``stages`` (encoding given media, sampling, decoding), each in bytes."""

    tokens: int
    weights: int
    media: int
    stages: Mapping[str, int]

    @property
    def peak(self) -> int:
        return self.weights + RUNTIME_BYTES + self.media + max(self.stages.values(), default=0)

    @property
    def largest(self) -> str:
        return max(self.stages, key=self.stages.__getitem__)

    def describe(self) -> str:
        stage = self.largest
        return (
            f"about {gib(self.peak)} ({stage}: {gib(self.stages[stage])}, weights: {gib(self.weights)}"
            + (f", given media: {gib(self.media)}" if self.media else "")
            + ")"
        )


def estimate_memory(
    shape: ModelShape,
    geom: ClipGeometry,
    *,
    batch: int = 1,
    branches: int = 2,
    encode_audio_samples: int = 0,
    encode_video: bool = False,
    media_bytes: int = 0,
    efficient_attention: bool = True,
) -> MemoryEstimate:
    """Peak memory of generating ``batch`` clips of ``geom`` with ``shape``'s model (module docstring: what is
    and is not counted). ``branches``: ``guidance_branches``; ``encode_audio_samples``: samples of a given
    audio at the codec rate (audio-to-video); ``encode_video``: a given video is encoded (video-to-audio,
    continuation); ``media_bytes``: the given clips as read. Monotone in every size."""
    video_tokens, audio_tokens = token_counts(geom, shape.dit)
    tokens = video_tokens + audio_tokens
    dit, rows = shape.dit, batch * branches
    features = dit.tokens.feature_dim
    head_dim = dit.width // dit.heads
    sampling = 4 * tokens * (rows * dit.width * DIT_FLOATS_PER_TOKEN + (6 + 2 * rows) * batch * features)
    sampling += 4 * 4 * tokens * head_dim  # RoPE tables
    if dit.bridge_window > 0:
        sampling += BRIDGE_BYTES_PER_PAIR * tokens**2
        if not efficient_attention:
            sampling += MATH_ATTENTION_BYTES_PER_PAIR * rows * dit.bridge_heads * tokens**2
    if not efficient_attention:
        sampling += MATH_ATTENTION_BYTES_PER_PAIR * rows * dit.heads * tokens**2
    h, w = geom.vae_size
    vae_pixels = geom.vae_frames * h * w
    frames_out = batch * geom.num_frames * geom.height * geom.width * 3  # uint8 frames, kept to the end
    stages = {
        "sampling": sampling,
        "video decoding": int(4 * batch * vae_pixels * shape.video_floats_per_pixel),
        "audio decoding": int(4 * batch * geom.num_samples * shape.audio_floats_per_sample) + frames_out,
    }
    if encode_audio_samples:
        stages["audio encoding"] = int(4 * encode_audio_samples * shape.audio_floats_per_sample)
    if encode_video:
        stages["video encoding"] = int(4 * vae_pixels * shape.video_floats_per_pixel)
    return MemoryEstimate(tokens, shape.weight_bytes, media_bytes, stages)


# -- the memory there is -------------------------------------------------------------------------------------


def _meminfo_available(path: str = "/proc/meminfo") -> int | None:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup memory limit (cgroup version 2 or 1), None when it has none."""
    pairs = (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    )
    for limit_file, usage_file in pairs:
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:
            return max(0, int(limit) - usage)
    return None


def available_memory(device: str = "cpu") -> tuple[int, str]:
    """(bytes free for a generation on ``device``, where that number comes from)."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free), f"free memory of {device} (torch.cuda.mem_get_info)"
    found = _meminfo_available()
    source = "MemAvailable in /proc/meminfo"
    if found is None:
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            source = "free physical memory (os.sysconf)"
        except (ValueError, OSError, AttributeError):
            return 2**62, "unknown (no /proc/meminfo nor sysconf): not checked"
    room = _cgroup_room()
    if room is not None and room < found:
        return room, "room left under this cgroup's memory limit"
    return found, source


def memory_limit(
    device: str = "cpu", override_gb: float | None = None, environ: Mapping[str, str] | None = None
) -> tuple[float, str]:
    """(bytes a generation may use, where that comes from): ``override_gb`` (the ``--max-memory-gb`` flag),
    else ``$AVGEN_MEMORY_LIMIT_GB``, else ``available_memory(device)``. ``inf`` turns the check off."""
    environ = os.environ if environ is None else environ
    if override_gb is None and environ.get(MEMORY_ENV, "").strip():
        raw = environ[MEMORY_ENV].strip()
        try:
            override_gb = float(raw)
        except ValueError:
            raise ConfigError(f"{MEMORY_ENV}={raw!r}: expected a number of GiB, e.g. 32 (or inf)") from None
        name = f"{MEMORY_ENV}={raw}"
    else:
        name = f"{MEMORY_FLAG} {override_gb}"
    if override_gb is not None:
        if math.isnan(override_gb) or override_gb <= 0:
            raise ConfigError(f"{name}: the memory limit must be a number of GiB > 0 (inf turns it off)")
        return override_gb * GIB, name
    free, source = available_memory(device)
    return float(free), source


def check_memory(estimate: MemoryEstimate, limit: float, source: str, culprits: list[str]) -> None:
    """ConfigError when ``estimate.peak`` exceeds ``limit`` bytes: names the ``culprits`` (the arguments that
    set the clip's size), the limit and how to raise it."""
    if estimate.peak <= limit:
        return
    what = ", ".join(culprits) if culprits else "the pipeline's default clip"
    raise ConfigError(
        f"{what}: this generation would need {estimate.describe()} for {estimate.tokens:,} tokens, more than "
        f"the {gib(limit)} allowed ({source}); make the clip shorter, smaller or at a lower frame rate, or "
        f"if you know it fits raise the limit with {MEMORY_FLAG} N or {MEMORY_ENV}=N (GiB; see docs/limits.md)"
    )
