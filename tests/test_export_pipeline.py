"""`avgen model export`: a pipeline copied with float16 weights loads, matches, and is about half the size."""

from __future__ import annotations

import pytest
import torch

from avgen.errors import CheckpointError
from avgen.export import export_pipeline
from avgen.model_cli import main as model_cli
from avgen.pipeline import AVPipeline, tiny_pipeline


def _size(folder) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*.safetensors"))


def test_export_halves_weights_and_loads_close(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tiny_pipeline().save_pretrained(tmp_path / "src")
    card = tmp_path / "card.md"
    card.write_text("# tiny\n")
    assert model_cli(["export", str(src), str(tmp_path / "ship"), "--card", str(card)]) == 0
    assert "MB of weights" in capsys.readouterr().out
    ship = tmp_path / "ship"
    assert (ship / "MODEL_CARD.md").read_text() == "# tiny\n"
    assert 0.45 < _size(ship) / _size(src) < 0.6
    a, b = AVPipeline.from_pretrained(src), AVPipeline.from_pretrained(ship)
    for p, q in zip(a.dit.parameters(), b.dit.parameters(), strict=True):
        assert q.dtype == torch.float32 and torch.allclose(p, q, rtol=1e-3, atol=1e-4)
    x = a("a red ball bounces", seconds=0.5, height=32, width=32, steps=2, progress=False)
    y = b("a red ball bounces", seconds=0.5, height=32, width=32, steps=2, progress=False)
    assert x.video.shape == y.video.shape and abs(x.audio - y.audio).max() < 0.05
    with pytest.raises(CheckpointError, match="exists"):
        export_pipeline(src, ship)
    with pytest.raises(CheckpointError, match="card"):
        export_pipeline(src, tmp_path / "other", card=tmp_path / "missing.md")
    assert not (tmp_path / "other").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_export_swaps_in_a_fine_tuned_decoder_only(tmp_path) -> None:
    pipe = tiny_pipeline()
    src = pipe.save_pretrained(tmp_path / "src")
    codec = pipe.video_codec
    with torch.no_grad():
        for name, p in codec.named_parameters():
            if name.startswith("decoder."):
                p.add_(0.01)
    codec.save_pretrained(tmp_path / "decoder")
    assert (
        model_cli(["export", str(src), str(tmp_path / "ship"), "--video-decoder", str(tmp_path / "decoder")])
        == 0
    )
    shipped = AVPipeline.from_pretrained(tmp_path / "ship").video_codec.state_dict()
    original = AVPipeline.from_pretrained(src).video_codec.state_dict()
    for name, tensor in codec.state_dict().items():
        assert torch.allclose(shipped[name], tensor.float(), atol=1e-3)  # float16 storage
        if name.startswith("decoder.") and tensor.is_floating_point():
            assert not torch.allclose(shipped[name], original[name], atol=1e-3)

    with torch.no_grad():
        next(p for n, p in codec.named_parameters() if n.startswith("encoder.")).add_(0.01)
    codec.save_pretrained(tmp_path / "encoder")
    with pytest.raises(CheckpointError, match="encoder or latent stats differ"):
        export_pipeline(src, tmp_path / "bad", video_decoder=tmp_path / "encoder")
    pipe.audio_codec.save_pretrained(tmp_path / "audio")
    with pytest.raises(CheckpointError, match="architecture"):
        export_pipeline(src, tmp_path / "bad", video_decoder=tmp_path / "audio")
    assert not (tmp_path / "bad").exists()
