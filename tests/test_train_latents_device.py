"""Latent caches are encoded on the device the codecs sit on (the GPU when training there); the latents
always come back as fp32 CPU tensors, and ``codecs_on`` puts the codecs back where they were."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avgen.codecs.tiny import tiny_audio_codec, tiny_video_vae
from avgen.geometry import ClipGeometry
from avgen.train.encode import codecs_on, encode_clips


def _clips(n: int, geom: ClipGeometry) -> tuple[list[np.ndarray], list[torch.Tensor]]:
    rng = np.random.default_rng(0)
    frames = [
        rng.integers(0, 256, (geom.num_frames, geom.height, geom.width, 3), dtype=np.uint8) for _ in range(n)
    ]
    wavs = [torch.from_numpy(rng.uniform(-0.5, 0.5, (1, geom.num_samples))).float() for _ in range(n)]
    return frames, wavs


def _geometry(vc, ac) -> ClipGeometry:
    return ClipGeometry.from_duration(
        0.5,
        8,
        height=16,
        width=16,
        sample_rate=ac.sample_rate,
        temporal_downsample=vc.temporal_downsample,
        spatial_downsample=vc.spatial_downsample,
        hop_length=ac.hop_length,
    )


def test_codecs_on_restores_devices_even_on_error() -> None:
    vc, ac = tiny_video_vae(), tiny_audio_codec()
    with codecs_on(torch.device("cpu"), vc, ac, "not a module"):
        assert next(vc.parameters()).device.type == "cpu"
    with pytest.raises(RuntimeError, match="boom"), codecs_on(torch.device("cpu"), vc, ac):
        raise RuntimeError("boom")
    assert {p.device.type for p in [*vc.parameters(), *ac.parameters()]} == {"cpu"}


def test_encode_clips_matches_the_codecs_and_returns_cpu_fp32() -> None:
    vc, ac = tiny_video_vae().eval(), tiny_audio_codec().eval()
    geom = _geometry(vc, ac)
    frames, wavs = _clips(2, geom)
    videos, audios = encode_clips(frames, wavs, geom, vc, ac)
    assert [v.shape for v in videos] == [(vc.latent_channels, *geom.video_latent_shape)] * 2
    assert all(x.device.type == "cpu" and x.dtype == torch.float32 for x in [*videos, *audios])
    (v0,), (a0,) = encode_clips(frames[:1], wavs[:1], geom, vc, ac)
    torch.testing.assert_close(v0, videos[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a0, audios[0], rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_encode_on_cuda_matches_cpu() -> None:
    vc, ac = tiny_video_vae().eval(), tiny_audio_codec().eval()
    geom = _geometry(vc, ac)
    frames, wavs = _clips(2, geom)
    cpu = encode_clips(frames, wavs, geom, vc, ac)
    with codecs_on(torch.device("cuda"), vc, ac):
        gpu = encode_clips(frames, wavs, geom, vc, ac)
    assert next(vc.parameters()).device.type == "cpu"
    for a, b in zip([*cpu[0], *cpu[1]], [*gpu[0], *gpu[1]], strict=True):
        assert b.device.type == "cpu"
        # the codecs encode under bf16 autocast on CUDA (codecs/base.py maybe_autocast): ~2 % apart, not bitwise
        assert float((a - b).norm() / a.norm()) < 5e-2
