"""EnCodec audio codec: continuous latents for diffusion, RVQ codes on demand.

The model is the plain-torch ``Encodec`` (``avgen.codecs.encodec_torch``; the tensor names of
``transformers.EncodecModel``, whose folders load too). The continuous latent is the SEANet encoder output
before quantization (what the transformer diffuses), normalised per channel by LatentStats.
``quantize``/``dequantize`` go through the model's residual VQ.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor, nn

from avgen._optional import require_transformers
from avgen.codecs.base import (
    CONFIG_NAME,
    HF_ENCODEC,
    WEIGHTS_NAME,
    CodecIdCache,
    LatentStats,
    check_audio_latents,
    check_wav,
    local_codec_folder,
    read_codec_config,
    save_codec_folder,
)
from avgen.codecs.encodec_config import EncodecCodecConfig
from avgen.codecs.encodec_torch import Encodec, init_like_transformers_, upgrade_weight_norm_names
from avgen.codecs.hub import fetch_hub, hub_id
from avgen.codecs.latent_stats import STATS_NAME, read_stats_file
from avgen.config import from_dict, to_dict
from avgen.dsp import fit_length, resample
from avgen.errors import CheckpointError, ClipError
from avgen.weights import load_state_checked, load_tensors

KIND = "encodec"
# weight files transformers reads from a local folder, the usual one first
HF_WEIGHT_NAMES = (WEIGHTS_NAME, "model.safetensors.index.json", "pytorch_model.bin")


OUTPUT_GAIN = 0.1  # scale of the decoder's last conv at init: output level near that of real audio


@torch.no_grad()
def init_seanet_(model: nn.Module, output_gain: float = OUTPUT_GAIN) -> None:
    """Variance-preserving init of a fresh SEANet EnCodec, in place, from the global RNG.

    Every conv weight ~ N(0, 1 / fan_in) (fan_in = in_channels * kernel / stride for transposed convs),
    set through the weight-norm parametrisation (g = ||v||); biases zero; the decoder's last conv scaled by
    ``output_gain``. The construction init (``init_like_transformers_``) cannot reach weights behind
    ``weight_norm``, which leaves PyTorch's default (0.41x this std) and random biases: the input signal fades
    layer by layer under the biases, the latents barely depend on the audio, and training stalls near -45 dB
    held-out SI-SNR. The LSTMs keep their init (they are residual).
    """
    last = model.decoder.layers[-1].conv
    for conv in model.modules():
        if not isinstance(conv, (nn.Conv1d, nn.ConvTranspose1d)):
            continue
        k = conv.kernel_size[0]
        if isinstance(conv, nn.ConvTranspose1d):
            fan_in = conv.in_channels * k / conv.stride[0]
        else:
            fan_in = conv.in_channels // conv.groups * k
        gain = output_gain if conv is last else 1.0
        v = torch.randn_like(conv.weight) * (gain / math.sqrt(fan_in))
        param = getattr(getattr(conv, "parametrizations", None), "weight", None)
        if param is None:
            conv.weight.copy_(v)
        else:  # weight_norm over dim 0: weight = g * v / ||v||, with g = ||v|| it is v itself
            param.original1.copy_(v)
            param.original0.copy_(torch.linalg.vector_norm(v, dim=tuple(range(1, v.dim())), keepdim=True))
        if conv.bias is not None:
            conv.bias.zero_()


class EncodecCodec(nn.Module):
    """EnCodec behind the AudioCodec protocol.

    ``encode``: wav (B, C, N) float in [-1, 1] at ``sample_rate`` (or ``sample_rate=sr``) -> (B, D, L)
    float32 normalised latents, L = ceil(N / hop_length). ``decode``: (B, D, L) -> (B, C, L * hop) in
    [-1, 1], or exactly ``length`` samples.

    ``model``: an ``Encodec`` (or a ``transformers.EncodecModel``) of ``config``; by default a fresh one,
    initialised from the global RNG (``init_like_transformers_`` then ``init_seanet_``).
    """

    def __init__(self, config: EncodecCodecConfig, model: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        if model is None:
            model = Encodec(config)
            init_like_transformers_(model)
            init_seanet_(model)
        self.model = model
        self.stats = LatentStats(config.latent_channels)
        self._ids = CodecIdCache()

    # --- properties ---
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def channels(self) -> int:
        return self.config.channels

    @property
    def latent_channels(self) -> int:
        return self.config.latent_channels

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def latent_rate(self) -> float:
        """Latent frames per second (sample_rate / hop_length, e.g. 50.0 for 16 kHz, hop 320)."""
        return self.sample_rate / self.hop_length

    @property
    def num_quantizers(self) -> int:
        return self.config.num_quantizers

    @property
    def codec_id(self) -> str:
        """Stable hash of config + weights (latent stats included): keys the latent cache."""
        return f"{KIND}-{self._ids.get(to_dict(self.config), self)}"

    def latent_length(self, num_samples: int) -> int:
        """Latent frames for ``num_samples`` samples at ``sample_rate``: ceil(N / hop)."""
        if num_samples < 1:
            raise ClipError(f"num_samples must be >= 1, got {num_samples}")
        return math.ceil(num_samples / self.hop_length)

    # --- raw (unnormalised) paths, used by training ---
    def encode_raw(self, wav: Tensor) -> Tensor:
        """(B, C, N) -> raw encoder output (B, D, ceil(N / hop)); no checks, grads flow."""
        return self.model.encoder(wav)

    def decode_raw(self, z: Tensor) -> Tensor:
        """Raw latents (B, D, L) -> (B, C, L * hop) unclamped; grads flow."""
        return self.model.decoder(z)

    # --- protocol ---
    def encode(self, wav: Tensor, sample_rate: int | None = None) -> Tensor:
        """(B, C, N) float in [-1, 1] at ``sample_rate`` (default: the codec's) -> (B, D, L) normalised."""
        check_wav(wav, self.channels)
        x = wav.float()
        if sample_rate is not None and sample_rate != self.sample_rate:
            x = resample(x, int(sample_rate), self.sample_rate)
        return self.stats.normalize(self.encode_raw(x))

    def _check_latents(self, z: Tensor) -> None:
        check_audio_latents(z, self.latent_channels)

    def decode(self, z: Tensor, length: int | None = None, sample_rate: int | None = None) -> Tensor:
        """(B, D, L) normalised latents -> (B, C, N) float32 in [-1, 1].

        ``length``: exact output sample count (at ``sample_rate`` when given, else the codec's rate);
        by default N = L * hop_length. With ``sample_rate`` the output is resampled to that rate.
        """
        self._check_latents(z)
        out_sr = self.sample_rate if sample_rate is None else int(sample_rate)
        if length is not None and length < 1:
            raise ClipError(f"length must be >= 1, got {length}")
        y = self.decode_raw(self.stats.denormalize(z.float()))
        if out_sr != self.sample_rate:
            y = resample(y, self.sample_rate, out_sr)
        if length is not None:
            # resampling may round the count down by one sample; allow padding that one
            slack = 0 if out_sr == self.sample_rate else 1
            if length > y.shape[-1] + slack:
                raise ClipError(
                    f"length={length} samples is more than {z.shape[-1]} latent frames give "
                    f"({y.shape[-1]} at {out_sr} Hz); pass the length the latents were encoded from"
                )
            y = fit_length(y, length)
        return y.clamp(-1.0, 1.0)

    # --- residual VQ ---
    def quantize(self, z: Tensor, num_quantizers: int | None = None) -> Tensor:
        """Normalised latents (B, D, L) -> RVQ codes (B, K, L) int64, K = num_quantizers (default all)."""
        self._check_latents(z)
        k = self.num_quantizers if num_quantizers is None else int(num_quantizers)
        if not 1 <= k <= self.num_quantizers:
            raise ClipError(f"num_quantizers must be in 1..{self.num_quantizers}, got {k}")
        residual = self.stats.denormalize(z.float())
        codes = []
        for layer in self.model.quantizer.layers[:k]:
            idx = layer.encode(residual)  # (B, L)
            residual = residual - layer.decode(idx)
            codes.append(idx)
        return torch.stack(codes, dim=1)

    def dequantize(self, codes: Tensor) -> Tensor:
        """RVQ codes (B, K, L) int -> normalised latents (B, D, L) float32."""
        if codes.dim() != 3 or codes.dtype not in (torch.int64, torch.int32):
            raise ClipError(
                f"codes must be an integer (B, K, L) tensor, got {tuple(codes.shape)} {codes.dtype}"
            )
        if codes.shape[1] > self.num_quantizers:
            raise ClipError(f"got {codes.shape[1]} codebooks, the codec has {self.num_quantizers}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.config.codebook_size):
            raise ClipError(f"codes must lie in [0, {self.config.codebook_size})")
        raw = sum(
            layer.decode(codes[:, i].long())
            for i, layer in enumerate(self.model.quantizer.layers[: codes.shape[1]])
        )
        return self.stats.normalize(raw)

    @torch.no_grad()
    def fit_codebooks(self, raw_latents: Tensor, iters: int = 10, seed: int = 0) -> None:
        """Fit each RVQ codebook by k-means on the residual of raw latents (N, D) (frames as rows)."""
        g = torch.Generator().manual_seed(seed)
        residual = raw_latents.detach().float().cpu()
        for layer in self.model.quantizer.layers:
            book = layer.codebook
            k = book.embed.shape[0]
            pick = torch.randint(0, residual.shape[0], (k,), generator=g)
            centers = residual[pick].clone()
            for _ in range(iters):
                assign = torch.cdist(residual, centers).argmin(1)
                sums = torch.zeros_like(centers).index_add_(0, assign, residual)
                counts = torch.bincount(assign, minlength=k).float()[:, None]
                centers = torch.where(counts > 0, sums / counts.clamp_min(1), centers)
            book.embed.copy_(centers)
            book.embed_avg.copy_(centers)
            book.cluster_size.copy_(
                torch.bincount(torch.cdist(residual, centers).argmin(1), minlength=k).float()
            )
            residual = residual - centers[torch.cdist(residual, centers).argmin(1)]

    # --- files ---
    def save_pretrained(self, directory: str | Path) -> None:
        """Write config.json + model.safetensors (atomic) into ``directory``."""
        save_codec_folder(directory, KIND, to_dict(self.config), self)

    @classmethod
    def from_pretrained(cls, source: str | Path, *, allow_download: bool = False) -> EncodecCodec:
        """Load a local avgen codec folder or a local Hugging Face EnCodec folder.

        ``source`` is a local path whatever its shape; only ``"hf://owner/name"`` with
        ``allow_download=True`` fetches from the hub. Missing files raise CheckpointError naming them.
        """
        if hub_id(source) is not None:
            return cls._from_hf_folder(local_codec_folder(fetch_hub(str(source), allow_download)))
        path = local_codec_folder(source)
        cfg_path = path / CONFIG_NAME
        kind, data = read_codec_config(path)
        if kind == HF_ENCODEC:
            return cls._from_hf_folder(path)
        if kind != KIND:
            raise CheckpointError(f"{cfg_path}: holds a {kind!r} codec, not an EnCodec audio codec")
        config = from_dict(EncodecCodecConfig, data, where=str(cfg_path))
        codec = cls(config, model=Encodec.for_loading(config))  # every tensor is loaded next
        weights = path / WEIGHTS_NAME
        load_state_checked(codec, upgrade_weight_norm_names(load_tensors(weights)), weights)
        return codec

    @classmethod
    def _from_hf_folder(cls, path: Path) -> EncodecCodec:
        """A local folder in the Hugging Face layout (config.json + weights); files are checked first,
        transformers reads only this folder (``local_files_only``) and its weights move into an ``Encodec``."""
        if not any((path / name).is_file() for name in HF_WEIGHT_NAMES):
            raise CheckpointError(
                f"{path}: has no {WEIGHTS_NAME} (nor {', '.join(HF_WEIGHT_NAMES[1:])}); expected a "
                "Hugging Face EnCodec folder with its weights"
            )
        transformers = require_transformers(f"{path}: a Hugging Face EnCodec folder")
        try:
            model, info = transformers.EncodecModel.from_pretrained(
                str(path), local_files_only=True, output_loading_info=True
            )
        except (OSError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{path}: cannot load as a Hugging Face EnCodec folder: {e}") from e
        bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "mismatched_keys")}
        if bad:
            raise CheckpointError(f"{path}: EnCodec weights do not match its config.json: {bad}")
        config = EncodecCodecConfig.from_hf(model.config, where=str(path / CONFIG_NAME))
        plain = Encodec.for_loading(config)
        load_state_checked(plain, upgrade_weight_norm_names(model.float().state_dict()), path)
        codec = cls(config, model=plain.eval())
        stats = read_stats_file(path / STATS_NAME, codec.latent_channels)  # from `avgen codec stats`
        if stats is not None:
            codec.stats.mean.copy_(stats[0])
            codec.stats.std.copy_(stats[1])
        return codec
