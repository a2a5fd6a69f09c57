"""EnCodec audio codec: shapes, lengths, resampling, RVQ, save/load, Hugging Face folders, hub ids offline."""

from __future__ import annotations

import json
import math
import time

import pytest
import torch

from avgen.codecs import AudioCodec, LatentCodec, load_codec
from avgen.codecs.audio import EncodecCodec
from avgen.codecs.encodec_config import EncodecCodecConfig
from avgen.codecs.tiny import TINY_AUDIO, tiny_audio_codec
from avgen.errors import CheckpointError, ClipError, ConfigError


def _wav(n: int, b: int = 1, c: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, n, generator=g) * 1.6 - 0.8


def test_protocol_and_properties():
    codec = tiny_audio_codec()
    assert isinstance(codec, AudioCodec) and isinstance(codec, LatentCodec)
    assert (codec.sample_rate, codec.channels, codec.hop_length) == (16000, 1, 320)
    assert codec.latent_rate == 50.0
    assert codec.latent_channels == TINY_AUDIO.latent_channels
    assert [codec.latent_length(n) for n in (1, 320, 321, 16000, 16001)] == [1, 1, 2, 50, 51]


def test_default_config_is_16k_mono_50_per_second():
    cfg = EncodecCodecConfig()
    assert (cfg.sample_rate, cfg.channels, cfg.hop_length) == (16000, 1, 320)
    assert cfg.to_hf().num_quantizers == cfg.num_quantizers


@pytest.mark.parametrize("n", [1, 319, 321, 7777, 16001])
def test_encode_decode_lengths_at_odd_durations(n):
    codec = tiny_audio_codec()
    with torch.no_grad():
        z = codec.encode(_wav(n, b=2))
        assert z.shape == (2, codec.latent_channels, math.ceil(n / 320)) and z.dtype == torch.float32
        y = codec.decode(z, length=n)
        assert y.shape == (2, 1, n)
        assert codec.decode(z).shape == (2, 1, z.shape[-1] * 320)
    assert float(y.abs().max()) <= 1.0


@pytest.mark.parametrize("sr,n", [(24000, 24001), (44100, 9999), (8000, 4000)])
def test_other_sample_rates_resampled_and_length_kept(sr, n):
    codec = tiny_audio_codec()
    with torch.no_grad():
        z = codec.encode(_wav(n), sample_rate=sr)
        assert z.shape[-1] == codec.latent_length(math.ceil(n * 16000 / sr))
        assert codec.decode(z, length=n, sample_rate=sr).shape == (1, 1, n)


def test_bad_inputs_raise_clip_errors():
    codec = tiny_audio_codec()
    with pytest.raises(ClipError, match=r"\(B, C, N\)"):
        codec.encode(torch.zeros(1, 100))
    with pytest.raises(ClipError, match="2 channels"):
        codec.encode(torch.zeros(1, 2, 100))
    with pytest.raises(ClipError, match="NaN"):
        codec.encode(torch.full((1, 1, 100), float("nan")))
    with pytest.raises(ClipError, match=r"\[-1, 1\]"):
        codec.encode(torch.full((1, 1, 100), 3.0))
    with pytest.raises(ClipError, match="dtype"):
        codec.encode(torch.zeros(1, 1, 100, dtype=torch.int16))
    with pytest.raises(ClipError, match="latents"):
        codec.decode(torch.zeros(1, codec.latent_channels + 1, 4))
    with pytest.raises(ClipError, match="latent frames"):
        codec.decode(torch.zeros(1, codec.latent_channels, 2), length=641)


def test_latent_stats_normalise_and_change_codec_id():
    codec = tiny_audio_codec()
    x = _wav(8000, b=2)
    with torch.no_grad():
        before = codec.codec_id
        codec.stats.fit([codec.encode_raw(x)])
        z = codec.encode(x)
    assert codec.codec_id != before
    assert z.mean(dim=(0, 2)).abs().max() < 1e-4
    assert (z.std(dim=(0, 2), unbiased=False) - 1).abs().max() < 1e-3
    with torch.no_grad():  # normalisation is undone before decoding
        raw = codec.decode_raw(codec.encode_raw(x))[..., :8000].clamp(-1, 1)
        torch.testing.assert_close(codec.decode(z, length=8000), raw)


def test_codec_id_is_stable_and_weight_sensitive():
    a, b = tiny_audio_codec(0), tiny_audio_codec(0)
    assert a.codec_id == b.codec_id and a.codec_id.startswith("encodec-")
    assert tiny_audio_codec(1).codec_id != a.codec_id
    with torch.no_grad():
        next(b.model.decoder.parameters()).add_(1e-3)
    assert b.codec_id != a.codec_id


def test_quantize_dequantize_through_rvq():
    codec = tiny_audio_codec()
    with torch.no_grad():
        z = codec.encode(_wav(3200))
        codes = codec.quantize(z)
        assert codes.shape == (1, codec.num_quantizers, 10) and codes.dtype == torch.int64
        zq = codec.dequantize(codes)
        assert zq.shape == z.shape
        # a codeword of the first codebook quantizes to itself
        g = torch.Generator().manual_seed(0)
        codes1 = torch.randint(0, codec.config.codebook_size, (1, 1, 10), generator=g)
        assert torch.equal(codec.quantize(codec.dequantize(codes1), num_quantizers=1), codes1)
    with pytest.raises(ClipError, match="num_quantizers"):
        codec.quantize(z, num_quantizers=codec.num_quantizers + 1)
    with pytest.raises(ClipError, match="codes must lie"):
        codec.dequantize(torch.full((1, 1, 3), 10_000))


def test_fit_codebooks_reduces_quantization_error():
    codec = tiny_audio_codec()
    with torch.no_grad():
        raw = codec.encode_raw(_wav(32000))
        z = codec.stats.normalize(raw)
        err_random = (codec.dequantize(codec.quantize(z)) - z).norm()
        codec.fit_codebooks(raw[0].T, iters=5)
        err_fit = (codec.dequantize(codec.quantize(z)) - z).norm()
    assert err_fit < err_random


def test_save_load_round_trip_identical(tmp_path):
    codec = tiny_audio_codec()
    with torch.no_grad():
        codec.stats.mean.fill_(0.25)
        codec.stats.std.fill_(2.0)
    codec.save_pretrained(tmp_path / "c")
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["config.json", "model.safetensors"]
    back = load_codec(tmp_path / "c")
    assert isinstance(back, EncodecCodec) and back.codec_id == codec.codec_id
    x = _wav(5000)
    with torch.no_grad():
        assert torch.equal(back.encode(x), codec.encode(x))
        z = codec.encode(x)
        assert torch.equal(back.decode(z, length=5000), codec.decode(z, length=5000))


def test_mismatched_checkpoint_names_the_difference(tmp_path):
    tiny_audio_codec().save_pretrained(tmp_path / "c")
    cfg_path = tmp_path / "c" / "config.json"
    data = json.loads(cfg_path.read_text())
    data["config"]["latent_channels"] = 12
    cfg_path.write_text(json.dumps(data))
    with pytest.raises(
        CheckpointError, match=r"shape mismatch.*encoder.*bias: file \(8,\) vs model \(12,\).*more\)"
    ):
        EncodecCodec.from_pretrained(tmp_path / "c")


def test_unknown_config_key_is_an_error(tmp_path):
    tiny_audio_codec().save_pretrained(tmp_path / "c")
    cfg_path = tmp_path / "c" / "config.json"
    data = json.loads(cfg_path.read_text())
    data["config"]["hop"] = 320
    cfg_path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="unknown key 'hop'"):
        EncodecCodec.from_pretrained(tmp_path / "c")


def test_loads_folder_saved_by_transformers(tmp_path):
    from transformers import EncodecConfig, EncodecModel

    hf_cfg = EncodecConfig(
        sampling_rate=24000,
        audio_channels=1,
        num_filters=4,
        hidden_size=8,
        codebook_dim=8,
        codebook_size=32,
        upsampling_ratios=[8, 5, 4, 2],
        num_lstm_layers=1,
        target_bandwidths=[1.5, 3.0],
    )
    torch.manual_seed(0)
    hf = EncodecModel(hf_cfg).eval()
    hf.save_pretrained(tmp_path / "hf")
    codec = load_codec(tmp_path / "hf")
    assert isinstance(codec, EncodecCodec)
    assert (codec.sample_rate, codec.hop_length, codec.latent_channels) == (24000, 320, 8)
    assert codec.latent_rate == 75.0 and codec.num_quantizers == hf_cfg.num_quantizers
    x = _wav(24000 // 3)
    with torch.no_grad():
        torch.testing.assert_close(codec.encode(x), hf.encoder(x))  # identity stats: raw encoder output
        codes = hf.encode(x, bandwidth=3.0).audio_codes[0]  # (B, K, L)
        assert torch.equal(codec.quantize(codec.encode(x)), codes)
    codec.save_pretrained(tmp_path / "avgen")  # and it round-trips through avgen's own layout
    assert load_codec(tmp_path / "avgen").codec_id == codec.codec_id


def test_loudness_normalising_hf_model_is_refused(tmp_path):
    from transformers import EncodecConfig, EncodecModel

    cfg = EncodecConfig(num_filters=4, hidden_size=8, codebook_dim=8, codebook_size=32, normalize=True)
    EncodecModel(cfg).save_pretrained(tmp_path / "hf")
    with pytest.raises(CheckpointError, match="normalize"):
        EncodecCodec.from_pretrained(tmp_path / "hf")


def test_offline_hub_id_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"facebook/encodec_24khz.*local folder"):
        EncodecCodec.from_pretrained("facebook/encodec_24khz-avgen-test-missing")
    assert time.perf_counter() - t0 < 10


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no such codec folder"):
        EncodecCodec.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        load_codec(tmp_path / "empty")


def test_config_checks():
    with pytest.raises(ConfigError, match="power of 2"):
        EncodecCodecConfig(codebook_size=1000)
    with pytest.raises(ConfigError, match="ratios"):
        EncodecCodecConfig(ratios=())


def test_unreachable_hub_fails_fast(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused at once, no network
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match="unreachable"):
        EncodecCodec.from_pretrained("hf://someone/encodec-test", allow_download=True)
    assert time.perf_counter() - t0 < 10


# --- trainability: a codec trained on these terms must not sit at -45 dB held-out SI-SNR ---------------------


def _tones(n: int = 4000) -> torch.Tensor:
    t = torch.arange(n) / 16000
    pairs = [
        0.3 * torch.sin(2 * math.pi * f * t) + 0.15 * torch.sin(2 * math.pi * 2.5 * f * t) for f in (220, 310)
    ]
    return torch.stack(pairs)[:, None]  # (2, 1, n)


@pytest.mark.parametrize("cfg", [TINY_AUDIO, EncodecCodecConfig()], ids=["tiny", "default"])
def test_fresh_codec_latents_carry_the_input(cfg):
    # PyTorch's default init behind weight_norm let the conv biases swamp the signal: 2% of the latent
    # variation came from the audio, and the codec could not learn the waveform
    torch.manual_seed(0)
    model = EncodecCodec(cfg).model
    x = _wav(16000, b=2) * 0.2
    with torch.no_grad():
        z, z_silence = model.encoder(x), model.encoder(torch.zeros_like(x))
        y = model.decoder(z)
    assert float((z - z_silence).std() / z.std()) > 0.5
    assert 0.003 < float(y.pow(2).mean().sqrt()) < 0.3  # output starts near the level of real audio
    assert all(not b.detach().any() for n, b in model.named_parameters() if n.endswith("conv.bias"))


def test_short_training_learns_the_waveform_aligned():
    from avgen.codecs.losses import AudioLossWeights, audio_reconstruction_loss, si_snr

    x = _tones()
    codec = tiny_audio_codec(0).train()
    opt = torch.optim.Adam(codec.parameters(), lr=3e-3)
    for _ in range(40):
        y = codec.decode_raw(codec.encode_raw(x))[..., : x.shape[-1]]
        loss, _ = audio_reconstruction_loss(y, x, 16000, AudioLossWeights())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        y = codec.decode(codec.encode(x), length=x.shape[-1])
    assert float(si_snr(y, x).min()) > 8.0  # spectral terms alone leave it near -30 dB
    # output aligned with input: the cross-correlation peaks at lag 0 (+-1 sample)
    lags = range(-160, 161)
    xc = torch.stack([(torch.roll(y[0, 0], k) * x[0, 0]).sum() for k in lags])
    assert abs(lags[int(xc.argmax())]) <= 1


def test_waveform_snr_loss_known_value_and_silent_crops():
    from avgen.codecs.losses import waveform_snr_loss

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 4000, generator=g)
    noise = torch.randn(2, 1, 4000, generator=g)
    noise = noise * x.norm() / noise.norm() / math.sqrt(10)  # exactly 10 dB below the batch's signal
    assert float(waveform_snr_loss(x + noise, x)) == pytest.approx(-10.0, abs=1e-4)
    assert float(waveform_snr_loss(torch.zeros_like(x), x)) == pytest.approx(0.0, abs=1e-6)
    with_silence = torch.cat([x[:1], torch.zeros_like(x[:1])])  # a silent crop cannot blow it up
    assert abs(float(waveform_snr_loss(with_silence + noise, with_silence))) < 20


def test_stft_loss_gradient_bounded_on_digital_silence():
    from avgen.codecs.losses import multires_stft_loss

    # the old log floor (clamp 1e-5) gave d/dx log|X| ~ 1e5 on silent targets: gradient norms in the
    # thousands drowned the waveform terms and pulled the output level to zero
    g = torch.Generator().manual_seed(0)
    target = torch.cat([torch.zeros(1, 1, 8000), torch.randn(1, 1, 8000, generator=g) * 0.1])
    pred = (target + 1e-4 * torch.randn(target.shape, generator=g)).requires_grad_()
    multires_stft_loss(pred, target).backward()
    assert float(pred.grad.norm()) < 10.0
