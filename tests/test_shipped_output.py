"""The shipped avgen-tiny's output for fixed prompts and seeds is pinned bit for bit.

Any refactor of the pipeline, the samplers, the DiT, the codecs or the text path must leave what a user
gets from ``AVPipeline.from_pretrained("avgen-tiny")`` unchanged; a change that is meant to change it
updates these hashes in the same commit and says why. One thread, since a matmul's summation order (and so
its last bits) depends on the thread count; and one set of hashes per CPU kind, since the kernels torch
picks (AVX2 or AVX-512, with or without bf16 instructions) sum in different orders too. A CPU kind with no
hashes here skips, naming itself.
"""

from __future__ import annotations

import hashlib

import pytest
import torch

from avgen.pipeline import AVPipeline
from avgen.train.precision import cpu_has_bf16

# sha256 prefixes of the uint8 frames / float32 audio bytes, one thread, seeds as below.
# The text states are the shipped int8 MiniLM pack's (avgen/weights/minilm-l6).
# One entry per CPU kind the shipped weights were hashed on; another kind (e.g. "AVX512+bf16") skips until its
# hashes are added here (this test's calls, one thread).
PINNED = {
    "AVX2": {
        "t2av_ball": ("8e46cd75b8c63c92", "b5fbb3793fe294ca"),
        "t2av_face": ("0bcbb592b97e93f1", "423d6e9ae5492421"),
        "a2v": "ea7ad71caadd1555",
        "v2a": "0b66fb4d14b60592",
    },
}
BALL = "a big red ball bounces on a blue floor"
FACE = 'a round green face says "see you soon"'
# BALL is no caption of its grammar: avgen-tiny's prompt_style reads it as "a big red ball bounces slowly".
RAW = {"rewrite_prompt": False}


def cpu_kind() -> str:
    """ATen's kernel level (``AVX2``, ``AVX512``, ...) and ``+bf16`` where the CPU has bf16 instructions."""
    return torch.backends.cpu.get_cpu_capability() + ("+bf16" if cpu_has_bf16() else "")


def _digest(a) -> str:
    return hashlib.sha256(a.tobytes()).hexdigest()[:16]


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_shipped_model_output_is_bit_identical(one_thread: None) -> None:
    kind = cpu_kind()
    if kind not in PINNED:
        pytest.skip(f"no output pinned for a {kind} CPU; add this CPU kind's hashes to PINNED")
    expected = PINNED[kind]
    pipe = AVPipeline.from_pretrained("avgen-tiny")
    ball, face = pipe([BALL, FACE], seed=7, progress=False, **RAW)
    assert (_digest(ball.video), _digest(ball.audio)) == expected["t2av_ball"]
    assert (_digest(face.video), _digest(face.audio)) == expected["t2av_face"]
    a2v = pipe('a round green face says "hello"', audio=face, seed=3, progress=False)
    assert _digest(a2v.video) == expected["a2v"]
    v2a = pipe(BALL, video=ball, seed=3, progress=False, **RAW)
    assert _digest(v2a.audio) == expected["v2a"]
