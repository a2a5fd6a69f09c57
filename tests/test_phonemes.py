"""Timed phonemes: the timeline type, the DiT's phoneme reader, guidance, training batches, the pipeline."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from avgen.config import from_dict
from avgen.data.speech_timing import quoted_speech, timeline_from_events
from avgen.diffusion.guidance import guided_velocity
from avgen.errors import ConfigError
from avgen.model.dit import JointDiT, dit_config
from avgen.model.phonemes import OTHER, PAD, PHONEMES, Phonemes, phoneme_id
from avgen.model.text import TextStates
from avgen.pipeline import tiny_pipeline
from avgen.tokens import ShapeError, TokenSpec, pack
from avgen.train.joint import JointTask
from avgen.train.joint_config import JointConfig
from avgen.train.joint_parts import grow_dit

SPEC = TokenSpec(video_channels=4, audio_channels=6)
HELLO = [(0.1, 0.2, "h"), (0.2, 0.3, "@"), (0.3, 0.35, "_"), (0.35, 0.5, "l"), (0.5, 0.7, "'oU")]


def _dit(phonemes: bool = True, window: float = 0.25, seed: int = 0, active: bool = True) -> JointDiT:
    cfg = dit_config("tiny", tokens=SPEC, text_dim=32, phonemes=phonemes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = JointDiT(replace(cfg, phoneme_window=window))
        if active:  # live zero-initialised layers, as after training
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def _inputs(offset: float = 0.0, batch: int = 2) -> tuple:
    g = torch.Generator().manual_seed(0)
    v = torch.randn(batch, 4, 4, 4, 4, generator=g)
    a = torch.randn(batch, 6, 20, generator=g)
    p = pack(SPEC, v, a, offset + torch.arange(4) * 0.25, offset + torch.arange(20) * 0.05)
    t = torch.rand(batch, generator=g)
    text = torch.randn(batch, 5, 32, generator=g)
    return p, t, text, torch.ones(batch, 5, dtype=torch.bool)


def _shifted(timeline: list, offset: float) -> list:
    return [(s + offset, e + offset, m) for s, e, m in timeline]


def test_timelines_become_padded_rows_without_pauses() -> None:
    ph = Phonemes.from_timelines([HELLO, []])
    assert ph.ids.shape == (2, 4) and ph.mask.tolist() == [[True] * 4, [False] * 4]
    assert ph.ids[0].tolist() == [phoneme_id(m) for m in ("h", "@", "l", "oU")]
    assert ph.stress[0].tolist() == [0, 0, 0, 1]  # 'oU: primary stress
    assert ph.start[0].tolist() == pytest.approx([0.1, 0.2, 0.35, 0.5])
    assert phoneme_id("t#") == phoneme_id("t") != OTHER and phoneme_id("'aI2") == PHONEMES.index("aI2")
    assert phoneme_id("Q!") == OTHER and PHONEMES[PAD] == "<pad>"
    with pytest.raises(ConfigError, match=r"phoneme 0 .*need finite start < end"):
        Phonemes.from_timelines([[(0.3, 0.2, "h")]])
    with pytest.raises(ConfigError, match="phoneme timelines for 1 prompts"):
        TextStates(torch.zeros(1, 2, 3), torch.ones(1, 2, dtype=torch.bool)).with_phonemes(ph)


def test_text_states_carry_phonemes_through_cat_and_repeat() -> None:
    states = TextStates(torch.zeros(1, 2, 3), torch.ones(1, 2, dtype=torch.bool))
    said = states.with_phonemes(Phonemes.from_timelines([HELLO]))
    both = TextStates.cat([said, states])  # a prompt and the empty prompt (guidance's two branches)
    assert both.phonemes is not None and both.phonemes.mask.sum(1).tolist() == [4, 0]
    assert TextStates.cat([states, states]).phonemes is None
    assert said.repeat(3).phonemes.ids.shape == (3, 4)


def test_a_phoneme_reader_starts_as_a_no_op_and_grows_onto_a_trained_dit() -> None:
    p, t, text, mask = _inputs()
    base = _dit(phonemes=False)
    grown = grow_dit(base, {"phonemes": True}, "base")
    added = set(grown.state_dict()) - set(base.state_dict())
    assert added and all(".speech." in k or ".norm_speech." in k or "phoneme_embed." in k for k in added)
    ph = Phonemes.from_timelines([HELLO, HELLO])
    with torch.no_grad():
        before = base(p.tokens, t, p.positions, p.modality, text, mask)
        after = grown(p.tokens, t, p.positions, p.modality, text, mask, phonemes=ph)
    assert torch.allclose(before, after, atol=1e-6)
    with pytest.raises(ConfigError, match="phoneme_window must be >= 0"):
        dit_config("tiny", phoneme_window=-1.0)


def test_what_is_said_changes_the_output_and_only_where_it_is_said() -> None:
    p, t, text, mask = _inputs()
    model = _dit()
    run = lambda ph: model(p.tokens, t, p.positions, p.modality, text, mask, phonemes=ph)  # noqa: E731
    with torch.no_grad():
        said = run(Phonemes.from_timelines([HELLO, []]))
        other = run(Phonemes.from_timelines([[(s, e, "m") for s, e, _ in HELLO], []]))
        silent = run(None)
    assert (said[0] - other[0]).abs().max() > 1e-3  # which phonemes matters
    assert torch.equal(said[1], silent[1])  # a row that says nothing is the same as no phonemes at all
    with pytest.raises(ShapeError, match="phonemes have 1 rows; expected 2"):
        run(Phonemes.from_timelines([HELLO]))


def test_phonemes_sit_on_the_tokens_time_axis() -> None:
    """Shifting the clip and its phonemes together in time changes nothing (relative RoPE and window);
    shifting the phonemes alone does."""
    model = _dit(window=0.0)
    p0, t, text, mask = _inputs()
    p1, *_ = _inputs(offset=3.0)
    with torch.no_grad():
        a = model(
            p0.tokens, t, p0.positions, p0.modality, text, mask, phonemes=Phonemes.from_timelines([HELLO] * 2)
        )
        b = model(
            p1.tokens,
            t,
            p1.positions,
            p1.modality,
            text,
            mask,
            phonemes=Phonemes.from_timelines([_shifted(HELLO, 3.0)] * 2),
        )
        c = model(
            p0.tokens,
            t,
            p0.positions,
            p0.modality,
            text,
            mask,
            phonemes=Phonemes.from_timelines([_shifted(HELLO, 0.4)] * 2),
        )
    assert torch.allclose(a, b, atol=1e-4)
    assert (a - c).abs().max() > 1e-3


def test_the_window_keeps_far_phonemes_out() -> None:
    """With one block and a window, a phoneme far from every token changes nothing."""
    model = _dit(window=0.1)
    model.blocks = model.blocks[:1]
    p, t, text, mask = _inputs()  # tokens span 0..0.95 s
    far = [(5.0, 5.1, "h")]
    with torch.no_grad():
        none = model(p.tokens, t, p.positions, p.modality, text, mask)
        distant = model(
            p.tokens, t, p.positions, p.modality, text, mask, phonemes=Phonemes.from_timelines([far] * 2)
        )
        near = model(
            p.tokens, t, p.positions, p.modality, text, mask, phonemes=Phonemes.from_timelines([HELLO] * 2)
        )
    assert torch.equal(none, distant) and not torch.equal(none, near)


def test_guidance_gives_the_conditional_branch_its_phonemes_and_the_empty_prompt_none() -> None:
    p, t, text, mask = _inputs()
    seen: list[Phonemes] = []

    class Spy(torch.nn.Module):
        def forward(self, x, t, positions, modality, states, m, phonemes=None):
            seen.append(phonemes)
            return torch.zeros_like(x)

    cond = TextStates(text, mask).with_phonemes(Phonemes.from_timelines([HELLO, HELLO]))
    uncond = TextStates(text[:1], mask[:1])
    velocity = guided_velocity(Spy(), p.positions, p.modality, cond, uncond, video_guidance=3.0)
    velocity(p.tokens, t)
    assert seen[0].mask.sum(1).tolist() == [4, 4, 0, 0]  # conditional rows, then the unconditional ones
    seen.clear()
    guided_velocity(Spy(), p.positions, p.modality, TextStates(text, mask))(p.tokens, t)
    assert seen == [None]  # text without phonemes: the model is called as before


def test_synth_event_timelines_end_each_phoneme_at_the_next_mark() -> None:
    events = [
        {"kind": "word", "time": 0.1, "word": "hi"},
        {"kind": "phoneme", "time": 0.1, "phoneme": "h"},
        {"kind": "phoneme", "time": 0.18, "phoneme": "'aI"},
        {"kind": "pause", "time": 0.4, "phoneme": "_"},
        {"kind": "phoneme", "time": 0.5, "phoneme": "n"},
    ]
    assert timeline_from_events(events, 0.62) == [(0.1, 0.18, "h"), (0.18, 0.4, "'aI"), (0.5, 0.62, "n")]
    assert quoted_speech('a red face says "good morning" and "bye"') == "good morning bye"
    assert quoted_speech("a red ball bounces") is None


def test_trainer_feeds_phonemes_of_talk_clips_and_none_for_dropped_captions() -> None:
    pytest.importorskip("espeakng_loader")
    cfg = {
        "batch_size": 4,
        "caption_dropout": 0.0,
        "val_batches": 0,
        "model": {
            "preset": "tiny",
            "video_codec": "tiny",
            "audio_codec": "tiny",
            "text_encoder": "tiny",
            "dit": {"phonemes": True},
        },
        "data": {"n": 4, "val_n": 0, "size": [32, 32], "duration": 1.0, "families": {"talk": 1.0}},
    }
    task = JointTask(from_dict(JointConfig, cfg))
    timelines = task.train_set.phonemes
    assert timelines is not None and all(len(tl) > 3 for tl in timelines)
    assert all(0 <= s < e <= 1.0 + 0.2 for tl in timelines for s, e, _ in tl)
    used: list = []
    encode = task._text
    task._text = lambda captions, tl=None: used.append(tl) or encode(captions, tl)  # type: ignore[method-assign]
    with torch.no_grad():  # live zero-initialised layers, so gradients reach every block
        for p in task.model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    loss, _ = task.loss(task.model, {"indices": [0, 1, 2, 3], "slots": [0, 1, 2, 3]}, step=0)
    assert torch.isfinite(loss) and used[0] == timelines
    loss.backward()
    assert task.model.blocks[0].speech.proj.weight.grad.abs().sum() > 0  # the reader learns
    assert task.model.phoneme_embed.ids.weight.grad.abs().sum() > 0
    dropped = JointTask(from_dict(JointConfig, {**cfg, "caption_dropout": 1.0}))
    used.clear()
    encode = dropped._text
    dropped._text = lambda captions, tl=None: used.append(tl) or encode(captions, tl)  # type: ignore[method-assign]
    dropped.loss(dropped.model, {"indices": [0, 1, 2, 3], "slots": [0, 1, 2, 3]}, step=0)
    assert used[0] == [[], [], [], []]


def test_pipeline_times_the_quoted_words_and_takes_a_given_timeline() -> None:
    pytest.importorskip("espeakng_loader")
    pipe = tiny_pipeline()
    pipe.dit = grow_dit(pipe.dit, {"phonemes": True}, "tiny").eval()
    seen: list[Phonemes | None] = []
    forward = pipe.dit.forward

    def spy(*args, phonemes=None, **kwargs):
        seen.append(phonemes)
        return forward(*args, phonemes=phonemes, **kwargs)

    pipe.dit.forward = spy  # type: ignore[method-assign]
    clip = pipe('a round red face says "good morning"', seconds=2.0, progress=False, speech_start=0.5)
    assert clip.video is not None
    ph = seen[0]
    real = ph.mask[0]
    assert real.sum() >= 5 and float(ph.start[0][real].min()) == pytest.approx(0.5)
    assert float(ph.end[0][real].max()) < 2.0
    seen.clear()
    pipe(["a", "b"], seconds=1.0, progress=False, phonemes=[HELLO, []])
    assert seen[0].mask.sum(1).tolist()[:2] == [4, 0]
    with pytest.raises(ConfigError, match="speech_start must be in"):
        pipe('a face says "hi"', seconds=1.0, progress=False, speech_start=1.5)
    with pytest.raises(ConfigError, match=r"past the 0\.5 s clip"):
        pipe(
            'a face says "thank you very much for the lovely day"',
            seconds=0.5,
            progress=False,
            speech_rate=120,
        )
