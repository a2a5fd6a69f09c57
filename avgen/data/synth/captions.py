"""Caption vocabularies and the held-out test combinations.

Every caption pairs an adjective with a colour (bounce: ball size, talk: face shape, keys: pace, ambience:
rain strength). The test split draws only the HELD_OUT pairs and TEST_PHRASES; train and val never do, so
test captions are unseen compositions of seen words. The "composed" phrase pool (``phrases``) goes further:
its test sentences say words that train and val never speak.
"""

from __future__ import annotations

import re

from avgen.data.synth.draw import Color
from avgen.errors import ConfigError

# name -> RGB in [0, 1]; metrics may use these to measure the colour asked for in a caption.
COLORS: dict[str, Color] = {
    "red": (0.86, 0.13, 0.13),
    "orange": (0.98, 0.55, 0.08),
    "yellow": (0.97, 0.87, 0.15),
    "green": (0.18, 0.75, 0.25),
    "blue": (0.16, 0.38, 0.92),
    "purple": (0.58, 0.24, 0.80),
    "pink": (0.98, 0.50, 0.72),
    "white": (0.96, 0.96, 0.96),
}
# Backgrounds, named for the ambience captions; objects are never drawn on a background too close to them.
BACKGROUNDS: dict[str, Color] = {
    "black": (0.04, 0.04, 0.05),
    "dark blue": (0.06, 0.09, 0.25),
    "grey": (0.40, 0.41, 0.43),
    "dark green": (0.07, 0.20, 0.10),
    "brown": (0.30, 0.19, 0.10),
    "cream": (0.93, 0.89, 0.78),
    "light blue": (0.68, 0.82, 0.93),
}
# The inside of the talk face's mouth; avgen.metrics.synth finds the mouth opening by this colour.
MOUTH_RGB: Color = (0.28, 0.03, 0.06)
# A pixel within this RGB distance (on [0, 1]) of MOUTH_RGB counts as mouth, for scoring and for training losses.
MOUTH_TOLERANCE = 0.2
SIZES = ("small", "medium", "big")
SHAPES = ("round", "square", "oval")
PACES = ("slow", "quick")
RAIN = ("light", "steady", "heavy")
COUNT_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight")

HELD_OUT: dict[str, frozenset[tuple[str, str]]] = {
    "bounce": frozenset({("small", "orange"), ("medium", "pink"), ("big", "purple"), ("big", "white")}),
    "talk": frozenset({("round", "purple"), ("square", "yellow"), ("oval", "green"), ("oval", "white")}),
    "keys": frozenset({("slow", "green"), ("quick", "pink"), ("quick", "white")}),
    "ambience": frozenset({("heavy", "grey"), ("light", "dark blue"), ("steady", "black")}),
}

TRAIN_PHRASES = (
    "good morning",
    "hello there",
    "thank you very much",
    "how are you",
    "nice to meet you",
    "good night",
    "see you later",
    "what a lovely day",
    "i like green apples",
    "the cat is sleeping",
    "open the door",
    "please sit down",
    "it is raining",
    "let us go home",
    "where is my hat",
    "the sun is bright",
    "i am hungry",
    "that was fun",
    "my name is sam",
    "one two three",
    "a big red bus",
    "bring me water",
    "happy birthday",
    "time for lunch",
    "the dog can run",
    "look at the sky",
    "we are ready",
    "good job",
    "turn on the light",
    "i love music",
    "close the window",
    "the baby is happy",
    "come back soon",
    "pass the salt",
    "the bird sings",
    "wait for me",
    "how old are you",
    "we play ball",
    "blue fish swim",
    "maybe tomorrow",
    "yes please",
    "no thank you",
    "well done",
    "be careful",
)
TEST_PHRASES = (
    "see you tomorrow",
    "the moon is round",
    "i need a pencil",
    "good evening",
    "where are my keys",
    "the tea is hot",
    "we like to dance",
    "buy some bread",
    "it is very cold",
    "the boat is slow",
)


def pairs(
    family: str, adjectives: tuple[str, ...], colors: tuple[str, ...], split: str
) -> list[tuple[str, str]]:
    """The (adjective, colour) pairs ``split`` may use for ``family``."""
    held = HELD_OUT[family]
    every = [(a, c) for a in adjectives for c in colors]
    return [p for p in every if (p in held) == (split == "test")]


# What the talk family quotes: "fixed", the 44 train / 10 test phrases above (val speaks the train ones);
# "composed", the pools of ``avgen.data.synth.phrases`` (thousands, with held-out words in test).
PHRASE_POOLS = ("fixed", "composed")


def phrases(split: str, pool: str = "fixed") -> tuple[str, ...]:
    """The phrases a talk clip of ``split`` may say under phrase pool ``pool`` (one of PHRASE_POOLS)."""
    if pool == "fixed":
        return TEST_PHRASES if split == "test" else TRAIN_PHRASES
    if pool == "composed":
        from avgen.data.synth.phrases import composed_phrases

        return composed_phrases(split)
    raise ConfigError(f"phrase pool must be one of {', '.join(PHRASE_POOLS)}, got {pool!r}")


def count_word(n: int) -> str:
    return COUNT_WORDS[n] if 0 <= n < len(COUNT_WORDS) else str(n)


# The words a held-out pair combines with a colour (a background for ambience): what ``caption_variants``
# drops. Colours are named in COLORS; quoted speech is never touched.
ADJECTIVES = frozenset((*SIZES, *SHAPES, *PACES, *RAIN))


def _articles(text: str) -> str:
    """Single spaces, and each article agreeing with its next word ("a orange" -> "an orange")."""
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\b(a|an) (\w)", lambda m: ("an " if m.group(2) in "aeiou" else "a ") + m.group(2), text)


VARIANT_DROPS = ("adjectives", "colours")


def caption_variants(caption: str, drops: tuple[str, ...] = VARIANT_DROPS) -> list[str]:
    """Other true captions of the same clip, each naming one attribute fewer; [] if there is none.

    The first drops every size / shape / pace / rain-strength word and keeps the colours ("a big white ball
    bounces slowly" -> "a white ball bounces slowly"), the second drops every colour and keeps the rest ("a big
    ball bounces slowly"). Training on them teaches "white" apart from the size word it came with, which is
    what the test split's held-out pairs ask for. ``drops`` picks which of the two to make ("adjectives",
    "colours"). Quoted speech is left as it is.
    """
    unknown = set(drops) - set(VARIANT_DROPS)
    if unknown:
        raise ValueError(f"caption variants can drop {VARIANT_DROPS}, got {sorted(unknown)}")
    quote = caption.find('"')
    head, tail = (caption, "") if quote < 0 else (caption[:quote], caption[quote:])
    words = head.split()
    variants = []
    words_of = {"adjectives": ADJECTIVES, "colours": frozenset(COLORS)}
    for drop in (words_of[d] for d in VARIANT_DROPS if d in drops):
        kept = [w for w in words if w not in drop]
        if len(kept) < len(words):
            variants.append(_articles(" ".join(kept) + " " + tail))
    return [v for v in dict.fromkeys(variants) if v != caption]
