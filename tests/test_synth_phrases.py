"""The composed phrase pool: fixed contents, disjoint splits, held-out words only in test; SynthConfig's pool."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import subprocess
import sys

import pytest

from avgen.config import from_dict, to_dict
from avgen.data.synth import phrases as P
from avgen.data.synth.captions import (
    ADJECTIVES,
    BACKGROUNDS,
    COLORS,
    COUNT_WORDS,
    TEST_PHRASES,
    TRAIN_PHRASES,
    phrases,
)
from avgen.data.synth.spec import SynthConfig
from avgen.errors import ConfigError

SPLITS = ("train", "val", "test")
# sha256 of the three pools, each sentence followed by "\n", each pool by a further "\n" (train, val, test).
POOL_SHA256 = "744196ee900737884c911f48327bf98214635a11448195c23f6629b64bd833e6"
DEFAULT_REPR = (
    "SynthConfig(sizes=((64, 64), (64, 96), (96, 64)), fps=24, sample_rate=16000, durations=(1.5, 2.0, 2.5), "
    "families={'talk': 1.0, 'bounce': 1.0, 'keys': 1.0, 'ambience': 0.5})"
)


def _digest() -> str:
    h = hashlib.sha256()
    for split in SPLITS:
        h.update(("\n".join(P.composed_phrases(split)) + "\n\n").encode())
    return h.hexdigest()


def test_pools_are_fixed_in_this_and_a_fresh_process() -> None:
    assert all(P.composed_phrases(s) == P.composed_phrases(s) for s in SPLITS)
    assert _digest() == POOL_SHA256
    code = "from test_synth_phrases import _digest; print(_digest())"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # no reliance on str hashing
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=os.path.dirname(__file__),
        env=env,
    )
    assert out.stdout.strip() == POOL_SHA256


def test_sizes_disjoint_splits_and_sentence_shape() -> None:
    pools = {s: P.composed_phrases(s) for s in SPLITS}
    assert 2000 <= len(pools["train"]) <= 5000
    assert 200 <= len(pools["val"]) <= 600 and 200 <= len(pools["test"]) <= 600
    for i, split in enumerate(("train", "val", "test"), start=1):  # every template met its shares
        assert len(pools[split]) == sum(t[i] for t in P.TEMPLATES), split
    for split, pool in pools.items():
        assert list(pool) == sorted(set(pool)), split  # sorted, distinct
        for sentence in pool:
            words = sentence.split()
            assert re.fullmatch(r"[a-z]+( [a-z]+)+", sentence), sentence
            assert 2 <= len(words) <= P.MAX_WORDS and len(sentence) <= P.MAX_CHARS, sentence
            assert set(words) <= P.WORDS, sentence
    assert not set(pools["train"]) & set(pools["val"])
    assert not set(pools["train"]) & set(pools["test"]) and not set(pools["val"]) & set(pools["test"])
    with pytest.raises(ConfigError, match="train, val, test"):
        P.composed_phrases("dev")


def test_held_out_words_only_in_test_and_in_every_test_sentence() -> None:
    for split in ("train", "val"):
        for sentence in P.composed_phrases(split):
            assert P.HELD_OUT_WORDS.isdisjoint(sentence.split()), (split, sentence)
    test_words = set()
    for sentence in P.composed_phrases("test"):
        assert not P.HELD_OUT_WORDS.isdisjoint(sentence.split()), sentence
        test_words |= set(sentence.split())
    for lemma in P.HELD_OUT:  # each held-out word is said in test, in some form
        assert test_words & {lemma, P.s_form(lemma)}, lemma
    # val speaks only words that train speaks too
    train_words = {w for s in P.composed_phrases("train") for w in s.split()}
    assert {w for s in P.composed_phrases("val") for w in s.split()} <= train_words


def test_held_out_words_are_spread_and_never_said_or_written_in_training() -> None:
    assert 0.10 <= len(P.HELD_OUT_WORDS) / len(P.WORDS) <= 0.15
    assert P.HELD_OUT_WORDS <= P.WORDS
    content = (P.NOUNS, P.ADJECTIVES, P.INTRANSITIVE_VERBS, P.TRANSITIVE_VERBS, P.ADVERBS, P.NUMBERS)
    for words in (*content, P.NAMES, P.GREETINGS, P.TIMES):
        assert P.HELD_OUT & set(words), words[:3]
    for words in (P.DETERMINERS, P.PRONOUNS, P.DEGREES):
        assert not P.HELD_OUT & set(words)
    fixed = {w for p in TRAIN_PHRASES for w in p.split()}
    captions = {w for name in (*COLORS, *BACKGROUNDS) for w in name.split()} | ADJECTIVES | set(COUNT_WORDS)
    assert P.HELD_OUT_WORDS.isdisjoint(fixed | captions)


def test_fixed_pool_is_unchanged_and_unknown_pools_are_refused() -> None:
    assert phrases("test") == phrases("test", "fixed") == TEST_PHRASES and len(TEST_PHRASES) == 10
    assert phrases("train") == phrases("val", "fixed") == TRAIN_PHRASES and len(TRAIN_PHRASES) == 44
    assert all(phrases(s, "composed") == P.composed_phrases(s) for s in SPLITS)
    with pytest.raises(ConfigError, match="fixed, composed"):
        phrases("train", "big")


def test_synth_config_phrase_pool() -> None:
    assert SynthConfig().phrase_pool == "fixed"
    with pytest.raises(ConfigError, match="phrase_pool must be one of fixed, composed"):
        SynthConfig(phrase_pool="huge")
    composed = SynthConfig(phrase_pool="composed")
    assert repr(SynthConfig()) == repr(composed) == DEFAULT_REPR  # latent caches keyed on repr stay valid
    assert composed != SynthConfig()
    data = to_dict(composed)
    assert data["phrase_pool"] == "composed" and from_dict(SynthConfig, data) == composed
    with pytest.raises(ConfigError, match="fixed, composed"):
        from_dict(SynthConfig, {"phrase_pool": "many"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        composed.phrase_pool = "fixed"  # type: ignore[misc]


def test_synth_cli_takes_the_pool() -> None:
    from avgen.data.synth.cli import build_parser, config_from_args

    base = ["--out", "x", "--n", "1"]
    assert config_from_args(build_parser().parse_args(base)).phrase_pool == "fixed"
    args = build_parser().parse_args([*base, "--phrase-pool", "composed"])
    assert config_from_args(args).phrase_pool == "composed"
    args = build_parser().parse_args([*base, "--set", "phrase_pool=composed"])
    assert config_from_args(args).phrase_pool == "composed"
    with pytest.raises(SystemExit):
        build_parser().parse_args([*base, "--phrase-pool", "huge"])


def test_speech_candidates_follow_the_pool() -> None:
    from avgen.metrics.model_eval import PHRASES, ModelEvalConfig, speech_candidates

    assert speech_candidates("fixed", "test") == speech_candidates("fixed", "val") == PHRASES
    assert speech_candidates("composed", "test") == P.composed_phrases("test")
    assert speech_candidates("composed", "val") == P.composed_phrases("val")
    with pytest.raises(ConfigError, match="phrase_pool"):
        ModelEvalConfig(phrase_pool="huge")


def test_composed_talk_sample_says_held_out_words_in_test_only() -> None:
    pytest.importorskip("espeakng_loader")
    from avgen.data.synth.generate import make_sample

    cfg = SynthConfig(sizes=((32, 32),), durations=(2.0,), families={"talk": 1.0}, phrase_pool="composed")
    for split, seed in (("test", 0), ("test", 1), ("train", 0), ("val", 0)):
        sample = make_sample(seed, split, cfg)
        phrase = sample.objects["phrase"]
        assert phrase in P.composed_phrases(split) and f'"{phrase}"' in sample.caption
        assert P.HELD_OUT_WORDS.isdisjoint(phrase.split()) == (split != "test"), (split, phrase)
        said = [e["word"] for e in sample.events if e["kind"] == "word"]
        assert said == phrase.split(), (phrase, said)
