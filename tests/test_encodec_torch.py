"""The plain-torch EnCodec against ``transformers.EncodecModel``: state dicts both ways, encoder / decoder /
quantizer outputs, gradients, fresh init from a seed; the shipped audio codec through both; and an
``avgen generate`` path free of transformers."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from avgen.codecs import load_codec
from avgen.codecs.audio import EncodecCodec, init_seanet_
from avgen.codecs.encodec_config import EncodecCodecConfig
from avgen.codecs.encodec_torch import Encodec, init_like_transformers_
from avgen.errors import ConfigError

try:
    import transformers
except ImportError:  # the plain module needs none; only the comparisons do
    transformers = None
needs_transformers = pytest.mark.skipif(transformers is None, reason="transformers is not installed")

SHIPPED_AUDIO = Path(__file__).resolve().parents[1] / "avgen" / "weights" / "avgen-tiny" / "audio_codec"

# tiny transformers configs: causal or not, weight norm or GroupNorm, odd strides and kernels, 1 or 2 LSTM
# layers (torch's LSTM needs at least one), shortcut conv or identity, trimmed right or split
HF_CONFIGS = {
    "causal-weightnorm": dict(upsampling_ratios=[8, 5, 4, 2]),
    "centred-weightnorm-2lstm": dict(
        use_causal_conv=False, upsampling_ratios=[3, 2], num_residual_layers=2, num_lstm_layers=2
    ),
    "causal-groupnorm-trim": dict(
        norm_type="time_group_norm",
        upsampling_ratios=[4, 4],
        trim_right_ratio=0.5,
        use_conv_shortcut=False,
        pad_mode="constant",
    ),
    "centred-groupnorm-odd": dict(
        use_causal_conv=False,
        norm_type="time_group_norm",
        upsampling_ratios=[5, 3, 2],
        kernel_size=4,
        last_kernel_size=5,
        residual_kernel_size=4,
        compress=1,
        dilation_growth_rate=3,
        num_residual_layers=2,
    ),
}


def _hf_config(name: str) -> transformers.EncodecConfig:
    """16 kHz mono, 4 filters, 8 latent channels, 3 codebooks of 16 codewords."""
    frame_rate = math.ceil(16000 / math.prod(HF_CONFIGS[name]["upsampling_ratios"]))
    base = dict(
        sampling_rate=16000,
        audio_channels=1,
        num_filters=4,
        hidden_size=8,
        codebook_dim=8,
        codebook_size=16,
        target_bandwidths=[3.5 * frame_rate * 4 / 1000],  # num_quantizers = floor(bandwidth / (rate * bits))
    )
    cfg = transformers.EncodecConfig(**{**base, **HF_CONFIGS[name]})
    assert cfg.num_quantizers == 3
    return cfg


def _pair(name: str, seed: int = 0) -> tuple[transformers.EncodecModel, Encodec]:
    """A random transformers EncodecModel (random codebooks too) and a plain Encodec with its weights."""
    hf_cfg = _hf_config(name)
    torch.manual_seed(seed)
    hf = transformers.EncodecModel(hf_cfg).eval()
    with torch.no_grad():
        for i, layer in enumerate(hf.quantizer.layers):
            layer.codebook.embed.normal_(generator=torch.Generator().manual_seed(seed + i))
        for p in hf.parameters():  # off transformers' init (zero biases, unit norms) to reach every term
            p.add_(0.05 * torch.randn_like(p))
    plain = Encodec(EncodecCodecConfig.from_hf(hf_cfg)).eval()
    plain.load_state_dict(hf.state_dict(), strict=True)
    return hf, plain


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@needs_transformers
@pytest.mark.parametrize("name", list(HF_CONFIGS))
def test_state_dicts_load_strictly_both_ways(name: str) -> None:
    hf, plain = _pair(name)
    assert list(plain.state_dict()) == list(hf.state_dict())
    back = transformers.EncodecModel(_hf_config(name))
    back.load_state_dict(plain.state_dict(), strict=True)
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in plain.state_dict().items())


@needs_transformers
@pytest.mark.parametrize("name", list(HF_CONFIGS))
@pytest.mark.parametrize("n", [1, 7, 641, 3001])
def test_encoder_and_decoder_match_transformers(name: str, n: int) -> None:
    hf, plain = _pair(name)
    x = torch.rand(2, 1, n, generator=torch.Generator().manual_seed(n)) * 1.6 - 0.8
    with torch.no_grad():
        z_hf, z = hf.encoder(x), plain.encoder(x)
        _close(z, z_hf)
        assert z.shape[-1] == -(-n // plain.config.hop_length)
        y_hf, y = hf.decoder(z_hf), plain.decoder(z_hf)
        _close(y, y_hf)
        assert y.shape[-1] == z.shape[-1] * plain.config.hop_length


@needs_transformers
@pytest.mark.parametrize("name", list(HF_CONFIGS))
def test_quantizer_matches_transformers(name: str) -> None:
    hf, plain = _pair(name)
    z = torch.randn(2, 8, 13, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        codes_hf = hf.quantizer.encode(z)  # (K, B, L), every codebook
        residual, codes = z, []
        for layer, layer_hf in zip(plain.quantizer.layers, hf.quantizer.layers, strict=True):
            idx = layer.encode(residual)  # (B, L)
            assert torch.equal(idx, layer_hf.encode(residual))
            _close(layer.decode(idx), layer_hf.decode(idx))
            residual = residual - layer.decode(idx)
            codes.append(idx)
        assert torch.equal(torch.stack(codes), codes_hf)
        total = sum(layer.decode(c) for layer, c in zip(plain.quantizer.layers, codes, strict=True))
        _close(total, hf.quantizer.decode(codes_hf))


@needs_transformers
@pytest.mark.parametrize("name", ["causal-weightnorm", "centred-groupnorm-odd"])
def test_gradients_match_transformers(name: str) -> None:
    hf, plain = _pair(name)
    hf.train(), plain.train()
    x = torch.rand(2, 1, 1500, generator=torch.Generator().manual_seed(2)) - 0.5
    for model in (hf, plain):
        model.decoder(model.encoder(x)).pow(2).mean().backward()
    grads_hf = {k: p.grad for k, p in hf.named_parameters()}
    for k, p in plain.named_parameters():
        _close(p.grad, grads_hf[k])


@needs_transformers
@pytest.mark.parametrize("name", list(HF_CONFIGS))
def test_fresh_init_draws_what_transformers_draws(name: str) -> None:
    hf_cfg = _hf_config(name)
    torch.manual_seed(3)
    hf = transformers.EncodecModel(hf_cfg)
    after_hf = torch.rand(4)
    torch.manual_seed(3)
    plain = Encodec(EncodecCodecConfig.from_hf(hf_cfg))
    init_like_transformers_(plain)
    assert torch.equal(torch.rand(4), after_hf)  # the same RNG state afterwards
    assert all(torch.equal(v, hf.state_dict()[k]) for k, v in plain.state_dict().items())


@needs_transformers
@pytest.mark.parametrize("cfg", [EncodecCodecConfig(), EncodecCodecConfig(num_filters=4, causal=False)])
def test_fresh_codec_weights_equal_the_transformers_built_ones(cfg: EncodecCodecConfig) -> None:
    """``EncodecCodec(config)`` under a seed: the weights a transformers-built codec had, so training from
    scratch starts where it did."""
    torch.manual_seed(5)
    hf = transformers.EncodecModel(cfg.to_hf())
    init_seanet_(hf)
    torch.manual_seed(5)
    codec = EncodecCodec(cfg)
    assert type(codec.model) is Encodec
    assert all(torch.equal(v, hf.state_dict()[k]) for k, v in codec.model.state_dict().items())


def test_loading_leaves_the_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(0)
    EncodecCodec(EncodecCodecConfig(num_filters=4, latent_channels=8)).save_pretrained(tmp_path / "c")
    state = torch.get_rng_state()
    load_codec(tmp_path / "c")
    assert torch.equal(torch.get_rng_state(), state)


@needs_transformers
def test_hf_folder_with_old_weight_norm_names_loads(tmp_path: Path) -> None:
    """A Hugging Face folder saved with ``weight_g`` / ``weight_v`` (the facebook/encodec_24khz layout)."""
    hf, _ = _pair("causal-weightnorm")
    hf.save_pretrained(tmp_path / "hf")
    weights = tmp_path / "hf" / "model.safetensors"
    old = {
        k.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        ): v
        for k, v in load_file(weights).items()
    }
    assert any(k.endswith("weight_g") for k in old)
    save_file(old, weights, metadata={"format": "pt"})
    codec = load_codec(tmp_path / "hf")
    assert isinstance(codec, EncodecCodec) and type(codec.model) is Encodec
    x = torch.rand(1, 1, 2000, generator=torch.Generator().manual_seed(0)) - 0.5
    with torch.no_grad():
        _close(codec.encode_raw(x), hf.encoder(x))
        z = hf.encoder(x)
        _close(codec.decode_raw(z), hf.decoder(z))


def test_avgen_folder_with_old_weight_norm_names_loads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    codec = EncodecCodec(EncodecCodecConfig(num_filters=4, latent_channels=8, codebook_size=16))
    codec.save_pretrained(tmp_path / "c")
    weights = tmp_path / "c" / "model.safetensors"
    state = load_file(weights)
    old = {k.replace("parametrizations.weight.original0", "weight_g"): v for k, v in state.items()}
    old = {k.replace("parametrizations.weight.original1", "weight_v"): v for k, v in old.items()}
    assert sum(k.endswith(("weight_g", "weight_v")) for k in old) == sum("original" in k for k in state) > 0
    save_file(old, weights)
    assert load_codec(tmp_path / "c").codec_id == codec.codec_id


def test_config_needs_an_lstm_layer() -> None:
    with pytest.raises(ConfigError, match="num_lstm_layers"):
        EncodecCodecConfig(num_lstm_layers=0)


@needs_transformers
def test_shipped_audio_codec_is_bit_identical_through_transformers() -> None:
    codec = load_codec(SHIPPED_AUDIO)
    assert isinstance(codec, EncodecCodec) and type(codec.model) is Encodec
    hf = transformers.EncodecModel(codec.config.to_hf()).eval()
    hf.load_state_dict(codec.model.state_dict(), strict=True)
    via_hf = EncodecCodec(codec.config, model=hf)
    via_hf.stats.load_state_dict(codec.stats.state_dict())
    assert via_hf.codec_id == codec.codec_id
    t = torch.arange(16000 * 2 + 123) / 16000
    x = (0.3 * torch.sin(2 * torch.pi * 330 * t) * torch.sin(2 * torch.pi * 1.5 * t))[None, None]
    with torch.no_grad():
        z, z_hf = codec.encode(x), via_hf.encode(x)
        assert torch.equal(z, z_hf)
        assert torch.equal(codec.decode(z, length=x.shape[-1]), via_hf.decode(z, length=x.shape[-1]))
        assert torch.equal(codec.quantize(z), via_hf.quantize(z))


def test_generate_path_imports_no_transformers() -> None:
    """What ``avgen generate`` runs: the CLI and generate modules, avgen-tiny's load, its audio codec's
    encode / decode / RVQ and a short pipeline call, with transformers never imported."""
    code = (
        "import sys\n"
        "import torch\n"
        "import avgen.cli, avgen.generate\n"
        "from avgen.pipeline import AVPipeline\n"
        "pipe = AVPipeline.from_pretrained('avgen-tiny')\n"
        "codec = pipe.audio_codec\n"
        "assert type(codec.model).__name__ == 'Encodec', type(codec.model)\n"
        "with torch.no_grad():\n"
        "    z = codec.encode(torch.zeros(1, 1, 3200))\n"
        "    codec.decode(codec.dequantize(codec.quantize(z)), length=3200)\n"
        "pipe('a red ball', seconds=0.5, steps=1, sampler='euler', progress=False)\n"
        "assert 'transformers' not in sys.modules, 'the generate path imported transformers'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
