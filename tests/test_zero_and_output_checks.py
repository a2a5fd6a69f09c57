"""Zero is not "the default": a zero length, size or step count is refused by name, and `avgen generate`
checks where it will write before it samples anything (issue 43, class 6 in part)."""

from __future__ import annotations

import pytest

from avgen.cli import main
from avgen.errors import ConfigError
from avgen.generate import main as generate_main
from avgen.pipeline import tiny_pipeline


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"seconds": 0}, "seconds"),
        ({"height": 0}, "height"),
        ({"width": 0}, "width"),
        ({"steps": 0}, "steps"),
    ],
)
def test_zero_values_are_refused_not_replaced(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        tiny_pipeline()("a red ball bounces", progress=False, **kw)


def test_generate_checks_the_output_path_before_sampling(tmp_path, monkeypatch) -> None:
    def no_model(*args, **kwargs):
        raise AssertionError("the pipeline must not be loaded before the output path is checked")

    monkeypatch.setattr("avgen.pipeline.AVPipeline.from_pretrained", no_model)
    with pytest.raises(ConfigError, match="is a folder"):
        generate_main(["a red ball bounces", "-o", str(tmp_path)])
    with pytest.raises(ConfigError, match="does not exist"):
        generate_main(["a red ball bounces", "-o", str(tmp_path / "missing" / "a.mp4")])
    (tmp_path / "a.mp4").write_bytes(b"")
    with pytest.raises(ConfigError, match="overwrite"):
        generate_main(["a red ball bounces", "-o", str(tmp_path / "a.mp4")])


def test_generate_refuses_a_zero_size(tmp_path, capsys) -> None:
    assert main(["generate", "a red ball bounces", "--size", "0x0", "-o", str(tmp_path / "b.mp4")]) == 2
    assert "height" in capsys.readouterr().err and not (tmp_path / "b.mp4").exists()
