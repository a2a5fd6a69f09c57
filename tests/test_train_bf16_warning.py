"""bf16 autocast on a CPU without bf16 instructions is emulated and far slower than fp32: the loop says so."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from avgen.train import precision as train_precision
from avgen.train.precision import cpu_has_bf16

FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 {extra}\nbogomips\t: 4890.82\n"


@pytest.mark.parametrize(
    ("extra", "expected"), [("avx512f avx512_bf16", True), ("amx_bf16 amx_tile", True), ("avx512f", False)]
)
def test_cpu_has_bf16_reads_the_flags(tmp_path: Path, extra: str, expected: bool) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(FLAGS.format(extra=extra) * 2)
    assert cpu_has_bf16(info) is expected


def test_cpu_has_bf16_unknown_without_flags(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: some arm core\n")
    assert cpu_has_bf16(info) is None
    assert cpu_has_bf16(tmp_path / "missing") is None


@pytest.mark.parametrize("has", [False, True, None])
@pytest.mark.parametrize("precision", ["bf16", "fp32", "auto"])
def test_warns_only_for_bf16_on_a_cpu_known_to_lack_it(
    monkeypatch: pytest.MonkeyPatch, has: bool | None, precision: str
) -> None:
    monkeypatch.setattr(train_precision, "cpu_has_bf16", lambda: has)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_precision.warn_slow_bf16(torch.device("cpu"), precision)
    slow = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    if has is False and precision == "bf16":
        assert len(slow) == 1 and "loop.precision=fp32" in str(slow[0].message)
    else:
        assert not slow


def test_no_warning_on_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train_precision, "cpu_has_bf16", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train_precision.warn_slow_bf16(torch.device("cuda"), "bf16")
