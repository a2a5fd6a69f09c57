"""Loading never touches the network (issue 43): every path is a local folder, a missing part is a
CheckpointError naming the folder and the file, and a hub id is fetched only as ``hf://owner/name`` with
``allow_download=True``. The socket layer is patched to record and refuse any connection attempt."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from avgen.codecs import EncodecCodec, load_codec
from avgen.codecs.hub import hub_id
from avgen.codecs.tiny import tiny_audio_codec
from avgen.errors import CheckpointError
from avgen.model.text import TextEncoder, TextEncoderConfig
from avgen.pipeline import AVPipeline, tiny_pipeline


class NetworkAttempt(OSError):
    """Raised by the patched socket layer (an OSError, as a real refusal would be)."""


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Patch every way out (DNS, connect, the hub client) to record the attempt and fail."""
    seen: list[str] = []

    def refuse(name: str):
        def call(*args, **kwargs):
            seen.append(f"{name}{args[:2]!r}")
            raise NetworkAttempt(f"network access attempted: {name}")

        return call

    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect_ex"))
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse("snapshot_download"))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse("hf_hub_download"))
    return seen


@pytest.fixture(params=["online", "offline"])
def hub_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both with HF_HUB_OFFLINE unset (where a hub lookup would go out) and set."""
    if request.param == "online":
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    else:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return request.param


@pytest.fixture(scope="module")
def saved_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("saved") / "pipe"
    tiny_pipeline().save_pretrained(path)
    return path


# (what is deleted, the error it must give, with "pipe" the relative pipeline folder)
MISSING = [
    ("pipeline.json", r"pipe/pipeline\.json: not found"),
    ("dit/config.json", r"pipe/dit/config\.json: not found"),
    ("dit", r"pipe/dit/config\.json: not found"),
    ("video_codec", r"pipe/video_codec: no such codec folder"),
    ("video_codec/config.json", r"pipe/video_codec: has no config\.json"),
    ("audio_codec", r"pipe/audio_codec: no such codec folder"),
    ("audio_codec/config.json", r"pipe/audio_codec: has no config\.json"),
    ("audio_codec/model.safetensors", r"pipe/audio_codec/model\.safetensors: weights file not found"),
    ("text_encoder/config.json", r"pipe/text_encoder: has no config\.json"),
    ("text_encoder/model.safetensors", r"pipe/text_encoder: has no model\.safetensors"),
    ("text_encoder", r"pipe/text_encoder: missing; the DiT reads 32-wide text states"),
]


@pytest.mark.parametrize(("missing", "error"), MISSING, ids=[m for m, _ in MISSING])
def test_missing_part_is_a_local_error(
    saved_pipeline, missing, error, attempts, hub_env, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(saved_pipeline, "pipe")  # a relative "pipe/audio_codec" is shaped like a hub id
    gone = Path("pipe") / missing
    shutil.rmtree(gone) if gone.is_dir() else gone.unlink()
    with pytest.raises(CheckpointError, match=error) as info:
        AVPipeline.from_pretrained("pipe")
    assert attempts == []
    assert "hf download" not in str(info.value)  # no download hint for a local folder


def test_relative_pipeline_still_loads(saved_pipeline, attempts, hub_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(saved_pipeline, "pipe")
    pipe = AVPipeline.from_pretrained("pipe")
    assert pipe.audio_codec.latent_channels == tiny_audio_codec().latent_channels
    assert attempts == []


@pytest.mark.parametrize("source", ["facebook/encodec_24khz", Path("facebook/encodec_24khz")])
def test_hub_shaped_string_is_a_local_path(source, attempts, hub_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for load in (load_codec, EncodecCodec.from_pretrained):
        with pytest.raises(CheckpointError, match=r"facebook/encodec_24khz: no such codec folder") as info:
            load(source)
        assert str(tmp_path / "facebook" / "encodec_24khz") in str(info.value)  # where it looked
        assert "hf://facebook/encodec_24khz" in str(info.value) and "allow_download=True" in str(info.value)
    assert attempts == []


def test_local_folder_named_like_a_hub_id_loads(attempts, hub_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    codec = tiny_audio_codec()
    codec.save_pretrained(Path("facebook/encodec_24khz"))
    assert load_codec("facebook/encodec_24khz").codec_id == codec.codec_id
    assert attempts == []


def test_hub_id_needs_allow_download(attempts, hub_env):
    for load in (load_codec, EncodecCodec.from_pretrained):
        with pytest.raises(CheckpointError, match=r"hf://facebook/encodec_24khz: .*downloads are off"):
            load("hf://facebook/encodec_24khz")
    assert attempts == []
    with pytest.raises(CheckpointError, match="not a hub id"):
        hub_id("hf://no-owner")
    assert hub_id("facebook/encodec_24khz") is None and hub_id(Path("hf://a/b")) is None


def test_allowed_hub_id_is_the_only_way_out(attempts, monkeypatch):
    """With consent the hub is tried (here refused by the patched socket): the one path that may go out."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(CheckpointError, match="unreachable"):
        load_codec("hf://someone/encodec-test", allow_download=True)
    assert len(attempts) == 1 and attempts[0].startswith("create_connection")


def test_hf_encodec_folder_without_weights_fails_before_transformers(attempts, tmp_path, monkeypatch):
    import transformers

    def must_not_run(*args, **kwargs):
        raise AssertionError("transformers was called before the folder was checked")

    monkeypatch.setattr(transformers.EncodecModel, "from_pretrained", must_not_run)
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text(json.dumps({"model_type": "encodec"}))
    with pytest.raises(CheckpointError, match=r"hf: has no model\.safetensors"):
        load_codec(tmp_path / "hf")
    assert attempts == []


@pytest.mark.parametrize("path", ["google/flan-t5-base", "~/no-such-avgen-text-encoder"])
def test_text_encoder_path_is_local(path, attempts, hub_env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for load in (TextEncoder.from_pretrained, lambda p: TextEncoder.from_config(TextEncoderConfig(path=p))):
        with pytest.raises(
            CheckpointError, match=rf"{path}: not a local text encoder folder \(no such folder"
        ):
            load(path)
    assert attempts == []
