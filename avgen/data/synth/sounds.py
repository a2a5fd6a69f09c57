"""Sound sources for the families: percussive strikes, sustained notes, rain noise (numpy float32).

Every source is silent before its onset sample and starts within one sample of it, so detected onsets
match the listed events.
"""

from __future__ import annotations

import numpy as np

# Modal frequency ratios and relative decay times of a few struck materials.
MATERIALS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "wood": ((1.0, 2.76, 5.40), (1.0, 0.45, 0.25)),
    "rubber": ((1.0, 1.59, 2.14), (1.0, 0.6, 0.35)),
    "metal": ((1.0, 2.32, 4.25, 6.63), (1.0, 0.8, 0.6, 0.4)),
}
TIMBRES: dict[str, tuple[float, ...]] = {  # harmonic amplitudes
    "marimba": (1.0, 0.0, 0.0, 0.25),
    "organ": (1.0, 0.5, 0.33, 0.25, 0.12),
    "flute": (1.0, 0.12, 0.05),
}


def strike(
    freq: float, sample_rate: int, *, amp: float, tau: float, length: int, material: str
) -> np.ndarray:
    """A struck object: decaying modes at ``freq`` x ratios plus a 1.5 ms click. float32 (length,).

    tau: decay time constant of the fundamental in seconds; the tail fades out over its last 5 ms.
    """
    ratios, decays = MATERIALS[material]
    t = np.arange(length, dtype=np.float64) / sample_rate
    out = np.zeros(length, dtype=np.float64)
    nyquist = sample_rate / 2
    for k, (ratio, decay) in enumerate(zip(ratios, decays)):
        f = freq * ratio
        if f < 0.9 * nyquist:
            out += np.sin(2 * np.pi * f * t) * np.exp(-t / (tau * decay)) / (1 + k)
    click = max(int(0.0015 * sample_rate), 1)
    out[:click] += np.hanning(2 * click)[click:] * 0.5 * np.sign(np.sin(2 * np.pi * freq * t[:click]) + 1e-9)
    out *= amp / max(np.abs(out).max(), 1e-9)
    fade = min(int(0.005 * sample_rate), length)
    if fade > 0:
        out[-fade:] *= np.linspace(1.0, 0.0, fade)
    return out.astype(np.float32)


def note(freq: float, sample_rate: int, *, amp: float, on: int, release: int, timbre: str) -> np.ndarray:
    """A sustained note: ``on`` samples of tone (2 ms attack, gentle decay) then a ``release``-sample fade.

    float32 (on + release,); the sound stops at the end.
    """
    n = on + release
    t = np.arange(n, dtype=np.float64) / sample_rate
    out = np.zeros(n, dtype=np.float64)
    for h, a in enumerate(TIMBRES[timbre], start=1):
        if a > 0 and h * freq < 0.45 * sample_rate:
            out += a * np.sin(2 * np.pi * h * freq * t)
    env = np.exp(-t / 0.8)
    attack = max(int(0.002 * sample_rate), 1)
    env[:attack] *= np.linspace(0.0, 1.0, attack + 1)[1:]
    if release > 0:
        env[on:] *= np.linspace(1.0, 0.0, release)
    out *= env
    out *= amp / max(np.abs(out).max(), 1e-9)
    return out.astype(np.float32)


def add_at(buffer: np.ndarray, start: int, signal: np.ndarray) -> None:
    """buffer[start:start + len(signal)] += signal, cropped to the buffer."""
    end = min(start + len(signal), len(buffer))
    if start < end:
        buffer[start:end] += signal[: end - start]


def rain_noise(
    rng: np.random.Generator, num_samples: int, sample_rate: int, *, intensity: np.ndarray, brightness: float
) -> np.ndarray:
    """Filtered noise with a patter of tiny drops; loudness follows ``intensity`` float (num_samples,) in [0, 1].

    brightness in [0, 1] moves the spectral tilt from dull (distant rain) to hissy (rain close by).
    Returns float32 (num_samples,) with peak below 0.8.
    """
    white = rng.standard_normal(num_samples)
    spectrum = np.fft.rfft(white)
    f = np.fft.rfftfreq(num_samples, 1.0 / sample_rate)
    centre = 800.0 + 3200.0 * brightness
    shape = 1.0 / (1.0 + ((f - centre) / (0.8 * centre)) ** 2) * (f > 80)
    hiss = np.fft.irfft(spectrum * shape, n=num_samples)
    hiss /= max(np.abs(hiss).max(), 1e-9)
    drops = np.zeros(num_samples)
    count = int(num_samples / sample_rate * (40 + 160 * float(intensity.mean())))
    where = rng.integers(0, num_samples, size=count)
    drops[where] = rng.uniform(-1.0, 1.0, size=count)
    kernel = np.exp(-np.arange(int(0.004 * sample_rate)) / (0.0008 * sample_rate))
    drops = np.convolve(drops, kernel)[:num_samples]
    drops /= max(np.abs(drops).max(), 1e-9)
    out = (0.5 * hiss + 0.25 * drops) * (0.25 + 0.75 * intensity)
    return (out * 0.75 / max(np.abs(out).max(), 1e-9)).astype(np.float32)
