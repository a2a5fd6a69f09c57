"""Suite-wide settings: offline, deterministic, one thread per worker (pytest-xdist runs two)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# librosa's onset peak picking is a numba gufunc cached next to librosa. Two xdist workers compiling it at
# once on a fresh venv can pair cache files written by different processes and segfault (numba#10128), so
# each worker gets its own cache folder (kept between runs; numba checks it against the source).
if worker := os.environ.get("PYTEST_XDIST_WORKER"):
    cache = os.path.join(tempfile.gettempdir(), f"avgen-tests-numba-{os.getuid()}-{worker}")
    os.environ.setdefault("NUMBA_CACHE_DIR", cache)
# benchmarks/ is no installed package: tests import its scripts as ``benchmarks.<name>`` from the root.
if (root := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, root)

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
