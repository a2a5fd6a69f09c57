"""Codec training: losses against references, loop + checkpoints + resume on tiny in-memory clips."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch

from avgen.codecs import load_codec
from avgen.codecs.losses import (
    kl_to_standard_normal,
    mel_filterbank,
    multires_mel_distance,
    multires_stft_loss,
    psnr,
    si_snr,
    ssim,
)
from avgen.codecs.tiny import tiny_audio_codec
from avgen.codecs.video_vae import VideoVAEConfig
from avgen.config import from_dict, to_dict
from avgen.errors import CheckpointError, ConfigError
from avgen.io import AVClip, write_av
from avgen.train.checkpoint import latest_checkpoint
from avgen.train.codec import CodecTrainConfig, lr_at, resolve_init, train_codec
from avgen.train.codec_data import load_audio_clips
from avgen.train.codec_eval import evaluate_audio
from avgen.train.discriminator import (
    MultiScaleSTFTDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)

TINY_AUDIO_CFG = {
    "latent_channels": 8,
    "num_filters": 4,
    "codebook_size": 16,
    "num_quantizers": 2,
}
TINY_VIDEO_CFG = {"latent_channels": 4, "channels": [4, 8, 8]}


def test_mel_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(16000, 512, 40).numpy()
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=40)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6)


def test_si_snr_known_values():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 4000, generator=g)
    noise = torch.randn(2, 1, 4000, generator=g)
    noise = noise - noise.mean(-1, keepdim=True)
    x = x - x.mean(-1, keepdim=True)
    # make the noise orthogonal to x so the expected SI-SNR is exact
    noise = noise - (noise * x).sum(-1, keepdim=True) / (x * x).sum(-1, keepdim=True) * x
    noisy = 3.0 * x + noise * (3.0 * x).norm(dim=-1, keepdim=True) / noise.norm(
        dim=-1, keepdim=True
    ) / math.sqrt(10)
    torch.testing.assert_close(si_snr(noisy, x), torch.full((2,), 10.0), atol=1e-3, rtol=0)
    assert float(si_snr(0.5 * x, x).min()) > 60


def test_audio_losses_zero_on_identity_and_positive_otherwise():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 8000, generator=g) * 2 - 1
    y = x + 0.1 * torch.randn(x.shape, generator=g)
    assert float(multires_stft_loss(x, x)) < 1e-5 < float(multires_stft_loss(y, x))
    assert float(multires_mel_distance(x, x, 16000)) < 1e-6 < float(multires_mel_distance(y, x, 16000))
    half_silent = torch.cat([x[:1], torch.zeros(1, 1, 8000)])  # one silent crop must not blow up the batch
    assert float(multires_stft_loss(y, half_silent)) < 20


def test_video_measures():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 2, 32, 32, generator=g) * 2 - 1
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-5)
    assert float(ssim(-x, x)) < 0.5
    noisy = x + 0.02
    assert float(psnr(noisy, x)[0]) == pytest.approx(10 * math.log10(4 / 0.02**2), abs=1e-3)
    assert float(kl_to_standard_normal(torch.zeros(3), torch.zeros(3))) == 0.0


def test_discriminator_losses_run_and_backprop():
    disc = MultiScaleSTFTDiscriminator()
    g = torch.Generator().manual_seed(0)
    real = torch.rand(2, 1, 4000, generator=g) * 2 - 1
    fake = (torch.rand(2, 1, 4000, generator=g) * 2 - 1).requires_grad_()
    r, f = disc(real), disc(fake)
    assert len(r) == 3 and r[0][0].dim() == 4
    d = discriminator_loss(r, disc(fake.detach()))
    adv, fm = generator_adversarial_loss(f), feature_matching_loss(r, f)
    (d + adv + fm).backward()
    assert fake.grad is not None and torch.isfinite(fake.grad).all()
    assert float(fm.detach()) > 0


def test_lr_schedule():
    cfg = CodecTrainConfig(steps=100, warmup=10, lr=1e-3, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(1e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(100, cfg) == pytest.approx(1e-4)


def test_config_errors():
    with pytest.raises(ConfigError, match="kind"):
        CodecTrainConfig(kind="image")


def _video_clips(n: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, 9, 16, 24), generator=g, dtype=torch.uint8) for _ in range(n)]


def _video_cfg(steps: int, **extra: Any) -> CodecTrainConfig:
    return from_dict(
        CodecTrainConfig,
        {
            "kind": "video",
            "steps": steps,
            "batch_size": 2,
            "crop_frames": 5,
            "crop_size": 16,
            "warmup": 1,
            "log_every": 1,
            "eval_every": 2,
            "ckpt_every": 2,
            "stats_clips": 2,
            "video": TINY_VIDEO_CFG,
            **extra,
        },
    )


def test_video_training_checkpoints_and_resume_are_exact(tmp_path):
    train, held = _video_clips(3, 0), _video_clips(2, 1)
    straight = train_codec(_video_cfg(4), train, held, tmp_path / "a", progress=False)
    train_codec(_video_cfg(2), train, held, tmp_path / "b", progress=False)
    resumed = train_codec(_video_cfg(4), train, held, tmp_path / "b", resume=True, progress=False)
    assert straight["codec_id"] == resumed["codec_id"]  # same weights and stats, bit for bit
    a, b = load_codec(tmp_path / "a" / "codec"), load_codec(tmp_path / "b" / "codec")
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
    ckpt = latest_checkpoint(tmp_path / "a")
    assert ckpt is not None and ckpt.name == "step_00000004"
    assert load_codec(ckpt / "codec").latent_channels == 4  # every checkpoint holds a loadable codec
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4]
    assert any("eval" in r for r in log) and "psnr" in straight["held_out"]
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["held_out"]["clips"] == 2


def test_existing_run_needs_resume_and_same_model(tmp_path):
    train = _video_clips(2, 0)
    train_codec(_video_cfg(2), train, [], tmp_path / "r", progress=False)
    with pytest.raises(CheckpointError, match="--resume"):
        train_codec(_video_cfg(2), train, [], tmp_path / "r", progress=False)
    other = replace(_video_cfg(3), video=VideoVAEConfig(latent_channels=8, channels=(4, 8, 8)))
    with pytest.raises(CheckpointError, match="different model config"):
        train_codec(other, train, [], tmp_path / "r", resume=True, progress=False)


def test_audio_training_with_discriminator_learns(tmp_path):

    t = torch.arange(16000) / 16000
    tones = [(0.5 * torch.sin(2 * math.pi * f * t))[None] for f in (220.0, 330.0, 440.0)]
    cfg = from_dict(
        CodecTrainConfig,
        {
            "kind": "audio",
            "steps": 6,
            "batch_size": 2,
            "crop_seconds": 0.2,
            "warmup": 1,
            "lr": 3e-3,
            "adversarial": True,
            "disc_start": 3,
            "log_every": 1,
            "ckpt_every": 6,
            "stats_clips": 3,
            "audio": {**TINY_AUDIO_CFG},
        },
    )
    metrics = train_codec(cfg, tones, tones[:1], tmp_path / "au", progress=False)
    log = [json.loads(line) for line in (tmp_path / "au" / "log.jsonl").read_text().splitlines()]
    losses = [r for r in log if "loss" in r]
    assert "d_loss" not in losses[2] and "d_loss" in losses[3]  # the discriminator starts at disc_start
    assert losses[-1]["mel"] < losses[0]["mel"]
    assert {"si_snr", "mel_distance", "clips"} <= set(metrics["held_out"])
    codec = load_codec(tmp_path / "au" / "codec")
    assert codec.codec_id == metrics["codec_id"]


def test_audio_eval_reports_si_snr_per_synth_family(tmp_path):
    """evaluate_audio splits SI-SNR by the avgen-synth family read from each clip's events JSON."""
    codec = tiny_audio_codec()
    rng = np.random.default_rng(0)
    for name, family in [("a", "talk"), ("b", "ambience"), ("c", None)]:
        audio = rng.uniform(-0.5, 0.5, (1, codec.sample_rate // 2)).astype(np.float32)
        write_av(tmp_path / f"{name}.wav", AVClip(audio=audio, sample_rate=codec.sample_rate))
        if family:
            (tmp_path / f"{name}.json").write_text(json.dumps({"family": family}))
    clips, families = load_audio_clips(tmp_path, codec.sample_rate, codec.channels)
    assert families == ["talk", "ambience", None]
    metrics = evaluate_audio(codec, clips, families)
    assert set(metrics) >= {"si_snr", "si_snr_talk", "si_snr_ambience", "mel_distance"}
    assert "si_snr_None" not in metrics


# --- fine-tuning a trained codec (init_from, freeze_encoder) ---


def test_freeze_encoder_needs_a_trained_video_codec():
    with pytest.raises(ConfigError, match="init_from"):
        CodecTrainConfig(kind="video", freeze_encoder=True)
    with pytest.raises(ConfigError, match="kind 'video'"):
        CodecTrainConfig(kind="audio", freeze_encoder=True, init_from="somewhere")


def test_resolve_init_takes_the_folders_architecture(tmp_path):
    train = _video_clips(3, 0)
    train_codec(_video_cfg(1), train, [], tmp_path / "base", progress=False)
    folder = str(tmp_path / "base" / "codec")
    found = load_codec(folder).config
    assert resolve_init(replace(_video_cfg(1), init_from=folder)).video == found
    assert resolve_init(CodecTrainConfig(kind="video", init_from=folder)).video == found  # no section
    other = replace(
        _video_cfg(1), init_from=folder, video=VideoVAEConfig(latent_channels=8, channels=(4, 8, 8))
    )
    with pytest.raises(ConfigError, match="different video architecture"):
        resolve_init(other)
    with pytest.raises(Exception, match="nowhere"):
        resolve_init(replace(_video_cfg(1), init_from=str(tmp_path / "nowhere")))


def test_decoder_finetune_keeps_the_latents_exactly(tmp_path):
    train, held = _video_clips(3, 0), _video_clips(2, 1)
    train_codec(_video_cfg(2), train, held, tmp_path / "base", progress=False)
    base = load_codec(tmp_path / "base" / "codec")
    tuned_cfg = _video_cfg(
        3,
        init_from=str(tmp_path / "base" / "codec"),
        freeze_encoder=True,
        video_loss={"foreground": 4.0},
        lr=1e-2,
    )
    train_codec(
        tuned_cfg, _video_clips(3, 5), held, tmp_path / "tuned", progress=False
    )  # other clips: stats kept
    tuned = load_codec(tmp_path / "tuned" / "codec")
    a, b = base.state_dict(), tuned.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith(("encoder.", "stats.")))
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("decoder."))
    clip = held[0][:, :5].float().div(127.5).sub(1).unsqueeze(0)
    with torch.no_grad():
        assert torch.equal(base.encode(clip), tuned.encode(clip))  # a DiT trained on base's latents fits
    saved = json.loads((tmp_path / "tuned" / "config.json").read_text())  # names what was trained
    assert saved["video"] == to_dict(base.config) and saved["freeze_encoder"] is True
    log = [json.loads(line) for line in (tmp_path / "tuned" / "log.jsonl").read_text().splitlines()]
    assert all("l1_weighted" in r for r in log if "loss" in r)


def test_full_finetune_from_a_codec_starts_from_its_weights(tmp_path):
    train = _video_clips(3, 0)
    train_codec(_video_cfg(2), train, [], tmp_path / "base", progress=False)
    cfg = _video_cfg(1, init_from=str(tmp_path / "base" / "codec"), lr=1e-9, warmup=0)
    train_codec(cfg, train, [], tmp_path / "more", progress=False)
    a = load_codec(tmp_path / "base" / "codec").state_dict()
    b = load_codec(tmp_path / "more" / "codec").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a if not k.startswith("stats."))
