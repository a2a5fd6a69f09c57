"""The composed phrase pool of the talk family: short sentences from a word list and a small grammar.

A template such as ``"DET ADJ NOUN VINS"`` names a word list per upper-case slot (``SLOTS``) and spells its
lower-case words as they are; filling every slot gives a sentence of 2 to 5 words ("the big dog sleeps"),
lower case, no punctuation, at most ``MAX_CHARS`` characters, every word in ``WORDS``.

``HELD_OUT`` names one word in five to ten of each content list (nouns, adjectives, verbs, adverbs, numbers,
names, greetings, times of day), picked by hand among words that no avgen-synth caption and no fixed phrase
uses; ``HELD_OUT_WORDS`` adds their derived forms (plural, third person). Train and val sentences never
contain one; every test sentence contains at least one, so a test clip quotes words never spoken in
training. Function words (determiners, pronouns, "is", "very", ...) are never held out.

Each template draws its sentences in a fixed order: draw ``i`` picks one word per slot from the digits of
sha256(f"{template}#{i}") in the mixed radix of the slot sizes. A new sentence containing a held-out word
goes to test, any other to val until val has its share, then to train; the template stops when its three
shares (``TEMPLATES``) are met. So the pools are disjoint, and the same in every process, platform and
Python version (no ``hash()``, no RNG state). ``composed_phrases`` returns each pool sorted.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Iterator

from avgen.errors import ConfigError

DETERMINERS = ("the", "my", "your", "this", "that", "our", "his", "her")
PRONOUNS = ("i", "we", "you", "they")
DEGREES = ("very", "so", "too", "really")
# Countable nouns with regular plurals (``s_form``).
NOUNS = (
    *("cat", "dog", "bird", "cow", "pig", "duck", "frog", "bear", "horse", "goat"),
    *("hen", "fox", "lion", "bee", "ant", "snake", "tiger", "rabbit", "owl", "whale"),
    *("ball", "book", "box", "cup", "hat", "bag", "bed", "car", "bus", "boat"),
    *("train", "key", "door", "chair", "table", "lamp", "clock", "phone", "shoe", "sock"),
    *("coat", "ring", "bell", "drum", "kite", "toy", "map", "pen", "card", "bowl"),
    *("plate", "spoon", "cake", "apple", "egg", "pie", "cookie", "lemon", "pear", "plum"),
    *("bean", "nut", "tree", "flower", "rock", "hill", "lake", "road", "house", "park"),
    *("shop", "farm", "star", "cloud", "river", "garden", "room", "window", "wall", "gate"),
    *("bridge", "field", "beach", "baby", "girl", "boy", "king", "queen", "doctor", "farmer"),
    *("teacher", "friend", "sister", "brother"),
)
ADJECTIVES = (
    *("big", "small", "little", "red", "blue", "green", "yellow", "pink", "white", "black"),
    *("brown", "old", "new", "young", "hot", "cold", "warm", "cool", "soft", "hard"),
    *("fast", "slow", "happy", "sad", "funny", "pretty", "tall", "short", "long", "clean"),
    *("dirty", "wet", "dry", "quiet", "loud", "dark", "bright", "sweet", "tiny", "huge"),
    *("lazy", "busy", "kind", "nice", "good", "bad", "full", "empty", "shiny", "round"),
    *("silly", "brave"),
)
# Verbs as their base form; the third person is ``s_form`` of it.
INTRANSITIVE_VERBS = (
    *("run", "walk", "jump", "sleep", "sing", "swim", "play", "sit", "wait", "laugh"),
    *("dance", "rest", "fly", "cry", "smile", "fall", "stop", "work", "read", "cook"),
    *("eat", "hide", "climb", "shout", "listen", "win", "shine"),
)
TRANSITIVE_VERBS = (
    *("open", "close", "find", "bring", "take", "see", "like", "want", "need", "hold"),
    *("wash", "paint", "move", "push", "pull", "drop", "catch", "throw", "fix", "clean"),
    *("carry", "buy", "keep", "watch", "draw", "kick", "lift", "pick", "feed", "hug"),
    *("visit", "call"),
)
ADVERBS = (
    *("now", "here", "there", "today", "again", "soon", "fast", "slowly", "early", "late"),
    *("away", "inside", "outside", "tonight", "well", "loudly", "quietly", "together", "alone"),
)
NUMBERS = (
    *("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    *("eleven", "twelve", "twenty"),
)
NAMES = (
    *("sam", "anna", "tom", "lucy", "ben", "max", "mia", "emma", "jack", "lily"),
    *("kate", "paul", "jane", "luke", "ruby", "adam", "ella", "mike", "john", "rose"),
)
GREETINGS = ("hello", "hi", "hey", "goodbye", "bye", "thanks", "welcome", "sorry")
TIMES = ("morning", "night", "evening", "afternoon", "day")

# Per list: nouns 10 of 94, adjectives 6 of 52, verbs 3 of 27 and 4 of 32, adverbs 2 of 19, numbers 2 of 13,
# names 3 of 20, greetings 1 of 8, times 1 of 5.
HELD_OUT = frozenset(
    {
        *("frog", "tiger", "lamp", "kite", "spoon", "cookie", "lemon", "garden", "bridge", "queen"),
        *("sweet", "tiny", "lazy", "empty", "shiny", "brave"),
        *("laugh", "hide", "climb"),
        *("wash", "paint", "throw", "carry"),
        *("outside", "tonight"),
        *("nine", "twenty"),
        *("jane", "luke", "ruby"),
        "goodbye",
        "afternoon",
    }
)


def s_form(word: str) -> str:
    """The plural of a noun or the third person singular of a verb, for the regular words listed here."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


SLOTS: dict[str, tuple[str, ...]] = {
    "DET": DETERMINERS,
    "PRON": PRONOUNS,
    "DEG": DEGREES,
    "NOUN": NOUNS,
    "NOUNS": tuple(s_form(n) for n in NOUNS),
    "ADJ": ADJECTIVES,
    "VIN": INTRANSITIVE_VERBS,
    "VINS": tuple(s_form(v) for v in INTRANSITIVE_VERBS),
    "VTR": TRANSITIVE_VERBS,
    "VTRS": tuple(s_form(v) for v in TRANSITIVE_VERBS),
    "ADV": ADVERBS,
    "NUM": NUMBERS,
    "MANY": NUMBERS[1:],
    "NAME": NAMES,
    "GREET": GREETINGS,
    "TIME": TIMES,
}
# (template, train, val, test): how many sentences of each split the template gives.
TEMPLATES: tuple[tuple[str, int, int, int], ...] = (
    ("DET NOUN VINS", 250, 25, 25),
    ("DET ADJ NOUN VINS", 350, 35, 35),
    ("DET NOUN VINS ADV", 300, 30, 30),
    ("VTR DET NOUN", 300, 30, 30),
    ("VTR DET ADJ NOUN", 350, 35, 35),
    ("DET NOUN is ADJ", 300, 30, 30),
    ("DET NOUN is DEG ADJ", 250, 25, 25),
    ("PRON VTR DET NOUN", 300, 30, 30),
    ("PRON VIN ADV", 200, 20, 20),
    ("NAME VTRS DET NOUN", 300, 30, 30),
    ("GREET NAME", 80, 10, 20),
    ("good TIME NAME", 50, 8, 15),
    ("MANY ADJ NOUNS", 250, 25, 25),
    ("PRON VTR MANY NOUNS", 250, 25, 25),
    ("NUM NUM NUM", 150, 15, 15),
    ("NAME is ADJ", 150, 15, 15),
    ("DET NOUNS are ADJ", 200, 20, 20),
)
MAX_WORDS = 5
MAX_CHARS = 28
_MAX_DRAWS = 20_000  # per template; every share is met long before (pinned by the tests)


def _derived(word: str) -> set[str]:
    return {word, s_form(word)} if word in (*NOUNS, *INTRANSITIVE_VERBS, *TRANSITIVE_VERBS) else {word}


HELD_OUT_WORDS = frozenset(w for h in HELD_OUT for w in _derived(h))
WORDS = frozenset(
    {w for words in SLOTS.values() for w in words}
    | {w for t, *_ in TEMPLATES for w in t.split() if w.islower()}
)


def _draws(template: str) -> Iterator[str]:
    """The template's sentences in draw order (endless, with repeats)."""
    slots = [SLOTS.get(token, (token,)) for token in template.split()]
    for i in itertools.count():
        x = int.from_bytes(hashlib.sha256(f"{template}#{i}".encode()).digest()[:16], "big")
        words = []
        for options in slots:
            x, k = divmod(x, len(options))
            words.append(options[k])
        yield " ".join(words)


@functools.cache
def _pools() -> dict[str, tuple[str, ...]]:
    pools: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    seen: set[str] = set()
    for template, n_train, n_val, n_test in TEMPLATES:
        want = {"train": n_train, "val": n_val, "test": n_test}
        for sentence in itertools.islice(_draws(template), _MAX_DRAWS):
            if not any(want.values()):
                break
            if sentence in seen or len(sentence) > MAX_CHARS:
                continue
            seen.add(sentence)
            held = not HELD_OUT_WORDS.isdisjoint(sentence.split())
            split = "test" if held else ("val" if want["val"] else "train")
            if want[split]:
                want[split] -= 1
                pools[split].append(sentence)
    return {split: tuple(sorted(p)) for split, p in pools.items()}


def composed_phrases(split: str) -> tuple[str, ...]:
    """The composed pool of ``split`` ("train", "val" or "test"), sorted; see the module docstring."""
    pools = _pools()
    if split not in pools:
        raise ConfigError(f"split must be one of {', '.join(pools)}, got {split!r}")
    return pools[split]
