"""VGGish (Hershey et al. 2017), the audio embedding network behind FAD, in torch.

Layout and parameter names follow the public torchvggish port (``features.{0,3,6,8,11,13}`` convs,
``embeddings.{0,2,4}`` fully connected layers), so its published state dict loads by name; see
:mod:`avgen.metrics.weights`. The front end follows the reference ``vggish_input`` / ``mel_features``:
16 kHz mono, |STFT| with a 25 ms periodic Hann window, 10 ms hop and a 512-point FFT, no padding,
64 HTK-mel bands over 125-7500 Hz, ``log(mel + 0.01)``, cut into non-overlapping 0.96 s examples of
96 frames x 64 bands. Two known differences: resampling uses :func:`avgen.dsp.resample` (windowed sinc) where
the reference uses resampy, and everything runs in float32 torch rather than float64 numpy.

FAD's embedding is the 128-d output of the last linear layer *without* its ReLU and without the PCA /
8-bit post-processing (as the PyTorch FAD reference, ``frechet_audio_distance`` with ``use_pca=False,
use_activation=False``); ``VGGishConfig.final_relu`` and :func:`pca_postprocess` give the other variants.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from avgen.dsp import resample
from avgen.errors import ClipError, ConfigError
from avgen.metrics._checks import check_audio, check_rate

SAMPLE_RATE = 16_000
WINDOW = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
FFT = 512  # next power of two above the window
MEL_BANDS = 64
MEL_LOW_HZ = 125.0
MEL_HIGH_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # 0.96 s of 10 ms frames; examples do not overlap
QUANTIZE_RANGE = (-2.0, 2.0)


@dataclass(frozen=True)
class VGGishConfig:
    """Sizes of VGGish. The default is the published network (72.1M parameters); smaller ones are for tests.

    channels: the six conv widths (max-pool after convs 1, 2, 4 and 6, so 96x64 -> 6x4).
    hidden: width of the two 4096-d fully connected layers. embedding_dim: output size (128).
    final_relu: apply torchvggish's ReLU after the last layer (off for FAD, see the module docstring).
    """

    channels: tuple[int, ...] = (64, 128, 256, 256, 512, 512)
    hidden: int = 4096
    embedding_dim: int = 128
    final_relu: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        if len(self.channels) != 6 or any(not isinstance(c, int) or c < 1 for c in self.channels):
            raise ConfigError(f"VGGishConfig.channels: expected 6 positive ints, got {self.channels}")
        if self.hidden < 1 or self.embedding_dim < 1:
            raise ConfigError(
                f"VGGishConfig: hidden and embedding_dim must be positive, got {self.hidden}, {self.embedding_dim}"
            )

    @property
    def is_standard(self) -> bool:
        """True for the published sizes without the final ReLU (FAD comparable with published numbers)."""
        sizes = (self.channels, self.hidden, self.embedding_dim)
        return sizes == ((64, 128, 256, 256, 512, 512), 4096, 128) and not self.final_relu


class VGGish(nn.Module):
    """VGGish on log-mel examples.

    forward: (E, 96, 64) float32 log-mel examples -> (E, embedding_dim) float32 embeddings.
    """

    def __init__(self, config: VGGishConfig | None = None) -> None:
        super().__init__()
        self.config = config or VGGishConfig()
        layers: list[nn.Module] = []
        in_ch = 1
        for i, ch in enumerate(self.config.channels):
            layers += [nn.Conv2d(in_ch, ch, kernel_size=3, padding=1), nn.ReLU()]
            if i in (0, 1, 3, 5):
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            in_ch = ch
        self.features = nn.Sequential(*layers)  # conv indices 0, 3, 6, 8, 11, 13 as in torchvggish
        hidden = self.config.hidden
        self.embeddings = nn.Sequential(
            nn.Linear(in_ch * 6 * 4, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, self.config.embedding_dim),
        )

    def forward(self, examples: Tensor) -> Tensor:
        if examples.ndim != 3 or tuple(examples.shape[1:]) != (EXAMPLE_FRAMES, MEL_BANDS):
            raise ClipError(
                f"VGGish input: expected log-mel examples (E, {EXAMPLE_FRAMES}, {MEL_BANDS}), got "
                f"{tuple(examples.shape)}; make them with log_mel_examples()"
            )
        x = self.features(rearrange(examples, "e t m -> e 1 t m"))  # (E, C, 6, 4)
        x = rearrange(x, "e c h w -> e (h w c)")  # channels last, as the TF original flattens
        x = self.embeddings(x)
        return F.relu(x) if self.config.final_relu else x


def hertz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


@lru_cache(maxsize=4)
def mel_matrix(
    bands: int = MEL_BANDS,
    fft: int = FFT,
    sample_rate: int = SAMPLE_RATE,
    low: float = MEL_LOW_HZ,
    high: float = MEL_HIGH_HZ,
) -> Tensor:
    """(fft // 2 + 1, bands) float32 triangular mel weights, VGGish's ``spectrogram_to_mel_matrix``.

    Triangles are in mel between ``bands + 2`` equally spaced edges; the DC bin gets no weight.
    """
    bins_mel = hertz_to_mel(np.linspace(0.0, sample_rate / 2, fft // 2 + 1))  # (F,)
    edges = np.linspace(hertz_to_mel(low), hertz_to_mel(high), bands + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]  # (bands,) each
    rising = (bins_mel[:, None] - lower) / (centre - lower)  # (F, bands)
    falling = (upper - bins_mel[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return torch.from_numpy(weights.astype(np.float32))


def log_mel(wave: Tensor) -> Tensor:
    """VGGish log-mel frames of a 16 kHz mono waveform.

    wave: (N,) float32 in [-1, 1]. Returns (F, 64) float32 with F = 1 + (N - 400) // 160 (0 if N < 400).
    """
    if wave.shape[-1] < WINDOW:
        return wave.new_zeros((0, MEL_BANDS))
    frames = wave.unfold(-1, WINDOW, HOP)  # (F, 400)
    n = torch.arange(WINDOW, dtype=torch.float64, device=wave.device)
    window = (0.5 - 0.5 * torch.cos(2 * torch.pi * n / WINDOW)).to(wave.dtype)  # periodic Hann
    spectrum = torch.fft.rfft(frames * window, n=FFT).abs()  # (F, 257)
    return torch.log(spectrum @ mel_matrix().to(wave.device) + LOG_OFFSET)


def log_mel_examples(audio: np.ndarray, sample_rate: int) -> Tensor:
    """Non-overlapping 0.96 s VGGish examples of a clip's audio.

    audio: (C, N) or (N,) float in [-1, 1] at ``sample_rate`` Hz (channels are averaged to mono).
    Returns (E, 96, 64) float32 with E = F // 96 (0 for clips shorter than ~0.975 s).
    """
    mono = torch.from_numpy(check_audio(audio).mean(axis=0))  # (N,)
    rate = check_rate(sample_rate, "sample_rate")
    if rate != int(rate):
        raise ClipError(f"sample_rate: expected a whole number of Hz, got {sample_rate}")
    wave = resample(mono, int(rate), SAMPLE_RATE)
    frames = log_mel(wave)  # (F, 64)
    count = frames.shape[0] // EXAMPLE_FRAMES
    return rearrange(frames[: count * EXAMPLE_FRAMES], "(e t) m -> e t m", t=EXAMPLE_FRAMES)


@torch.no_grad()
def embed_audio(model: VGGish, audio: np.ndarray, sample_rate: int, *, batch: int = 64) -> np.ndarray:
    """FAD embeddings of one clip: (E, embedding_dim) float32, one row per 0.96 s example (E may be 0)."""
    examples = log_mel_examples(audio, sample_rate)
    param = next(model.parameters())
    out = [
        model(examples[i : i + batch].to(device=param.device, dtype=param.dtype)).float().cpu()
        for i in range(0, examples.shape[0], batch)
    ]
    dim = model.config.embedding_dim
    return torch.cat(out).numpy() if out else np.zeros((0, dim), np.float32)


def pca_postprocess(
    embeddings: np.ndarray, pca_matrix: np.ndarray, pca_means: np.ndarray, *, quantize: bool = True
) -> np.ndarray:
    """The AudioSet release's PCA whitening (+ clip to [-2, 2] and 8-bit quantisation) of VGGish embeddings.

    embeddings: (E, D) float. pca_matrix: (D, D) (``pca_eigen_vectors``). pca_means: (D,) or (D, 1).
    Returns (E, D) float32: PCA'd values, or with ``quantize`` whole numbers in [0, 255].
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    mat = np.asarray(pca_matrix, dtype=np.float64)
    means = np.asarray(pca_means, dtype=np.float64).reshape(-1)  # (D, 1) in the published file
    d = emb.shape[-1] if emb.ndim == 2 else -1
    if emb.ndim != 2 or mat.shape != (d, d) or means.shape != (d,):
        raise ClipError(
            f"pca_postprocess: expected embeddings (E, D), pca_eigen_vectors (D, D) and pca_means (D,); got "
            f"{emb.shape}, {mat.shape}, {np.shape(pca_means)}"
        )
    out = (emb - means) @ mat.T  # (E, D)
    if quantize:
        lo, hi = QUANTIZE_RANGE
        out = np.round((np.clip(out, lo, hi) - lo) * (255.0 / (hi - lo)))
    return out.astype(np.float32)
