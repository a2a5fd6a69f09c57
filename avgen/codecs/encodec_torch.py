"""EnCodec (SEANet encoder / decoder + residual VQ) in plain torch, built from an ``EncodecCodecConfig``.

The computation of ``transformers.EncodecModel``'s ``encoder``, ``decoder`` and ``quantizer`` layers, with the
same module tree and so the same state-dict names (weight norm is torch's parametrization:
``conv.parametrizations.weight.original0`` / ``original1``; ``upgrade_weight_norm_names`` reads the older
``weight_g`` / ``weight_v``): a state dict moves between the two with ``strict=True`` either way. The float32
ops are transformers', in its order, so outputs are the same bits on the same device.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from avgen.codecs.encodec_config import EncodecCodecConfig
from avgen.codecs.encodec_rvq import Codebook, ResidualVQ


def _pad1d(x: Tensor, left: int, right: int, mode: str) -> Tensor:
    """``F.pad`` on the last axis; reflect padding wider than the input first pads zeros on the right."""
    if mode != "reflect":
        return F.pad(x, (left, right), mode)
    length = x.shape[-1]
    extra = max(max(left, right) - length + 1, 0)
    if extra:
        x = F.pad(x, (0, extra))
    padded = F.pad(x, (left, right), mode)
    return padded[..., : padded.shape[-1] - extra]


class PaddedConv1d(nn.Module):
    """Conv1d padded so that L input samples give ceil(L / stride) outputs.

    Causal: all of the fixed padding (effective kernel - stride) on the left; otherwise split, the odd sample
    on the left. Extra right padding completes the last stride. Weight norm on the conv, or a
    GroupNorm(1) after it (``norm_type``).
    """

    def __init__(
        self,
        config: EncodecCodecConfig,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.causal = config.causal
        self.pad_mode = config.pad_mode
        self.norm_type = config.norm_type
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride, dilation=dilation)
        self.conv = weight_norm(conv) if config.norm_type == "weight_norm" else conv
        if config.norm_type == "time_group_norm":
            self.norm = nn.GroupNorm(1, out_channels)
        self.stride = stride
        self.padding_total = (kernel_size - 1) * dilation + 1 - stride

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, L) -> (B, C_out, ceil(L / stride))."""
        extra = -x.shape[-1] % self.stride  # right padding up to a whole number of strides
        if self.causal:
            left, right = self.padding_total, 0
        else:
            right = self.padding_total // 2
            left = self.padding_total - right
        x = self.conv(_pad1d(x, left, right + extra, self.pad_mode))
        if self.norm_type == "time_group_norm":
            x = self.norm(x)
        return x


class PaddedConvTranspose1d(nn.Module):
    """ConvTranspose1d that trims its fixed padding (kernel - stride): L inputs give L * stride outputs.

    Causal: ``ceil(padding * trim_right_ratio)`` trimmed on the right, the rest on the left; otherwise split,
    the odd sample trimmed on the left.
    """

    def __init__(
        self, config: EncodecCodecConfig, in_channels: int, out_channels: int, kernel_size: int, stride: int
    ) -> None:
        super().__init__()
        if not (config.causal or config.trim_right_ratio == 1.0):
            raise ValueError("trim_right_ratio != 1.0 only makes sense for causal convolutions")
        self.causal = config.causal
        self.trim_right_ratio = config.trim_right_ratio
        self.norm_type = config.norm_type
        conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride)
        self.conv = weight_norm(conv) if config.norm_type == "weight_norm" else conv
        if config.norm_type == "time_group_norm":
            self.norm = nn.GroupNorm(1, out_channels)
        self.padding_total = kernel_size - stride

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, L) -> (B, C_out, L * stride)."""
        x = self.conv(x)
        if self.norm_type == "time_group_norm":
            x = self.norm(x)
        if self.causal:
            right = math.ceil(self.padding_total * self.trim_right_ratio)
        else:
            right = self.padding_total // 2
        left = self.padding_total - right
        return x[..., left : x.shape[-1] - right]


class ResidualLSTM(nn.Module):
    """A stack of LSTMs over time plus its input, on channel-first tensors (B, C, L)."""

    def __init__(self, dim: int, num_layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, L) -> (B, C, L)."""
        x = rearrange(x, "b c l -> l b c")
        return rearrange(self.lstm(x)[0] + x, "l b c -> b c l")


class ResnetBlock(nn.Module):
    """SEANet residual block: ELU, conv (kernel ``residual_kernel_size``, dim -> dim / compress), ELU,
    1x1 conv back to dim; plus a 1x1-conv (or identity) shortcut."""

    def __init__(self, config: EncodecCodecConfig, dim: int, dilations: tuple[int, int]) -> None:
        super().__init__()
        hidden = dim // config.compress
        self.block = nn.ModuleList(
            [
                nn.ELU(),
                PaddedConv1d(config, dim, hidden, config.residual_kernel_size, dilation=dilations[0]),
                nn.ELU(),
                PaddedConv1d(config, hidden, dim, 1, dilation=dilations[1]),
            ]
        )
        self.shortcut: nn.Module = (
            PaddedConv1d(config, dim, dim, kernel_size=1) if config.use_conv_shortcut else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, L) -> (B, C, L)."""
        h = x
        for layer in self.block:
            h = layer(h)
        return self.shortcut(x) + h


class SEANetEncoder(nn.Module):
    """Waveform (B, channels, N) -> latents (B, latent_channels, ceil(N / hop_length)); ``layers`` in order."""

    def __init__(self, config: EncodecCodecConfig) -> None:
        super().__init__()
        nf = config.num_filters
        layers: list[nn.Module] = [PaddedConv1d(config, config.channels, nf, config.kernel_size)]
        scale = 1
        for ratio in reversed(config.ratios):
            width = scale * nf
            for j in range(config.num_residual_layers):
                layers.append(ResnetBlock(config, width, (config.dilation_growth_rate**j, 1)))
            layers += [nn.ELU(), PaddedConv1d(config, width, width * 2, kernel_size=ratio * 2, stride=ratio)]
            scale *= 2
        layers += [
            ResidualLSTM(scale * nf, config.num_lstm_layers),
            nn.ELU(),
            PaddedConv1d(config, scale * nf, config.latent_channels, config.last_kernel_size),
        ]
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class SEANetDecoder(nn.Module):
    """Latents (B, latent_channels, L) -> waveform (B, channels, L * hop_length), unclamped."""

    def __init__(self, config: EncodecCodecConfig) -> None:
        super().__init__()
        nf = config.num_filters
        scale = 2 ** len(config.ratios)
        layers: list[nn.Module] = [
            PaddedConv1d(config, config.latent_channels, scale * nf, config.kernel_size),
            ResidualLSTM(scale * nf, config.num_lstm_layers),
        ]
        for ratio in config.ratios:
            width = scale * nf
            layers += [nn.ELU(), PaddedConvTranspose1d(config, width, width // 2, ratio * 2, ratio)]
            for j in range(config.num_residual_layers):
                layers.append(ResnetBlock(config, width // 2, (config.dilation_growth_rate**j, 1)))
            scale //= 2
        layers += [nn.ELU(), PaddedConv1d(config, nf, config.channels, config.last_kernel_size)]
        self.layers = nn.ModuleList(layers)

    def forward(self, z: Tensor) -> Tensor:
        for layer in self.layers:
            z = layer(z)
        return z


class Encodec(nn.Module):
    """``encoder``, ``decoder`` and ``quantizer`` (a ``ResidualVQ`` of ``num_quantizers`` codebooks).

    Built with PyTorch's default init (convs, LSTMs) and zero codebooks, drawing from the global RNG;
    ``Encodec.for_loading`` leaves the global RNG as it was, for weights about to be loaded.
    """

    def __init__(self, config: EncodecCodecConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = SEANetEncoder(config)
        self.decoder = SEANetDecoder(config)
        self.quantizer = ResidualVQ(config.num_quantizers, config.codebook_size, config.latent_channels)

    @classmethod
    def for_loading(cls, config: EncodecCodecConfig) -> Encodec:
        """A CPU model whose values are placeholders, built without moving the global RNG on."""
        # not the meta device: its first use imports ~1.7 s of torch modules
        with torch.random.fork_rng(devices=[]):
            return cls(config)


_OLD_WEIGHT_NORM = {
    "weight_g": "parametrizations.weight.original0",
    "weight_v": "parametrizations.weight.original1",
}


def upgrade_weight_norm_names(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``*.conv.weight_g`` / ``*.conv.weight_v`` (torch's older ``weight_norm``, as older transformers saved
    them) -> ``*.conv.parametrizations.weight.original0`` / ``original1``; other names as they are."""
    out = {}
    for name, tensor in state.items():
        head, _, last = name.rpartition(".")
        out[f"{head}.{_OLD_WEIGHT_NORM[last]}" if last in _OLD_WEIGHT_NORM else name] = tensor
    return out


@torch.no_grad()
def init_like_transformers_(model: Encodec) -> None:
    """The init ``transformers.EncodecModel`` applies after construction, drawing from the global RNG in its
    order, so that the same seed gives the same weights and RNG state as ``EncodecModel(config.to_hf())``.

    Per module, depth first: a conv's weight ~ N(0, 0.02) and bias 0, then for a ``Conv1d`` weight
    ~ kaiming-normal and bias ~ U(+-1/sqrt(fan_in)); behind weight norm those weight draws land in a
    temporary (the parametrised weight), leaving ``original0/1`` as built. LSTM weights ~ xavier-uniform,
    LSTM biases 0; GroupNorm 1 / 0; codebooks 0.
    """
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
            behind_norm = hasattr(module, "parametrizations")
            weight = torch.empty_like(module.weight) if behind_norm else module.weight
            nn.init.normal_(weight, mean=0.0, std=0.02)
            nn.init.zeros_(module.bias)
            if isinstance(module, nn.Conv1d):
                weight = torch.empty_like(module.weight) if behind_norm else module.weight
                nn.init.kaiming_normal_(weight)
                bound = math.sqrt(module.groups / (module.in_channels * module.kernel_size[0]))
                nn.init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.LSTM):
            for name, param in module.named_parameters():
                if "weight" in name:
                    nn.init.xavier_uniform_(param)
                elif "bias" in name:
                    nn.init.zeros_(param)
        elif isinstance(module, nn.GroupNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, Codebook):
            module.inited.fill_(1.0)
            for buffer in (module.cluster_size, module.embed, module.embed_avg):
                buffer.zero_()
