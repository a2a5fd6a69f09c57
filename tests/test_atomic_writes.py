from __future__ import annotations

import pytest
import torch

from avgen.atomic import atomic_path, save_safetensors, write_json


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
