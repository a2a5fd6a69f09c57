"""transformers is optional (the ``hf`` extra): the default path never imports it, and loading a user's
Hugging Face folder without it is an error naming the folder and the extra."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from avgen.codecs import EncodecCodec, load_codec
from avgen.errors import CheckpointError, ConfigError
from avgen.model import TextEncoder, TextEncoderConfig, tiny_text_encoder

HF_EXTRA = "pip install 'avgen[hf]'"


@pytest.fixture
def no_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import transformers`` raises ImportError (a None entry in sys.modules), as when it is not installed."""
    for name in [m for m in sys.modules if m == "transformers" or m.startswith("transformers.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "transformers", None)


def _hf_folder(path: Path, config: dict) -> Path:
    """The smallest folder the loaders accept before they reach transformers: config.json + model.safetensors."""
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))
    save_file({"w": torch.zeros(1)}, str(path / "model.safetensors"))
    return path


def test_hf_text_encoder_folder_without_transformers(tmp_path: Path, no_transformers: None) -> None:
    folder = _hf_folder(tmp_path / "bert", {"model_type": "bert"})
    for load in (
        lambda: TextEncoder.from_pretrained(folder),
        lambda: TextEncoder.from_config(TextEncoderConfig(path=str(folder))),
    ):
        with pytest.raises(CheckpointError) as err:
            load()
        assert str(folder) in str(err.value) and HF_EXTRA in str(err.value)
        assert isinstance(err.value.__cause__, ImportError)
    with pytest.raises(ConfigError, match=r"tiny_text_encoder.*avgen\[hf\]"):
        tiny_text_encoder()


def test_hf_encodec_folder_without_transformers(tmp_path: Path, no_transformers: None) -> None:
    folder = _hf_folder(tmp_path / "encodec", {"model_type": "encodec"})
    for load in (lambda: EncodecCodec.from_pretrained(folder), lambda: load_codec(folder)):
        with pytest.raises(CheckpointError) as err:
            load()
        assert str(folder) in str(err.value) and HF_EXTRA in str(err.value)
        assert "EnCodec" in str(err.value)


def test_default_path_never_imports_transformers() -> None:
    code = (
        "import sys, avgen, avgen.cli\n"
        "from avgen.pipeline import AVPipeline\n"
        "AVPipeline.from_pretrained('avgen-tiny')\n"
        "print('transformers' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout
