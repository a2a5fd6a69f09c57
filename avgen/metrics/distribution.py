"""Distribution distances between two sets of embeddings: Fréchet distance (FAD/FVD) and KID.

Everything here is numpy in float64 and knows nothing about networks: the embeddings come from
:mod:`avgen.metrics.vggish` (FAD) or :mod:`avgen.metrics.i3d` (FVD).

The Fréchet distance between Gaussian fits N(mu1, S1) and N(mu2, S2) is

    |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr( (sqrt(S1) S2 sqrt(S1))^(1/2) )

where tr((S1 S2)^(1/2)) is computed through the symmetric PSD matrix sqrt(S1) S2 sqrt(S1) and two
eigendecompositions, so it is real and stable even for singular covariances (fewer samples than dimensions),
unlike ``scipy.linalg.sqrtm(S1 @ S2)`` which can return complex values and needs an epsilon fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from avgen.errors import ClipError


def check_features(features: object, name: str, min_rows: int = 1) -> np.ndarray:
    """``features`` as a finite float64 (N, D) array with N >= ``min_rows``; ClipError otherwise."""
    arr = np.asarray(features)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ClipError(f"{name}: expected embeddings of shape (N, D), got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ClipError(f"{name}: expected a float array of embeddings, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.shape[0] < min_rows:
        raise ClipError(f"{name}: needs at least {min_rows} embedding(s), got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise ClipError(f"{name}: contains NaN or infinite values")
    return arr


def _clean(eigvals: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with round-off noise (below D * eps * largest, or negative) set to 0.

    sqrt is steep near 0: left in, each ~1e-16 noise eigenvalue of a singular covariance would add ~1e-8.
    """
    tol = max(float(eigvals.max(initial=0.0)), 0.0) * eigvals.shape[0] * np.finfo(np.float64).eps
    return np.where(eigvals > tol, eigvals, 0.0)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric PSD matrix. (D, D) float64."""
    eigvals, eigvecs = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigvecs * np.sqrt(_clean(eigvals))) @ eigvecs.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2); >= 0, in squared units.

    Args:
        mu1, mu2: (D,) means.
        sigma1, sigma2: (D, D) symmetric positive semi-definite covariances.
    """
    mu1, mu2 = (np.asarray(m, dtype=np.float64) for m in (mu1, mu2))
    s1, s2 = (np.asarray(s, dtype=np.float64) for s in (sigma1, sigma2))
    d = mu1.shape[0] if mu1.ndim == 1 else -1
    for name, m in (("mu1", mu1), ("mu2", mu2)):
        if m.shape != (d,):
            raise ClipError(f"{name}: expected a 1-D mean of length {d}, got shape {m.shape}")
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if s.shape != (d, d):
            raise ClipError(f"{name}: expected a ({d}, {d}) covariance, got shape {s.shape}")
    for name, x in (("mu1", mu1), ("mu2", mu2), ("sigma1", s1), ("sigma2", s2)):
        if not np.isfinite(x).all():
            raise ClipError(f"{name}: contains NaN or infinite values")
    root1 = _psd_sqrt(s1)
    middle = root1 @ s2 @ root1  # (D, D), symmetric PSD; tr(sqrt(middle)) = tr(sqrt(S1 S2))
    tr_covmean = float(np.sqrt(_clean(np.linalg.eigvalsh((middle + middle.T) / 2))).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(value, 0.0)  # round-off can leave -1e-12 for identical inputs


@dataclass
class FeatureStats:
    """Running mean and covariance of embeddings, updated batch by batch (Chan et al. merge, float64).

    ``update`` takes (N, D) batches; ``cov`` is the unbiased sample covariance (divides by n - 1), as in the
    reference FID/FAD/FVD code (``np.cov(rowvar=False)``).
    """

    dim: int
    count: int = 0
    mean: np.ndarray | None = None  # (D,) float64
    m2: np.ndarray | None = None  # (D, D) float64: sum of centred outer products

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ClipError(f"FeatureStats.dim: expected a positive embedding size, got {self.dim}")
        if self.mean is None:
            self.mean = np.zeros(self.dim)
        if self.m2 is None:
            self.m2 = np.zeros((self.dim, self.dim))

    def update(self, features: object) -> FeatureStats:
        """Add a batch of embeddings (N, D); returns self."""
        batch = check_features(features, "features", min_rows=0)
        if batch.shape[1] != self.dim:
            raise ClipError(f"features: expected {self.dim} dimensions per embedding, got {batch.shape[1]}")
        n = batch.shape[0]
        if n == 0:
            return self
        b_mean = batch.mean(axis=0)
        centred = batch - b_mean
        b_m2 = centred.T @ centred  # (D, D)
        total = self.count + n
        delta = b_mean - self.mean
        self.m2 = self.m2 + b_m2 + np.outer(delta, delta) * (self.count * n / total)
        self.mean = self.mean + delta * (n / total)
        self.count = total
        return self

    @property
    def cov(self) -> np.ndarray:
        """(D, D) unbiased covariance; needs at least 2 embeddings."""
        if self.count < 2:
            raise ClipError(f"FeatureStats: a covariance needs at least 2 embeddings, got {self.count}")
        return self.m2 / (self.count - 1)

    @classmethod
    def of(cls, features: object) -> FeatureStats:
        """Stats of one (N, D) array."""
        arr = check_features(features, "features")
        return cls(arr.shape[1]).update(arr)


def frechet_distance_stats(a: FeatureStats, b: FeatureStats) -> float:
    """Fréchet distance between the Gaussian fits of two FeatureStats of the same dimension."""
    if a.dim != b.dim:
        raise ClipError(f"cannot compare embeddings of {a.dim} and {b.dim} dimensions; use the same network")
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


def frechet_distance_features(x: object, y: object) -> float:
    """Fréchet distance between the Gaussian fits of two embedding sets (N1, D) and (N2, D), N >= 2."""
    return frechet_distance_stats(
        FeatureStats.of(check_features(x, "x", 2)), FeatureStats.of(check_features(y, "y", 2))
    )


def _poly_mmd2(x: np.ndarray, y: np.ndarray, degree: int, gamma: float, coef0: float) -> float:
    """Unbiased MMD^2 with the kernel (gamma <a, b> + coef0)^degree; x, y: (m, D) float64."""
    m = x.shape[0]
    k_xx = (x @ x.T * gamma + coef0) ** degree
    k_yy = (y @ y.T * gamma + coef0) ** degree
    k_xy = (x @ y.T * gamma + coef0) ** degree
    off_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    off_yy = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(off_xx + off_yy - 2.0 * k_xy.mean())


def kernel_distance(
    x: object,
    y: object,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    coef0: float = 1.0,
    seed: int = 0,
) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): unbiased MMD^2 with the kernel (<a, b> / D + 1)^3, over random subsets.

    Each of ``subsets`` draws min(subset_size, N1, N2) rows of each set without replacement (numpy
    Generator seeded with ``seed``). Returns (mean, std) over the subsets; ~0 (either sign) when both sets
    come from one distribution.
    """
    xs, ys = check_features(x, "x", 2), check_features(y, "y", 2)
    if xs.shape[1] != ys.shape[1]:
        raise ClipError(f"cannot compare embeddings of {xs.shape[1]} and {ys.shape[1]} dimensions")
    if subsets < 1 or subset_size < 2 or degree < 1:
        raise ClipError(
            f"kernel_distance: need subsets >= 1, subset_size >= 2, degree >= 1; got "
            f"{subsets}, {subset_size}, {degree}"
        )
    m = min(subset_size, xs.shape[0], ys.shape[0])
    gamma = 1.0 / xs.shape[1]
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            _poly_mmd2(
                xs[rng.choice(xs.shape[0], m, replace=False)],
                ys[rng.choice(ys.shape[0], m, replace=False)],
                degree,
                gamma,
                coef0,
            )
            for _ in range(subsets)
        ]
    )
    return float(values.mean()), (float(values.std()) if subsets > 1 else math.nan)
