"""Captions, held-out test combinations, variety, and config validation of avgen-synth."""

from __future__ import annotations

from collections import Counter

import pytest

from avgen.data.synth.captions import COLORS, HELD_OUT, TEST_PHRASES, TRAIN_PHRASES, pairs
from avgen.data.synth.generate import make_sample
from avgen.data.synth.spec import SynthConfig, sample_seed
from avgen.errors import ConfigError

SMALL = SynthConfig(sizes=((32, 32), (32, 48), (48, 32)), durations=(1.0, 1.5))


def _used_pairs(sample) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    o = sample.objects
    if sample.family == "bounce":
        return {(b["size"], b["color"]) for b in o["balls"]}
    if sample.family == "talk":
        return {(o["face"]["shape"], o["face"]["color"])}
    if sample.family == "keys":
        return {(o["pace"], o["color"])}
    return {(o["strength"], o["background"])}


def test_held_out_pairs_and_phrases_never_occur_in_train_or_val() -> None:
    assert not set(TEST_PHRASES) & set(TRAIN_PHRASES)
    for split, seeds in (("train", range(40)), ("val", range(12)), ("test", range(24))):
        for s in seeds:
            sample = make_sample(s, split, SMALL)
            held = HELD_OUT[sample.family]
            used = _used_pairs(sample)
            quoted = sample.objects.get("phrase")
            if split == "test":
                assert used <= held, (sample.caption, used)
                assert quoted is None or quoted in TEST_PHRASES
            else:
                assert not used & held, (sample.caption, used)
                assert quoted is None or quoted in TRAIN_PHRASES
                assert not any(f'"{p}"' in sample.caption for p in TEST_PHRASES)
            for adjective, colour in used:
                assert adjective in sample.caption and colour in sample.caption


def test_held_out_words_are_each_seen_in_training() -> None:
    """Test captions are new combinations of words the model has seen."""
    for family, held in HELD_OUT.items():
        adjectives = {a for a, _ in held}
        colours = {c for _, c in held}
        train = pairs(
            family, tuple(sorted(adjectives | {a for a, _ in held})), tuple(sorted(colours)), "train"
        )
        assert {a for a, _ in train} >= adjectives and {c for _, c in train} >= colours


def test_variety_of_families_sizes_and_durations() -> None:
    samples = [make_sample(s, "train", SMALL) for s in range(30)]
    families = Counter(s.family for s in samples)
    assert set(families) == {"talk", "bounce", "keys", "ambience"}
    assert {(s.clip.height, s.clip.width) for s in samples} == {(32, 32), (32, 48), (48, 32)}
    assert {s.clip.num_frames for s in samples} == {24, 36}
    assert len({s.caption for s in samples}) >= 25
    talk = [s for s in samples if s.family == "talk"]
    assert len({s.objects["voice"] for s in talk}) > 1
    for s in samples:
        assert s.clip.num_samples == round(s.clip.num_frames / 24 * 16000)
        assert s.clip.audio.shape[0] == 1 and s.clip.metadata["caption"] == s.caption


def test_fractional_fps_stays_exact() -> None:
    cfg = SynthConfig(sizes=((32, 32),), durations=(1.0,), fps="30000/1001", families={"bounce": 1.0})
    sample = make_sample(0, "train", cfg)
    assert str(sample.clip.fps) == "30000/1001" and sample.clip.num_frames == 30
    assert sample.to_json()["fps"] == "30000/1001"


@pytest.mark.parametrize(
    "bad",
    [
        {"sizes": ((16, 16),)},
        {"fps": 23.976},
        {"fps": "0"},
        {"durations": (0.2,)},
        {"durations": (float("nan"),)},
        {"families": {"dance": 1.0}},
        {"families": {"talk": 0.0}},
        {"sample_rate": 44.1},
    ],
)
def test_bad_config_is_refused(bad: dict) -> None:
    with pytest.raises(ConfigError):
        SynthConfig(**bad)


def test_bad_seed_or_split_is_refused() -> None:
    assert sample_seed(5, "val") == 10_000_005
    for seed, split in ((-1, "train"), (10_000_000, "train"), (1, "dev"), (1.5, "train")):
        with pytest.raises(ConfigError):
            sample_seed(seed, split)  # type: ignore[arg-type]
    assert set(COLORS) >= {c for held in HELD_OUT.values() for _, c in held} - {"grey", "dark blue", "black"}
