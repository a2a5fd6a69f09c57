"""Caption variants: true captions with one attribute fewer, and the joint trainer's use of them."""

from __future__ import annotations

import pytest
import torch

from avgen.config import from_dict
from avgen.data.synth import make_sample
from avgen.data.synth.captions import ADJECTIVES, COLORS, caption_variants
from avgen.errors import ConfigError
from avgen.metrics.synth import parse_caption
from avgen.train.joint import JointTask
from avgen.train.joint_config import JointConfig


def test_variants_of_every_family_keep_colours_or_attributes_and_the_speech() -> None:
    seen = set()
    for seed in range(40):
        s = make_sample(seed, "test")
        variants = caption_variants(s.caption)
        seen.add(s.family)
        words = s.caption.split('"')[0].split()
        has_adjective = any(w in ADJECTIVES for w in words)
        has_colour = any(w in COLORS for w in words)
        assert len(variants) == has_adjective + has_colour, (s.caption, variants)
        for v in variants:
            assert v != s.caption and "  " not in v and v.split('"')[1:] == s.caption.split('"')[1:]
            assert " a o" not in v and " an g" not in v and not v.startswith(("a o", "an g"))
        if has_adjective:  # the first keeps the colours, names no attribute word
            kept = variants[0].split('"')[0].split()
            assert not any(w in ADJECTIVES for w in kept)
            assert parse_caption(variants[0])["colors"] == parse_caption(s.caption)["colors"]
        if has_colour:  # the last names no colour
            assert parse_caption(variants[-1])["colors"] == []
    assert seen == {"bounce", "talk", "keys", "ambience"}
    assert caption_variants("a big white ball bounces slowly") == [
        "a white ball bounces slowly",
        "a big ball bounces slowly",
    ]
    assert caption_variants('an oval green face says "a big red bus"') == [
        'a green face says "a big red bus"',
        'an oval face says "a big red bus"',
    ]
    assert caption_variants("a small orange ball bounces quickly")[0] == "an orange ball bounces quickly"
    assert caption_variants("a dog runs") == []


CFG = {
    "batch_size": 4,
    "caption_dropout": 0.0,
    "val_batches": 0,
    "model": {"preset": "tiny", "video_codec": "tiny", "audio_codec": "tiny", "text_encoder": "tiny"},
    "data": {"n": 8, "val_n": 0, "size": [32, 32], "duration": 1.0, "families": {"bounce": 1.0}},
}


def _captions_and_loss(variants: float) -> tuple[list[str], float]:
    task = JointTask(from_dict(JointConfig, {**CFG, "caption_variants": variants}))
    used: list[str] = []
    encode = task._text
    task._text = lambda captions, timelines=None: used.extend(captions) or encode(captions, timelines)  # type: ignore[method-assign]
    loss, _ = task.loss(task.model, {"indices": list(range(8)), "slots": list(range(8))}, step=0)
    originals = task.train_set.captions
    assert all(u == o or u in task.variants[o] for u, o in zip(used, originals))
    return [u for u, o in zip(used, originals) if u != o], float(loss.detach())


def test_trainer_swaps_captions_for_variants_and_leaves_the_stream_alone_when_off() -> None:
    torch.manual_seed(0)
    swapped, _ = _captions_and_loss(1.0)
    assert len(swapped) == 8  # every bounce caption has variants, and every one was swapped
    none, loss_off = _captions_and_loss(0.0)
    assert none == []
    base = JointTask(from_dict(JointConfig, CFG))
    loss_default, _ = base.loss(base.model, {"indices": list(range(8)), "slots": list(range(8))}, step=0)
    assert float(loss_default.detach()) == loss_off
    with pytest.raises(ConfigError, match="caption_variants"):
        from_dict(JointConfig, {**CFG, "caption_variants": 1.5})


def test_drops_pick_which_variants_and_unknown_ones_are_refused() -> None:
    caption = "a big white ball bounces slowly"
    assert caption_variants(caption, ("adjectives",)) == ["a white ball bounces slowly"]
    assert caption_variants(caption, ("colours",)) == ["a big ball bounces slowly"]
    assert caption_variants(caption, ("colours", "adjectives")) == caption_variants(caption)
    with pytest.raises(ValueError, match="sizes"):
        caption_variants(caption, ("sizes",))


def test_trainer_with_colour_keeping_variants_never_drops_a_colour() -> None:
    cfg = {**CFG, "caption_variants": 1.0, "caption_variant_drops": ["adjectives"]}
    task = JointTask(from_dict(JointConfig, cfg))
    used: list[str] = []
    encode = task._text
    task._text = lambda captions, timelines=None: used.extend(captions) or encode(captions, timelines)  # type: ignore[method-assign]
    task.loss(task.model, {"indices": list(range(8)), "slots": list(range(8))}, step=0)
    for u, o in zip(used, task.train_set.captions, strict=True):
        assert u != o and not any(w in ADJECTIVES for w in u.split())
        assert parse_caption(u)["colors"] == parse_caption(o)["colors"]
    for bad in (["sizes"], [], "adjectives"):
        with pytest.raises(ConfigError, match="caption_variant_drops"):
            from_dict(JointConfig, {**cfg, "caption_variant_drops": bad})
