"""Pretrained codecs behind the codec protocol (avgen.codecs.hf_*): tiny random models of each library class,
saved in the Hugging Face layout, loaded by ``load_codec``; no weights are ever downloaded."""

from __future__ import annotations

import json
import math
import socket
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch

from avgen.clip import AVClip
from avgen.codecs import load_codec
from avgen.codecs.latent_stats import STATS_NAME, read_stats_file
from avgen.codecs.stats_cli import main as stats_main
from avgen.codecs.tiny import tiny_video_vae
from avgen.errors import CheckpointError, ClipError, ConfigError
from avgen.geometry import ClipGeometry
from avgen.io import read_av, write_av

WAN_MEAN = [0.5, -0.25, 1.0, 0.0]
WAN_STD = [2.0, 0.5, 1.5, 3.0]


def _wan(**kw):
    """Wan2.1's layout at width 8: 8x spatial, 4x causal temporal, 4 latent channels."""
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    cfg = dict(
        base_dim=8,
        z_dim=4,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        latents_mean=WAN_MEAN,
        latents_std=WAN_STD,
    )
    return diffusers.AutoencoderKLWan(**{**cfg, **kw}).eval()


def _ltx(**kw):
    """LTX-Video's layout at width 8: 4x4 patches and three 2x stages, 32x spatial, 8x causal temporal."""
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    cfg = dict(
        latent_channels=4,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False,) * 5,
        patch_size=4,
    )
    return diffusers.AutoencoderKLLTXVideo(**{**cfg, **kw}).eval()


def _oobleck():
    """Stereo Oobleck, hop 8, 3 latent channels."""
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    return diffusers.AutoencoderOobleck(
        encoder_hidden_size=6,
        downsampling_ratios=[2, 4],
        channel_multiples=[1, 2],
        decoder_channels=4,
        decoder_input_channels=3,
        audio_channels=2,
        sampling_rate=16000,
    ).eval()


def _dac():
    """Mono DAC at 16 kHz, hop 8, 2 codebooks of dimension 3: 6 latent channels."""
    from transformers import DacConfig, DacModel

    torch.manual_seed(0)
    cfg = DacConfig(
        encoder_hidden_size=4,
        downsampling_ratios=[2, 4],
        decoder_hidden_size=8,
        n_codebooks=2,
        codebook_size=16,
        codebook_dim=3,
        sampling_rate=16000,
    )
    model = DacModel(cfg).eval()
    with torch.no_grad():  # unit-gain weights: transformers' init (std 0.02) leaves latents near 1e-6
        for m in model.modules():
            if isinstance(m, torch.nn.Conv1d | torch.nn.ConvTranspose1d):
                fan_in = m.weight[0].numel() if isinstance(m, torch.nn.Conv1d) else m.weight[:, 0].numel()
                m.weight.normal_(0.0, fan_in**-0.5)
                m.bias.normal_(0.0, 0.1)
    return model


def _video(t: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, t, h, w, generator=g) * 1.8 - 0.9


def _wav(channels: int, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(1, channels, n, generator=g) - 0.5) * 0.8


# --- video: Wan ---------------------------------------------------------------------------------------------


def test_wan_folder_loads_with_its_shipped_stats(tmp_path):
    from avgen.codecs.hf_wan import WanVideoCodec

    hf = _wan()
    hf.save_pretrained(tmp_path / "vae")
    codec = load_codec(tmp_path / "vae")
    assert isinstance(codec, WanVideoCodec)
    assert (codec.latent_channels, codec.temporal_downsample, codec.spatial_downsample) == (4, 4, 8)
    assert codec.latent_shape(17, 16, 24) == (4, 5, 2, 3)
    torch.testing.assert_close(codec.stats.mean, torch.tensor(WAN_MEAN))
    torch.testing.assert_close(codec.stats.std, torch.tensor(WAN_STD))
    x = _video(9, 16, 24)
    with torch.no_grad():
        z = codec.encode(x)
        raw = hf.encode(x).latent_dist.mean
        y = codec.decode(z)
    assert z.shape == (1, 4, 3, 2, 3) and z.dtype == torch.float32
    mean, std = torch.tensor(WAN_MEAN).view(1, 4, 1, 1, 1), torch.tensor(WAN_STD).view(1, 4, 1, 1, 1)
    torch.testing.assert_close(z, (raw - mean) / std)  # as Wan's pipeline normalises
    assert y.shape == x.shape and y.abs().max() <= 1.0
    with torch.no_grad():
        torch.testing.assert_close(y, hf.decode(raw).sample)
        a = codec.encode(x, sample=True, generator=torch.Generator().manual_seed(1))
        b = codec.encode(x, sample=True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, z)
    with pytest.raises(ClipError, match=r"1 \+ 4k frames"):
        codec.encode(_video(8, 16, 24))
    with pytest.raises(ClipError, match="multiple of 8"):
        codec.encode(_video(5, 12, 24))


def test_wan22_layout_is_16x_spatial(tmp_path):
    hf = _wan(is_residual=True, patch_size=2, in_channels=12, out_channels=12, decoder_base_dim=8)
    hf.save_pretrained(tmp_path / "vae")
    codec = load_codec(tmp_path / "vae")
    assert (codec.temporal_downsample, codec.spatial_downsample) == (4, 16)
    x = _video(5, 32, 48)
    with torch.no_grad():
        z = codec.encode(x)
        assert z.shape == (1, 4, 2, 2, 3)
        assert codec.decode(z).shape == x.shape


def _first_latent_moved(codec, x: torch.Tensor, frame: int) -> int:
    """Index of the first latent frame that changes when only video frame ``frame`` changes."""
    bumped = x.clone()
    bumped[:, :, frame] = -bumped[:, :, frame]  # an event on that frame alone
    with torch.no_grad():
        moved = (codec.encode(bumped) - codec.encode(x)).abs().amax(dim=(0, 1, 3, 4))  # (T',)
    return int(torch.nonzero(moved > 1e-6)[0])


@pytest.mark.parametrize("family", ["wan", "ltx"])
def test_an_event_lands_in_the_latent_frame_whose_time_covers_it(tmp_path, family):
    """Latent k is placed at frame ts*k (ClipGeometry.video_times) and summarises frames ts*k-ts+1 .. ts*k:
    an event at second s first moves the latent whose time is the first at or after s."""
    (_wan() if family == "wan" else _ltx()).save_pretrained(tmp_path / "vae")
    codec = load_codec(tmp_path / "vae")
    ts = codec.temporal_downsample
    fps = Fraction(24)
    geom = ClipGeometry(
        num_frames=1 + 3 * ts,
        fps=fps,
        height=codec.spatial_downsample,
        width=2 * codec.spatial_downsample,
        sample_rate=16000,
        temporal_downsample=ts,
        spatial_downsample=codec.spatial_downsample,
    )
    x = _video(geom.num_frames, geom.height, geom.width)
    assert codec.encode(x).shape[2:] == geom.video_latent_shape
    times = geom.video_times().double()
    for frame in range(geom.num_frames):
        k = _first_latent_moved(codec, x, frame)
        second = frame / float(fps)
        assert k == math.ceil(frame / ts), (frame, k)
        assert times[k] - ts / float(fps) < second <= times[k] + 1e-6
    # a clap at exactly 0.5 s with Wan (frame 12 at 24 fps), 1 s with LTX (frame 24), lands on latent 3,
    # placed at exactly that second
    clap = 3 * ts
    assert _first_latent_moved(codec, x, clap) == 3 and float(times[3]) == clap / 24 == ts / 8


# --- video: LTX ---------------------------------------------------------------------------------------------


def test_ltx_folder_shapes_and_shipped_stats(tmp_path):
    from avgen.codecs.hf_ltx import LTXVideoCodec

    hf = _ltx(scaling_factor=2.0)
    with torch.no_grad():
        hf.latents_mean.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
        hf.latents_std.copy_(torch.tensor([1.0, 2.0, 4.0, 8.0]))
    hf.save_pretrained(tmp_path / "vae")
    codec = load_codec(tmp_path / "vae")
    assert isinstance(codec, LTXVideoCodec)
    assert (codec.temporal_downsample, codec.spatial_downsample) == (8, 32)
    x = _video(17, 32, 64)
    with torch.no_grad():
        z = codec.encode(x)
        raw = hf.encode(x).latent_dist.mean
        y = codec.decode(z)
    assert z.shape == (1, 4, 3, 1, 2) and y.shape == x.shape
    mean = hf.latents_mean.view(1, 4, 1, 1, 1)
    std = hf.latents_std.view(1, 4, 1, 1, 1)
    torch.testing.assert_close(z, (raw - mean) * 2.0 / std)  # LTX's pipeline: (z - mean) * scale / std


def test_ltx_timestep_conditioned_decoder(tmp_path):
    _ltx(timestep_conditioning=True).save_pretrained(tmp_path / "vae")
    codec = load_codec(tmp_path / "vae")
    assert codec.stats.mean.abs().max() == 0 and (codec.stats.std == 1).all()  # no stats shipped
    with torch.no_grad():
        z = codec.encode(_video(9, 32, 32))
        a, b = codec.decode(z), codec.decode(z)
        c = codec.decode(z, timestep=0.05, noise_scale=0.025, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == (1, 3, 9, 32, 32) and not torch.equal(a, c)
    with pytest.raises(ClipError, match="timestep"):
        codec.decode(z, timestep=2.0)


# --- audio: DAC, Oobleck, EnCodec 24 kHz --------------------------------------------------------------------


def test_dac_continuous_latents_round_trip_through_the_codebooks(tmp_path):
    from avgen.codecs.hf_dac import DacCodec

    hf = _dac()
    hf.save_pretrained(tmp_path / "dac")
    codec = load_codec(tmp_path / "dac")
    assert isinstance(codec, DacCodec)
    assert (codec.sample_rate, codec.channels, codec.hop_length, codec.latent_channels) == (16000, 1, 8, 6)
    assert codec.latent_rate == 2000.0 and codec.latent_length(100) == 13
    x = _wav(1, 100)
    with torch.no_grad():
        z = codec.encode(x)
        padded = torch.nn.functional.pad(x, (0, 4))
        out = hf.encode(padded)
        assert z.shape == (1, 6, 13)
        torch.testing.assert_close(z, out.projected_latents)  # identity stats: the projected latents
        y = codec.decode(z, length=100)
        torch.testing.assert_close(y, hf.decode(out.quantized_representation).audio_values[:, None, :100])
        assert codec.decode(z).shape == (1, 1, 104)
        assert codec.encode(_wav(1, 300), sample_rate=48000).shape == (1, 6, 13)  # resampled to 16 kHz first
    with pytest.raises(ClipError, match="posterior"):
        codec.encode(x, sample=True)
    with pytest.raises(ClipError, match="1-channel"):
        codec.encode(_wav(2, 100))


def test_oobleck_stereo_shapes_mean_and_sample(tmp_path):
    from avgen.codecs.hf_oobleck import OobleckCodec

    hf = _oobleck()
    hf.save_pretrained(tmp_path / "vae")
    codec = load_codec(tmp_path / "vae")
    assert isinstance(codec, OobleckCodec)
    assert (codec.sample_rate, codec.channels, codec.hop_length, codec.latent_channels) == (16000, 2, 8, 3)
    x = _wav(2, 61)
    with torch.no_grad():
        z = codec.encode(x)
        assert z.shape == (1, 3, 8)
        torch.testing.assert_close(z, hf.encode(torch.nn.functional.pad(x, (0, 3))).latent_dist.mean)
        s = codec.encode(x, sample=True, generator=torch.Generator().manual_seed(0))
        assert s.shape == z.shape and not torch.equal(s, z)
        y = codec.decode(z, length=61)
        assert y.shape == (1, 2, 61) and y.abs().max() <= 1.0
        assert codec.decode(z, sample_rate=8000).shape == (1, 2, 32)


def test_encodec_24khz_folder_reads_its_stats_file(tmp_path):
    from transformers import EncodecConfig, EncodecModel

    from avgen.codecs import EncodecCodec

    cfg = EncodecConfig(
        sampling_rate=24000,
        num_filters=4,
        hidden_size=8,
        codebook_dim=8,
        codebook_size=32,
        upsampling_ratios=[8, 5, 4, 2],
        num_lstm_layers=1,
        target_bandwidths=[1.5],
    )
    torch.manual_seed(0)
    EncodecModel(cfg).save_pretrained(tmp_path / "enc")
    plain = load_codec(tmp_path / "enc")
    assert isinstance(plain, EncodecCodec) and (plain.hop_length, plain.latent_rate) == (320, 75.0)
    (tmp_path / "enc" / STATS_NAME).write_text(
        json.dumps({"format": "avgen.latent_stats", "mean": [1.0] * 8, "std": [2.0] * 8})
    )
    codec = load_codec(tmp_path / "enc")
    x = _wav(1, 640)
    with torch.no_grad():
        torch.testing.assert_close(codec.encode(x), (plain.encode(x) - 1.0) / 2.0)
    assert codec.codec_id != plain.codec_id


# --- folders, identity, errors ------------------------------------------------------------------------------


def test_missing_weights_name_the_folder_and_the_file(tmp_path):
    (tmp_path / "wan").mkdir()
    (tmp_path / "wan" / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKLWan"}))
    with pytest.raises(CheckpointError, match=r"wan: missing diffusion_pytorch_model\.safetensors"):
        load_codec(tmp_path / "wan")
    (tmp_path / "dac").mkdir()
    (tmp_path / "dac" / "config.json").write_text(json.dumps({"model_type": "dac"}))
    with pytest.raises(CheckpointError, match=r"dac: missing model\.safetensors"):
        load_codec(tmp_path / "dac")
    _dac().save_pretrained(tmp_path / "dac")
    (tmp_path / "dac" / "model.safetensors").write_bytes(b"")  # truncated to nothing
    with pytest.raises(CheckpointError, match=r"dac: cannot load as a DAC audio codec"):
        load_codec(tmp_path / "dac")
    (tmp_path / "pipe" / "vae").mkdir(parents=True)
    (tmp_path / "pipe" / "vae" / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"no config\.json.*diffusers pipeline.*pipe/vae"):
        load_codec(tmp_path / "pipe")


def test_a_missing_diffusers_says_what_to_install(tmp_path, monkeypatch):
    from avgen.codecs.hf_base import CodecDependencyError

    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text(json.dumps({"_class_name": "AutoencoderOobleck"}))
    (tmp_path / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers now fails
    with pytest.raises(
        CodecDependencyError, match=r"AutoencoderOobleck needs the diffusers.*avgen\[codecs\]"
    ):
        load_codec(tmp_path / "vae")


@pytest.mark.parametrize("family", ["dac", "oobleck"])
def test_loading_never_touches_the_network(tmp_path, monkeypatch, family):
    (_dac() if family == "dac" else _oobleck()).save_pretrained(tmp_path / "codec")
    seen = []

    def refuse(*args, **kwargs):
        seen.append(args[:2])
        raise OSError("network access attempted")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    codec = load_codec(tmp_path / "codec")
    with torch.no_grad():
        codec.decode(codec.encode(_wav(codec.channels, 64)))
    assert not seen


def test_weights_that_do_not_match_the_config_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    _oobleck().save_pretrained(tmp_path / "vae")
    path = tmp_path / "vae" / "diffusion_pytorch_model.safetensors"
    state = load_file(str(path))
    state.pop(sorted(state)[0])
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match="do not match"):
        load_codec(tmp_path / "vae")


def test_codec_id_follows_weights_and_stats_and_save_round_trips(tmp_path):
    _dac().save_pretrained(tmp_path / "a")
    codec = load_codec(tmp_path / "a")
    assert load_codec(tmp_path / "a").codec_id == codec.codec_id
    codec.save_pretrained(tmp_path / "b")  # stats as shipped (none): no stats file
    assert not (tmp_path / "b" / STATS_NAME).exists()
    assert load_codec(tmp_path / "b").codec_id == codec.codec_id
    before = codec.codec_id
    codec.set_stats(torch.full((6,), 0.5), torch.full((6,), 2.0))
    assert codec.codec_id != before
    codec.save_pretrained(tmp_path / "b")
    assert (tmp_path / "b" / STATS_NAME).is_file()
    assert load_codec(tmp_path / "b").codec_id == codec.codec_id
    torch.testing.assert_close(read_stats_file(tmp_path / "b" / STATS_NAME, 6)[1], torch.full((6,), 2.0))


def test_a_stats_file_for_another_codec_is_refused(tmp_path):
    _dac().save_pretrained(tmp_path / "dac")
    (tmp_path / "dac" / STATS_NAME).write_text(
        json.dumps({"format": "avgen.latent_stats", "mean": [0.0] * 3, "std": [1.0] * 3})
    )
    with pytest.raises(CheckpointError, match=rf"{STATS_NAME}: holds stats for 3 latent channels.*has 6"):
        load_codec(tmp_path / "dac")


# --- avgen codec stats --------------------------------------------------------------------------------------


def _media(folder, n: int, frames: int, size: tuple[int, int], sample_rate: int = 16000) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        video = rng.integers(0, 256, (frames, *size, 3), dtype=np.uint8)
        samples = round(frames / 8 * sample_rate)
        audio = (rng.standard_normal((1, samples)) * 0.1).astype(np.float32)
        clip = AVClip(video=video, fps=Fraction(8), audio=audio, sample_rate=sample_rate)
        write_av(folder / f"clip{i}.mkv", clip, lossless=True)
    (folder / "notes.txt").write_text("not media")


def test_stats_command_writes_stats_the_codec_then_reads(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    _media(data, 2, 9, (24, 40))
    _dac().save_pretrained(tmp_path / "dac")
    assert stats_main([str(data), "--codec", str(tmp_path / "dac"), "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files"] == 2 and report["skipped_count"] == 0
    codec = load_codec(tmp_path / "dac")
    assert (codec.stats.std != 1).any()
    # over the same media the normalised latents now have mean 0 and std 1 per channel
    with torch.no_grad():
        zs = [codec.encode(torch.from_numpy(read_av(p, streams="a").audio)[None]) for p in data.glob("*.mkv")]
    flat = torch.cat(zs, dim=2).transpose(0, 1).reshape(6, -1)  # (D, positions)
    torch.testing.assert_close(flat.mean(1), torch.zeros(6), atol=1e-3, rtol=0)
    torch.testing.assert_close(flat.std(1, unbiased=False), torch.ones(6), atol=1e-3, rtol=0)


def test_stats_command_on_video_crops_to_the_codec_grid(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    _media(data, 2, 11, (20, 36))  # cropped to 9 frames of 16x32
    _wan().save_pretrained(tmp_path / "wan")
    out = tmp_path / "stats.json"
    assert stats_main([str(data), "--codec", str(tmp_path / "wan"), "--out", str(out), "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files"] == 2 and report["latent_positions"] == 2 * 3 * 2 * 4
    assert not (tmp_path / "wan" / STATS_NAME).exists()  # --out leaves the codec as it was
    mean, std = read_stats_file(out, 4)
    assert mean.shape == std.shape == (4,) and (std > 0).all()


def test_stats_command_keeps_off_avgen_codec_folders(tmp_path):
    tiny_video_vae().save_pretrained(tmp_path / "vae")
    with pytest.raises(ConfigError, match=r"model\.safetensors.*--out"):
        stats_main([str(tmp_path), "--codec", str(tmp_path / "vae")])
