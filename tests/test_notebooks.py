"""The example notebooks run top to bottom (nbclient, a real ipykernel) with small settings, so they never rot.

Each notebook's ``parameters`` cell keeps its own source and gets the test's settings appended (the way
papermill injects parameters): a random tiny model saved in-process, two sampler steps, short clips, outputs
in a temp folder. Every overridden name must be a knob the cell already defines, so a renamed knob fails here
instead of being silently ignored. The kernel is a kernelspec written for this interpreter (the venv's), with
HF_HUB_OFFLINE=1 and one thread.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebooks extra: pip install 'avgen[notebooks]'")
pytest.importorskip("nbclient", reason="the notebooks extra: pip install 'avgen[notebooks]'")
pytest.importorskip("ipykernel", reason="the notebooks extra: pip install 'avgen[notebooks]'")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NOTEBOOKS = ("quickstart.ipynb", "train_tiny.ipynb", "dub_and_foley.ipynb")
KERNEL = "avgen-test-python"
CELL_TIMEOUT = 240  # seconds per cell; each takes a few seconds on an idle 2-core CPU


def _read(name: str) -> Any:
    return nbformat.read(EXAMPLES / name, as_version=4)


def _parameters_cell(nb: Any) -> Any:
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    return cells[0]


def _knobs(source: str) -> dict[str, Any]:
    """name -> value of each plain ``NAME = literal`` assignment of a parameters cell."""
    knobs = {}
    for node in ast.parse(source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.unparse(node)
        (target,) = node.targets
        assert isinstance(target, ast.Name) and target.id.isupper(), ast.unparse(node)
        knobs[target.id] = ast.literal_eval(node.value)
    return knobs


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_clean(name):
    """nbformat 4, kernel python3, a markdown title first, then the one parameters cell of plain literals
    (MODEL, OUT_DIR, ...), and no outputs or execution counts committed."""
    nb = _read(name)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert nb.cells[1] is _parameters_cell(nb) and nb.cells[1].cell_type == "code"
    knobs = _knobs(nb.cells[1].source)
    assert knobs["OUT_DIR"] == "out/notebooks" and knobs["DEVICE"] == "auto"
    assert knobs["MODEL"] == "avgen-tiny"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs not cleared"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from avgen.pipeline import tiny_pipeline

    return tiny_pipeline().save_pretrained(tmp_path_factory.mktemp("nb_model") / "model")


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory) -> Any:
    """A KernelSpecManager that knows one kernel: ipykernel on this interpreter, offline, one thread."""
    from jupyter_client.kernelspec import KernelSpecManager

    folder = tmp_path_factory.mktemp("kernels")
    (folder / KERNEL).mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "avgen tests",
        "language": "python",
        "env": {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",  # what Jupyter uses
        },
    }
    (folder / KERNEL / "kernel.json").write_text(json.dumps(spec))
    return KernelSpecManager(kernel_dirs=[str(folder)])


def run_notebook(name: str, settings: dict[str, Any], cwd: Path, kernel_specs: Any) -> Any:
    """Execute ``name`` with ``settings`` appended to its parameters cell; returns the executed notebook
    (nbclient raises CellExecutionError, with the cell and its traceback, if any cell fails)."""
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = _read(name)
    cell = _parameters_cell(nb)
    unknown = set(settings) - set(_knobs(cell.source))
    assert not unknown, f"{name}: the parameters cell has no {sorted(unknown)}"
    lines = "\n".join(f"{k} = {v!r}" for k, v in settings.items())
    cell.source = f"{cell.source}\n\n# injected by tests/test_notebooks.py\n{lines}\n"
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=kernel_specs)
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def _embedded_videos(nb: Any) -> int:
    """How many outputs embed an MP4 as base64 (the inline player)."""
    return sum(
        "data:video/mp4;base64," in str(out.get("data", {}).get("text/html", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )


def _assert_av(path: Path) -> Any:
    """The MP4 exists and reads back with both streams."""
    from avgen.io import read_av

    assert path.is_file(), path
    clip = read_av(path, streams="av")
    assert clip.num_frames >= 3 and clip.num_samples > 0
    return clip


def _assert_png(path: Path) -> None:
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path


def test_quickstart_runs(model_dir, kernel_specs, tmp_path):
    out = tmp_path / "out"
    settings = {
        "MODEL": str(model_dir),
        "SECONDS": 1.0,
        "STEPS": 2,
        "KNOBS": [{"seed": 1}, {"audio_guidance": 1.0}],
        "OUT_DIR": str(out),
    }
    nb = run_notebook("quickstart.ipynb", settings, ROOT, kernel_specs)  # from the repository root
    for i in range(2):
        clip = _assert_av(out / f"quickstart_{i}.mp4")
        assert clip.duration == pytest.approx(1.0, abs=0.1)
        _assert_png(out / f"quickstart_{i}.png")
    knob_clips = [_assert_av(out / f"quickstart_knob_{i}.mp4") for i in range(3)]
    assert not (knob_clips[0].video == knob_clips[1].video).all(), "another seed must give another clip"
    _assert_png(out / "quickstart_knobs.png")
    assert _embedded_videos(nb) == 5


def test_train_tiny_runs(model_dir, kernel_specs, tmp_path):
    out = tmp_path / "out"
    settings = {
        "MODEL": str(model_dir),
        "PRESET": "tiny",
        "DIT": {},
        "FAMILIES": {"talk": 1.0},  # short captions: the tiny character-level text encoder has 64 positions
        "N_CLIPS": 4,
        "VAL_CLIPS": 2,
        "SIZE": (32, 32),
        "BATCH_SIZE": 2,
        "TRAIN_STEPS": 3,
        "LOG_EVERY": 1,
        "STEPS": 2,
        "OUT_DIR": str(out),
    }
    nb = run_notebook("train_tiny.ipynb", settings, EXAMPLES, kernel_specs)  # from examples/
    run_dir = out / "train_tiny"
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]
    assert "val_loss" in records[-1]["final"]
    assert (run_dir / "pipeline" / "pipeline.json").is_file()
    assert (out / "train_tiny.yaml").is_file() and any((out / "latents").iterdir())
    _assert_png(out / "train_tiny_loss.png")
    clip = _assert_av(out / "train_tiny_sample.mp4")
    assert (clip.height, clip.width) == (32, 32)
    _assert_png(out / "train_tiny_sample.png")
    assert _embedded_videos(nb) == 1


def test_dub_and_foley_runs(model_dir, kernel_specs, tmp_path):
    from avgen.io import probe, read_av

    out = tmp_path / "out"
    settings = {"MODEL": str(model_dir), "SIZE": (32, 32), "STEPS": 2, "OUT_DIR": str(out)}
    nb = run_notebook("dub_and_foley.ipynb", settings, EXAMPLES, kernel_specs)
    speech = read_av(out / "speech.wav", streams="a")
    assert speech.audio_duration >= 2.0 and abs(speech.audio).max() > 0.05  # real speech, not silence
    dub = _assert_av(out / "dub.mp4")
    assert dub.audio_duration == pytest.approx(speech.audio_duration, abs=0.05)
    _assert_png(out / "dub.png")
    for name in ("silent_synth.mp4", "silent.mp4"):  # the synth frames written without sound; what is given
        assert [s["type"] for s in probe(out / name)["streams"]] == ["video"]
    foley = _assert_av(out / "foley.mp4")
    assert (foley.height, foley.width) == (32, 32) and foley.duration == pytest.approx(2.0, abs=0.1)
    _assert_png(out / "foley.png")
    _assert_png(out / "foley_impacts.png")
    assert _embedded_videos(nb) == 3


def test_dub_and_foley_runs_on_your_own_files(model_dir, kernel_specs, tmp_path):
    """SPEECH_WAV / SILENT_VIDEO given: stereo 44.1 kHz audio and a 30-fps landscape video with sound, both
    longer than MAX_SECONDS, are cut; the video is center-cropped and resized to SIZE, its sound ignored."""
    import numpy as np

    from avgen.clip import AVClip
    from avgen.io import read_av, write_av

    rng = np.random.default_rng(0)
    t = np.arange(3 * 44100) / 44100
    voice = (0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
    wav = write_av(tmp_path / "me.wav", AVClip(audio=np.stack([voice, 0.5 * voice]), sample_rate=44100))
    frames = rng.integers(0, 256, (90, 48, 80, 3), dtype=np.uint8)
    noise = (0.1 * rng.standard_normal((1, 3 * 16000))).astype(np.float32)
    video = write_av(tmp_path / "mine.mp4", AVClip(video=frames, fps=30, audio=noise, sample_rate=16000))
    out = tmp_path / "out"
    settings = {
        "MODEL": str(model_dir),
        "SPEECH_WAV": str(wav),
        "SILENT_VIDEO": str(video),
        "SIZE": (32, 32),
        "MAX_SECONDS": 1.5,
        "STEPS": 2,
        "OUT_DIR": str(out),
    }
    run_notebook("dub_and_foley.ipynb", settings, EXAMPLES, kernel_specs)
    assert not (out / "speech.wav").exists() and not (out / "silent_synth.mp4").exists()
    given = read_av(out / "silent.mp4", streams="any")  # cut, cropped and resized: what the model is given
    assert given.audio is None and (given.height, given.width, given.num_frames) == (32, 32, 45)
    dub = read_av(out / "dub.mp4", streams="av")
    assert (dub.channels, dub.sample_rate) == (2, 44100)
    assert dub.audio_duration == pytest.approx(1.5, abs=0.05)
    foley = _assert_av(out / "foley.mp4")
    assert (foley.height, foley.width, foley.fps, foley.num_frames) == (32, 32, 30, 45)
    _assert_png(out / "foley.png")
    assert not (out / "foley_impacts.png").exists()  # no ground truth for your own video
