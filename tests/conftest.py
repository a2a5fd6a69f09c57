"""Suite-wide settings: offline, deterministic, one thread per worker (pytest-xdist runs two)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    import torch

    torch.set_num_threads(1)  # two xdist workers on two cores; small matmuls are faster on one thread
    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002 -- guards against code that (wrongly) uses the global RNG


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
