from __future__ import annotations

import os
import stat

import pytest
import torch

from avgen.atomic import atomic_path, save_safetensors, write_json, write_text


def test_success_renames_and_failure_leaves_nothing(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    assert (tmp_path / "a.json").read_text().strip() == '{\n  "x": 1\n}'
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_no_overwrite_keeps_existing(tmp_path):
    (tmp_path / "c.txt").write_text("keep")
    with (
        pytest.raises(FileExistsError, match="overwrite=True"),
        atomic_path(tmp_path / "c.txt", overwrite=False),
    ):
        pass
    assert (tmp_path / "c.txt").read_text() == "keep"


def test_safetensors_round_trip(tmp_path):
    from safetensors.torch import load_file

    t = {"w": torch.arange(6.0).reshape(2, 3).t()}  # non-contiguous on purpose
    save_safetensors(t, tmp_path / "m.safetensors", metadata={"step": "3"})
    assert torch.equal(load_file(tmp_path / "m.safetensors")["w"], t["w"])


def test_json_options_and_missing_parents(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_json(tmp_path / "no" / "such" / "d.json", {})
    out = write_json(
        tmp_path / "no" / "such" / "d.json", {"b": 1, "a": [1]}, indent=1, sort_keys=True, mkdir_parents=True
    )
    assert out.read_text() == '{\n "a": [\n  1\n ],\n "b": 1\n}\n'
    with pytest.raises(ValueError, match="JSON compliant"):
        write_json(tmp_path / "nan.json", {"x": float("nan")}, allow_nan=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no"]  # the failed write left no temp file


def test_files_get_plain_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "r.txt", "shared")
        save_safetensors({"w": torch.zeros(2)}, tmp_path / "w.safetensors")  # safetensors alone makes 0600
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.txt").stat().st_mode) == 0o644  # world-readable, unlike mkstemp's 0600
    assert stat.S_IMODE((tmp_path / "w.safetensors").stat().st_mode) == 0o644


def test_atomic_dir_replaces_a_folder_whole_or_not_at_all(tmp_path) -> None:
    from avgen.atomic import atomic_dir

    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            tmp.mkdir()
            (tmp / "new.txt").write_text("half")
            raise RuntimeError("writing failed")
    assert [p.name for p in tmp_path.iterdir()] == ["model"] and (target / "old.txt").read_text() == "old"
    with atomic_dir(target) as tmp:
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
