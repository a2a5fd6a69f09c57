"""rewrite_prompt: user prompts read as avgen-synth captions; captions of the grammar unchanged; other prompts
left alone; the pipeline's prompt_style, its rewrite_prompt switch, its metadata and the --raw-prompt flag."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import re

import numpy as np
import pytest

from avgen.cli import main
from avgen.data.synth import synonyms
from avgen.data.synth.bounce import ADVERB
from avgen.data.synth.bounce import _caption as bounce_caption
from avgen.data.synth.captions import (
    BACKGROUNDS,
    COLORS,
    HELD_OUT,
    PACES,
    RAIN,
    SHAPES,
    SIZES,
    pairs,
    phrases,
)
from avgen.data.synth.generate import make_sample
from avgen.data.synth.rewrite import (
    BACKDROP_ORDER,
    COLOUR_ORDER,
    PACE_ORDER,
    SHAPE_ORDER,
    SIZE_ORDER,
    STRENGTH_ORDER,
    rewrite_prompt,
)
from avgen.data.synth.spec import SynthConfig
from avgen.errors import ConfigError
from avgen.io import read_av
from avgen.pipeline import AVPipeline, tiny_pipeline
from avgen.pipeline_config import PipelineConfig, config_from_json, shipped_path

SPLITS = ("train", "val", "test")

# (prompt in a user's words, the caption it is read as)
EXAMPLES = [
    ("a red ball bouncing on the ground", "a medium red ball bounces slowly"),
    ("red ball bounces", "a medium red ball bounces slowly"),
    ('a green face saying "see you soon"', 'a round green face says "see you soon"'),
    ("rain on a black background", "heavy rain falls against a black background"),
    ("a melody on five blue keys", "five blue bars play a slow melody"),
    # bounce
    ("A big red ball bounces on a blue floor", "a big red ball bounces slowly"),
    ("a tiny violet sphere drops fast on a navy floor", "a small purple ball bounces quickly"),
    ("a large ball bouncing slowly", "a big blue ball bounces slowly"),
    ("two balls bouncing quickly", "two medium blue balls bounce quickly"),
    ("3 little white balls bounce rapidly", "three small white balls bounce quickly"),
    ("a couple of green balls hopping around", "two medium green balls bounce slowly"),
    ("a pair of tiny yellow balls bouncing fast", "two small yellow balls bounce quickly"),
    ("three huge magenta balls bouncing rapidly", "three big pink balls bounce quickly"),
    ("a red ball and a blue ball bouncing slowly", "a medium red ball and a medium blue ball bounce slowly"),
    ("red and blue balls", "a medium red ball and a medium blue ball bounce slowly"),
    ("a big and a small ball", "a big blue ball and a small blue ball bounce slowly"),
    ("a bouncing ball", "a medium blue ball bounces slowly"),
    ("a pink ball", "a small pink ball bounces slowly"),  # medium pink is held out for the test split
    ("a huge purple ball bounces", "a big purple ball bounces slowly"),  # held out, but asked for
    ("5 orange spheres bounce", "three medium orange balls bounce slowly"),
    ("a small white ball drops onto a cream floor", "a small white ball bounces slowly"),
    (
        "a medium-sized crimson orb bouncing quickly against a black background",
        "a medium red ball bounces quickly",
    ),
    ("a ball bouncing in the rain", "a medium blue ball bounces slowly"),
    ("the ball's colour is red", "a medium red ball bounces slowly"),
    # talk
    ('A square yellow face says "Hello, world!"', 'a square yellow face says "hello world"'),
    ("a happy man says 'good night'", 'a round blue face says "good night"'),
    ('an egg-shaped cyan face tells "where is my hat"', 'an oval blue face says "where is my hat"'),
    ('a round face says "i love music" on black', 'a round blue face says "i love music"'),
    ('a character speaking "hello" and "goodbye"', 'a round blue face says "hello goodbye"'),
    ('"good morning"', 'a round blue face says "good morning"'),
    ('a red mouth says "yes please"', 'a round red face says "yes please"'),
    (
        "a circular magenta head speaking “thank you very much”",
        'a round pink face says "thank you very much"',
    ),
    ('a person with a square grey face says "how are you"', 'a square blue face says "how are you"'),
    ("a face talking", "a round blue face says"),  # nothing quoted: no phrase
    ("a face says hello", "a round blue face says"),  # unquoted words are not taken for speech
    # keys
    ("a quick melody on 6 violet xylophone bars", "six purple bars play a quick melody"),
    ("slow piano music", "five blue bars play a slow melody"),
    ("a fast song on three green keys", "four green bars play a quick melody"),
    ("a glockenspiel playing slowly", "five blue bars play a slow melody"),
    ("twelve keys play", "seven blue bars play a slow melody"),
    ("music on seven white keys", "seven white bars play a slow melody"),
    ("a xylophone playing a fast tune", "five blue bars play a quick melody"),
    ("four lavender bars play a lively tune", "four purple bars play a quick melody"),
    ("a tune with six notes", "five blue bars play a slow melody"),
    # ambience
    ("heavy rain", "heavy rain falls against a black background"),
    ("gentle rain on a dark green background", "light rain falls against a dark green background"),
    ("a downpour against a gray backdrop", "heavy rain falls against a grey background"),
    ("rainfall on navy", "steady rain falls against a dark blue background"),
    ("it is raining on a brown background", "steady rain falls against a brown background"),
    ("light drizzle", "light rain falls against a black background"),
    ("a thunderstorm at night", "heavy rain falls against a black background"),
    ("rain against a beige background", "steady rain falls against a cream background"),
    ("soft rain falling on a sky blue backdrop", "light rain falls against a light blue background"),
    ("a storm over a light blue sky", "heavy rain falls against a light blue background"),
    ("steady rain", "steady rain falls against a dark blue background"),  # steady black is held out
]
NOT_ITS_WORLD = [
    "",
    "   ",
    "a cat",
    "hello world",
    "a sunset over the ocean",
    "a car driving down a road",
    "a dog chasing a red ball in the park",
    "a person tells a story about dragons",
    "a cat says meow",
]


@pytest.mark.parametrize("prompt,caption", EXAMPLES)
def test_prompts_in_other_words_read_as_captions(prompt: str, caption: str) -> None:
    done = rewrite_prompt(prompt)
    assert done.caption == caption, done.explanation
    assert done.changed and done.prompt == prompt and "\n" not in done.explanation
    assert rewrite_prompt(prompt) == done  # deterministic


def test_a_rewrite_says_what_it_mapped_dropped_and_filled() -> None:
    done = rewrite_prompt("a tiny violet sphere drops fast on a navy floor")
    assert done.family == "bounce"
    assert done.mapped == (
        ("tiny", "small"),
        ("violet", "purple"),
        ("sphere", "ball"),
        ("drops", "bounces"),
        ("fast", "quickly"),
    )
    assert done.dropped == ("on a navy floor",) and done.defaults == ()
    done = rewrite_prompt("a red ball bouncing on the ground")
    assert done.dropped == ("on the ground",)
    assert done.defaults == (("size", "medium"), ("pace", "slowly"))
    assert "size medium" in done.explanation and "on the ground" in done.explanation
    done = rewrite_prompt("a face talking")
    assert done.family == "talk" and "double quotes" in done.explanation
    done = rewrite_prompt('five blue bars play a slow melody and say "hi"')
    assert done.caption == "five blue bars play a slow melody" and '"hi"' in done.dropped


@pytest.mark.parametrize("prompt", NOT_ITS_WORLD)
def test_prompts_outside_its_world_are_left_alone(prompt: str) -> None:
    done = rewrite_prompt(prompt)
    assert done.caption is None and done.family is None and not done.changed
    assert "avgen-synth's world" in done.explanation


def _generated(family: str, split: str, count: int, pool: str = "fixed") -> list[str]:
    cfg = SynthConfig(sizes=((32, 32),), durations=(1.0,), families={family: 1.0}, phrase_pool=pool)
    return [make_sample(seed, split, cfg).caption for seed in range(count)]


@pytest.mark.parametrize("split", SPLITS)
def test_generated_captions_come_back_unchanged(split: str) -> None:
    captions = [
        *_generated("bounce", split, 60),
        *_generated("keys", split, 30),
        *_generated("ambience", split, 30),
        *_generated("talk", split, 4, "fixed"),
        *_generated("talk", split, 4, "composed"),
    ]
    assert {c.split()[-1] for c in captions} >= {"slowly", "quickly", "melody", "background"}
    for caption in captions:
        done = rewrite_prompt(caption)
        assert done.caption == caption, done.explanation
        assert not done.changed and not done.dropped and not done.mapped and not done.defaults


@pytest.mark.parametrize("split", SPLITS)
def test_every_caption_of_the_grammar_comes_back_unchanged(split: str) -> None:
    """The templates of docs/data.md over every pair of the split, every count and pace, every phrase of
    both pools; bounce through the generator's own caption function."""
    captions = []
    for size, colour in pairs("bounce", SIZES, tuple(COLORS), split):
        for n, pace in itertools.product((1, 2, 3), ADVERB):
            captions.append(bounce_caption([(size, colour)] * n, pace))
    kinds = pairs("bounce", SIZES, tuple(COLORS), split)
    for a, b, c in itertools.islice(itertools.permutations(kinds, 3), 0, None, 97):
        captions += [bounce_caption([a, b], "slow"), bounce_caption([a, b, c], "quick")]
    for pace, colour in pairs("keys", PACES, tuple(COLORS), split):
        captions += [f"{n} {colour} bars play a {pace} melody" for n in ("four", "five", "six", "seven")]
    for strength, backdrop in pairs("ambience", RAIN, tuple(BACKGROUNDS), split):
        captions.append(f"{strength} rain falls against a {backdrop} background")
    faces = pairs("talk", SHAPES, tuple(COLORS), split)
    quotes = sorted({*phrases(split, "fixed"), *phrases(split, "composed")})
    for k, phrase in enumerate(quotes):
        shape, colour = faces[k % len(faces)]
        captions.append(f'{"an" if shape == "oval" else "a"} {shape} {colour} face says "{phrase}"')
    assert len(captions) > 400
    changed = [(c, rewrite_prompt(c).caption) for c in captions if rewrite_prompt(c).caption != c]
    assert not changed, changed[:5]


PAIRS = {  # the (adjective, colour) pairs a caption of each family names
    "bounce": r"(small|medium|big) (\w+) balls?",
    "talk": r"^an? (\w+) (\w+) face",
    "keys": r"^\w+ (\w+) bars play a (\w+) melody",
    "ambience": r"^(\w+) rain falls against a (.+) background",
}


def _pairs(family: str, caption: str) -> list[tuple[str, str]]:
    found = re.findall(PAIRS[family], caption)
    return [(b, a) for a, b in found] if family == "keys" else found


def test_defaults_are_training_pairs() -> None:
    """An attribute left out is filled so that the pair is one the training split holds."""
    prompts = {
        "bounce": [f"a {c} ball" for c in COLORS] + [f"a {s} ball" for s in SIZES] + ["a ball"],
        "talk": [f'a {c} face says "hi"' for c in COLORS] + [f'a {s} face says "hi"' for s in SHAPES],
        "keys": [f"{c} bars play" for c in COLORS] + [f"bars play a {p} melody" for p in PACES],
        "ambience": [f"rain on {b}" for b in BACKGROUNDS] + [f"{r} rain" for r in RAIN] + ["rain"],
    }
    for family, texts in prompts.items():
        for text in texts:
            done = rewrite_prompt(text)
            assert done.family == family and done.caption is not None and done.defaults, text
            assert rewrite_prompt(done.caption).caption == done.caption
            assert not set(_pairs(family, done.caption)) & HELD_OUT[family], (text, done.caption)


def test_the_tables_speak_the_grammar() -> None:
    assert sorted(COLOUR_ORDER) == sorted(COLORS) and sorted(BACKDROP_ORDER) == sorted(BACKGROUNDS)
    assert sorted(SIZE_ORDER) == sorted(SIZES) and sorted(SHAPE_ORDER) == sorted(SHAPES)
    assert sorted(PACE_ORDER) == sorted(PACES) and sorted(STRENGTH_ORDER) == sorted(RAIN)
    for colour, backdrop in synonyms.COLOURS.values():
        assert colour in (None, *COLORS) and backdrop in (None, *BACKGROUNDS)
        assert (colour, backdrop) != (None, None)
    assert set(synonyms.SIZES.values()) == set(SIZES) and set(synonyms.SHAPES.values()) == set(SHAPES)
    assert set(synonyms.PACES.values()) == set(PACES) and set(synonyms.STRENGTHS.values()) == set(RAIN)
    assert set(synonyms.RAIN_NOUN_STRENGTH.values()) <= set(RAIN)
    nouns = {"talk": {"face"}, "bounce": {"ball", "balls"}, "keys": {"bars"}, "ambience": {"rain"}}
    assert {f: set(words.values()) for f, words in synonyms.OBJECTS.items()} == nouns
    verbs = {"talk": {"says"}, "bounce": {"bounce"}, "keys": {"play", "melody"}, "ambience": {"falls"}}
    assert {f: set(words.values()) for f, words in synonyms.TOPICS.items()} == verbs


# -- the pipeline ---------------------------------------------------------------------------------------

KW = {"seconds": 0.25, "height": 16, "width": 16, "progress": False, "steps": 1}


@pytest.fixture(scope="module")
def synth_pipe() -> AVPipeline:
    pipe = tiny_pipeline()
    pipe.config = dataclasses.replace(
        pipe.config, prompt_style="avgen-synth", vocabulary=("a", "red", "ball", "bounces")
    )
    return pipe


def test_the_pipeline_reads_the_caption_and_records_both(synth_pipe: AVPipeline, caplog) -> None:
    prompt, caption = "a tiny violet sphere drops fast", "a small purple ball bounces quickly"
    with caplog.at_level(logging.WARNING, logger="avgen"):
        clips = synth_pipe([prompt, prompt], **KW)  # one note per distinct prompt
    clip = clips[0]
    assert all(c.metadata["prompt"] == prompt and c.metadata["caption"] == caption for c in clips)
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 1 and caption in notes[0] and "rewrite_prompt=False" in notes[0], notes
    direct = synth_pipe(caption, **KW)  # the same clip as asking for the caption itself
    assert np.array_equal(clip.video, direct.video) and np.array_equal(clip.audio, direct.audio)
    assert direct.metadata["prompt"] == direct.metadata["caption"] == caption


def test_rewrite_prompt_false_reads_the_prompt(synth_pipe: AVPipeline, caplog) -> None:
    prompt = "a tiny violet sphere drops fast"
    with caplog.at_level(logging.WARNING, logger="avgen"):
        clip = synth_pipe(prompt, rewrite_prompt=False, **KW)
    assert clip.metadata["prompt"] == clip.metadata["caption"] == prompt
    assert len(caplog.records) == 1 and "knows few words" in caplog.records[0].getMessage()
    with pytest.raises(ConfigError, match="rewrite_prompt"):
        synth_pipe(prompt, rewrite_prompt="no", **KW)


def test_prompts_outside_its_world_keep_the_unknown_word_warning(synth_pipe: AVPipeline, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="avgen"):
        clip = synth_pipe("a cat sleeping on the sofa", **KW)
        grammatical = synth_pipe("a big red ball bounces slowly", **KW)
    assert clip.metadata["caption"] == clip.metadata["prompt"] == "a cat sleeping on the sofa"
    assert grammatical.metadata["caption"] == "a big red ball bounces slowly"
    assert len(caplog.records) == 1 and "knows few words" in caplog.records[0].getMessage()


def test_raw_pipelines_read_prompts_as_given(caplog) -> None:
    pipe = tiny_pipeline()
    assert pipe.config.prompt_style == "raw"
    with caplog.at_level(logging.WARNING, logger="avgen"):
        clip = pipe("red ball bounces", **KW)
    assert clip.metadata["prompt"] == clip.metadata["caption"] == "red ball bounces"
    assert not any(" reads " in r.getMessage() for r in caplog.records)


def test_prompt_style_in_pipeline_json(synth_pipe: AVPipeline, tmp_path) -> None:
    with pytest.raises(ConfigError, match="prompt_style"):
        PipelineConfig(prompt_style="fancy")
    older = {"format": "avgen.pipeline", "version": 2, "config": {"name": "old"}}
    assert config_from_json(older, "old.json").prompt_style == "raw"
    shipped = shipped_path("avgen-tiny") / "pipeline.json"
    assert config_from_json(json.loads(shipped.read_text()), str(shipped)).prompt_style == "avgen-synth"
    folder = synth_pipe.save_pretrained(tmp_path / "pipe")
    assert AVPipeline.from_pretrained(folder).config.prompt_style == "avgen-synth"


def test_generate_cli_rewrites_unless_raw_prompt(synth_pipe: AVPipeline, tmp_path) -> None:
    folder = synth_pipe.save_pretrained(tmp_path / "pipe")
    base = ["--pipeline", str(folder), "--size", "16x16", "--seconds", "0.25", "--steps", "1"]
    assert main(["generate", "red ball bounces", "-o", str(tmp_path / "a.mp4"), *base]) == 0
    meta = read_av(tmp_path / "a.mp4").metadata
    assert meta["prompt"] == "red ball bounces" and meta["caption"] == "a medium red ball bounces slowly"
    assert main(["generate", "red ball bounces", "-o", str(tmp_path / "b.mp4"), *base, "--raw-prompt"]) == 0
    meta = read_av(tmp_path / "b.mp4").metadata
    assert meta["prompt"] == meta["caption"] == "red ball bounces"
