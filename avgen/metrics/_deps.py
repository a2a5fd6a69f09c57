"""Lazy imports of the ``eval`` extra (opencv, librosa, matplotlib, pocketsphinx) with an error that says how
to get them."""

from __future__ import annotations

import importlib
from types import ModuleType

from avgen.errors import AVGenError

_PIP_NAMES = {
    "cv2": "opencv-python-headless",
    "librosa": "librosa",
    "matplotlib": "matplotlib",
    "pocketsphinx": "pocketsphinx",
}


class MissingDependencyError(AVGenError, ImportError):
    """An optional dependency of the evaluation tools is not installed."""


def require(module: str) -> ModuleType:
    """Import ``module`` (one of cv2, librosa, matplotlib, pocketsphinx) or raise naming ``pip install avgen[eval]``."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        pip_name = _PIP_NAMES.get(module, module)
        raise MissingDependencyError(
            f"avgen metrics need {pip_name!r} ({e}); install the eval extra: pip install 'avgen[eval]'"
        ) from e


EVAL_MODULES = ("cv2", "librosa", "matplotlib")  # what scoring and plotting clips needs (speech is optional)


def missing(modules: tuple[str, ...] = EVAL_MODULES) -> list[str]:
    """The pip names of ``modules`` that cannot be imported ([] when all can)."""
    out = []
    for m in modules:
        try:
            importlib.import_module(m)
        except ImportError:
            out.append(_PIP_NAMES.get(m, m))
    return out


def require_eval(what: str) -> None:
    """One MissingDependencyError for ``what`` (e.g. "avgen eval files") naming every missing package of
    the eval extra, before any work."""
    if gone := missing():
        raise MissingDependencyError(
            f"{what} needs {', '.join(gone)}: install the eval extra: pip install 'avgen[eval]'"
        )
