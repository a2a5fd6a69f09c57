"""The tracked tree is the product: size limits on the newcomer's documents, no experiment records or large
files in git, and library text that states contracts rather than the history of the runs behind them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
CARD = ROOT / "avgen" / "weights" / "avgen-tiny" / "MODEL_CARD.md"
# A session number, a run version (v2 ... v19, not v2a), a machine description or an experiment path.
HISTORY = re.compile(
    r"[Ss]ession \d|(^|[^-A-Za-z0-9_])v(1\d|[2-9])\b|this CPU|2-core|runs/(?!avgen\")|probe_(a2v|v2a|t2av|talk)|tiny_joint"
)


def _tracked() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    return subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()


def test_readme_and_model_card_fit_a_newcomer() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
    card = CARD.read_text()
    assert len(card.splitlines()) <= 150
    for section in ("## Model details", "## Uses", "## Training", "## Evaluation", "## Limitations"):
        assert section in card, section


def _packed_state(path: str) -> bool:
    """A packed run's resume state (``avgen train pack``) under checkpoints/: a training that spans machines
    carries it in git until the run finishes."""
    parts = path.split("/")
    return parts[0] == "checkpoints" and parts[-1] == "train_state.safetensors" and "checkpoints" in parts[1:]


def test_no_experiment_records_or_large_files_are_tracked() -> None:
    files = _tracked()
    assert not [f for f in files if f.startswith("runs/")]
    large = [f for f in files if not f.startswith("avgen/weights/") and not _packed_state(f)]
    assert not [f for f in large if (ROOT / f).is_file() and (ROOT / f).stat().st_size > 1_000_000]


def test_library_text_states_contracts_not_history() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sorted((ROOT / "avgen").rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if HISTORY.search(line)
    ]
    assert not found, "\n".join(found)
