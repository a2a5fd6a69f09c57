"""Without the eval extra: `avgen eval` says once which packages it needs; `avgen demo` still writes its MP4."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from avgen.cli import main


@pytest.fixture
def no_cv2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError


def test_eval_files_names_the_missing_extra_once(no_cv2: None, tmp_path: Path, capsys) -> None:
    for i in range(3):
        (tmp_path / f"clip{i}.mp4").write_bytes(b"not read: the check comes first")
    assert main(["eval", "files", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("opencv-python-headless") == 1 and "pip install 'avgen[eval]'" in err


def test_demo_writes_its_clip_and_skips_the_scores(no_cv2: None, tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo.mp4"
    assert main(["demo", "--ground-truth", "--duration", "1", "--size", "32x32", "--out", str(out)]) == 0
    assert out.is_file() and not out.with_suffix(".png").exists()
    assert "pip install 'avgen[eval]'" in capsys.readouterr().out
