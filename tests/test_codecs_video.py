"""Causal video VAE and pixel codec: shapes at odd sizes, causality, tiling, save/load, errors."""

from __future__ import annotations

import json

import pytest
import torch

from avgen.codecs import LatentCodec, VideoCodec, load_codec
from avgen.codecs.base import fingerprint
from avgen.codecs.pixel import PixelCodec, PixelCodecConfig
from avgen.codecs.tiny import tiny_pixel_codec, tiny_video_vae
from avgen.codecs.video_vae import CausalVideoVAE, VideoVAEConfig
from avgen.config import to_dict
from avgen.errors import CheckpointError, ClipError, ConfigError


def _video(t: int, h: int, w: int, b: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, t, h, w, generator=g) * 2 - 1


def test_protocol_and_default_factors():
    vae = tiny_video_vae()
    assert isinstance(vae, VideoCodec) and isinstance(vae, LatentCodec)
    assert (vae.temporal_downsample, vae.spatial_downsample) == (4, 8)
    cfg = VideoVAEConfig()
    assert (cfg.temporal_downsample, cfg.spatial_downsample) == (4, 8)


@pytest.mark.parametrize("t,h,w", [(1, 8, 8), (5, 16, 40), (9, 64, 24), (13, 24, 56)])
def test_shapes_at_odd_durations_and_aspect_ratios(t, h, w):
    vae = tiny_video_vae()
    with torch.no_grad():
        z = vae.encode(_video(t, h, w, b=2))
        assert (
            z.shape
            == (2, vae.latent_channels, 1 + (t - 1) // 4, h // 8, w // 8)
            == (2, *vae.latent_shape(t, h, w))
        )
        y = vae.decode(z)
    assert y.shape == (2, 3, t, h, w) and y.dtype == torch.float32
    assert float(y.abs().max()) <= 1.0


def test_encoder_and_decoder_are_causal_in_time():
    vae = tiny_video_vae()
    x = _video(9, 16, 16)
    x2 = x.clone()
    x2[:, :, 5:] = -x2[:, :, 5:]  # change only frames 5..8 (latent frame 2)
    with torch.no_grad():
        z, z2 = vae.encode(x), vae.encode(x2)
        torch.testing.assert_close(z[:, :, :2], z2[:, :, :2])  # latent frames 0, 1 unaffected
        assert not torch.allclose(z[:, :, 2], z2[:, :, 2])
        z3 = z.clone()
        z3[:, :, 2] += 1.0
        torch.testing.assert_close(vae.decode(z)[:, :, :5], vae.decode(z3)[:, :, :5])


def test_centred_decoder_sees_the_next_latent_frame():
    causal = CausalVideoVAE(VideoVAEConfig(channels=(8, 8, 8))).eval()
    centred = CausalVideoVAE(VideoVAEConfig(channels=(8, 8, 8), causal_decoder=False)).eval()
    assert set(causal.state_dict()) == set(centred.state_dict())  # same weights, other padding
    centred.load_state_dict(causal.state_dict())
    assert causal.codec_id != centred.codec_id
    x = _video(9, 16, 16)
    with torch.no_grad():
        z = centred.encode(x)
        torch.testing.assert_close(z, causal.encode(x))  # the encoder stays causal
        z3 = z.clone()
        z3[:, :, 2] += 1.0  # latent frame 2 (video frames 5..8)
        y, y3 = centred.decode(z), centred.decode(z3)
    assert y.shape == causal.decode(z).shape == (1, 3, 9, 16, 16)
    assert not torch.allclose(y[:, :, 4], y3[:, :, 4])  # frame 4 now sees the next latent frame


def test_frame_wise_vae_keeps_every_frame_to_itself():
    cfg = VideoVAEConfig(channels=(8, 8, 8), temporal_down=(False, False), temporal_kernel=1)
    vae = CausalVideoVAE(cfg).eval()
    assert vae.temporal_downsample == 1 and vae.latent_shape(7, 16, 16) == (16, 7, 2, 2)
    x = _video(7, 16, 16)
    x3 = x.clone()
    x3[:, :, 3] = -x3[:, :, 3]  # change video frame 3 only
    with torch.no_grad():
        z, z3 = vae.encode(x), vae.encode(x3)
        y, y3 = vae.decode(z), vae.decode(z3)
    changed = (z - z3).abs().amax(dim=(0, 1, 3, 4)) > 0  # (T,) latent frames that moved
    assert changed.tolist() == [False, False, False, True, False, False, False]
    moved = (y - y3).abs().amax(dim=(0, 1, 3, 4)) > 0
    assert moved.tolist() == changed.tolist() and y.shape == x.shape
    # the default kernel keeps the ids (and latent caches) of codecs saved before the option existed
    old = tiny_video_vae()
    config = to_dict(old.config)
    del config["causal_decoder"], config["temporal_kernel"]
    assert old.codec_id == f"video_vae-{fingerprint(config, old)}"


def test_first_frame_is_encoded_alone():
    vae = tiny_video_vae()
    x = _video(5, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(vae.encode(x)[:, :, :1], vae.encode(x[:, :, :1]))


@pytest.mark.parametrize("t,hint", [(8, "5 or 9"), (10, "9 or 13"), (2, "1 or 5")])
def test_bad_frame_count_names_nearest_valid(t, hint):
    with pytest.raises(ClipError, match=f"nearest valid: {hint}"):
        tiny_video_vae().encode(_video(t, 16, 16))


def test_bad_inputs_raise_clip_errors():
    vae = tiny_video_vae()
    with pytest.raises(ClipError, match="multiple of 8"):
        vae.encode(_video(5, 20, 16))
    with pytest.raises(ClipError, match=r"\(B, 3, T, H, W\)"):
        vae.encode(torch.zeros(3, 5, 16, 16))
    with pytest.raises(ClipError, match="NaN"):
        vae.encode(torch.full((1, 3, 1, 8, 8), float("nan")))
    with pytest.raises(ClipError, match=r"\[-1, 1\]"):
        vae.encode(torch.full((1, 3, 1, 8, 8), 255.0))
    with pytest.raises(ClipError, match="latents"):
        vae.decode(torch.zeros(1, vae.latent_channels + 1, 1, 2, 2))


def test_tiled_decoding_matches_whole_frame():
    vae = tiny_video_vae()
    z = torch.randn(1, vae.latent_channels, 2, 12, 20)
    with torch.no_grad():
        whole = vae.decode(z)
        assert torch.equal(vae.decode(z, tile=32), whole)  # one tile covers everything
        tiled = vae.decode(z, tile=8, tile_overlap=4)
    assert tiled.shape == whole.shape
    # blending hides the seams: tiles agree with the whole frame far better than unrelated frames do
    err = (tiled - whole).abs().mean()
    assert err < 0.25 * (whole - whole.flip(-1)).abs().mean()


def test_sampling_uses_the_posterior():
    vae = tiny_video_vae()
    x = _video(5, 16, 16)
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        a, b = vae.encode(x, sample=True, generator=g), vae.encode(x, sample=True, generator=g)
    assert not torch.equal(a, b) and a.shape == b.shape


def test_save_load_round_trip_identical(tmp_path):
    vae = tiny_video_vae()
    with torch.no_grad():
        vae.stats.std.fill_(3.0)
    vae.save_pretrained(tmp_path / "v")
    back = load_codec(tmp_path / "v")
    assert isinstance(back, CausalVideoVAE) and back.codec_id == vae.codec_id
    x = _video(5, 16, 24)
    with torch.no_grad():
        assert torch.equal(back.encode(x), vae.encode(x))
        assert torch.equal(back.decode(vae.encode(x)), vae.decode(vae.encode(x)))


def test_mismatched_checkpoint_names_the_difference(tmp_path):
    tiny_video_vae().save_pretrained(tmp_path / "v")
    cfg_path = tmp_path / "v" / "config.json"
    data = json.loads(cfg_path.read_text())
    data["config"]["channels"] = [8, 8, 16]
    cfg_path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"shape mismatch.*file \(8,\) vs model \(16,\)"):
        load_codec(tmp_path / "v")
    data["config"]["channels"] = [8, 8, 8, 8]
    data["config"]["temporal_down"] = [True, True, False]
    cfg_path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="missing"):
        load_codec(tmp_path / "v")


def test_truncated_weights_are_a_clear_error(tmp_path):
    tiny_video_vae().save_pretrained(tmp_path / "v")
    w = tmp_path / "v" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="safetensors"):
        load_codec(tmp_path / "v")


def test_wrong_kind_is_refused(tmp_path):
    tiny_pixel_codec().save_pretrained(tmp_path / "p")
    with pytest.raises(CheckpointError, match="not a causal video VAE"):
        CausalVideoVAE.from_pretrained(tmp_path / "p")


def test_config_checks():
    with pytest.raises(ConfigError, match="temporal_down"):
        VideoVAEConfig(channels=(8, 8), temporal_down=(True, True))
    with pytest.raises(ConfigError, match="temporal_kernel"):
        VideoVAEConfig(temporal_kernel=2)
    with pytest.raises(ConfigError, match="temporal_kernel"):
        VideoVAEConfig(temporal_down=(True, False), temporal_kernel=1)


# --- pixel codec ---


def test_pixel_identity_is_exact():
    codec = PixelCodec()
    x = _video(3, 10, 14)
    assert codec.latent_channels == 3 and codec.spatial_downsample == 1
    torch.testing.assert_close(codec.decode(codec.encode(x)), x)


@pytest.mark.parametrize("pt,p", [(1, 2), (4, 2), (2, 4)])
def test_pixel_patches_round_trip_and_shapes(pt, p):
    codec = PixelCodec(PixelCodecConfig(patch_t=pt, patch_h=p, patch_w=p))
    t = 1 + 2 * pt
    x = _video(t, 4 * p, 6 * p, b=2)
    z = codec.encode(x)
    assert z.shape == (2, 3 * pt * p * p, 3, 4, 6) == (2, *codec.latent_shape(t, 4 * p, 6 * p))
    torch.testing.assert_close(codec.decode(z), x)


def test_pixel_downsample_is_lossy_but_shaped():
    codec = PixelCodec(PixelCodecConfig(patch_h=2, patch_w=2, downsample=2))
    assert codec.spatial_downsample == 4
    x = torch.zeros(1, 3, 1, 8, 12)
    x[..., :4, :] = 0.5  # blocks aligned to the 2x2 pooling survive exactly
    assert codec.encode(x).shape == (1, 12, 1, 2, 3)
    torch.testing.assert_close(codec.decode(codec.encode(x)), x)
    with pytest.raises(ClipError, match="multiple of 4"):
        codec.encode(torch.zeros(1, 3, 1, 6, 8))


def test_pixel_save_load(tmp_path):
    codec = tiny_pixel_codec()
    codec.save_pretrained(tmp_path / "p")
    back = load_codec(tmp_path / "p")
    assert isinstance(back, PixelCodec) and back.config == codec.config and back.codec_id == codec.codec_id
