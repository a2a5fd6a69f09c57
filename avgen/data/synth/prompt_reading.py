"""Reading a prompt for ``rewrite``: its quotes, its words and phrases with their meanings in avgen-synth's
world (``synonyms``), its backdrop phrases and the family it is about.

A prompt is read outside its quotes, lower-cased, as words of letters and digits (hyphens and other
punctuation separate them, "'s" is dropped); each word, or phrase of up to three words found in
``synonyms``, becomes a ``Span`` holding every ``Sense`` it can have. The family that ``rewrite`` writes
decides which sense counts.
"""

from __future__ import annotations

import dataclasses
import functools
import re

from avgen.data.synth import synonyms as syn

FAMILIES = ("talk", "bounce", "keys", "ambience")


@dataclasses.dataclass(frozen=True)
class Sense:
    """One meaning of a word: ``kind`` (object, topic, colour, backdrop, size, shape, pace, strength,
    noun_strength, count, setting, prep, soft_prep, determiner, filler), its caption ``value``, and for
    object and topic the family it names."""

    kind: str
    value: str | int = ""
    family: str = ""


STRUCTURAL = frozenset(("setting", "prep", "soft_prep", "determiner", "filler"))


@functools.cache
def lexicon() -> dict[tuple[str, ...], tuple[Sense, ...]]:
    """Every word and phrase of ``synonyms`` with its meanings."""
    senses: dict[str, list[Sense]] = {}

    def add(words: str, sense: Sense) -> None:
        senses.setdefault(words, []).append(sense)

    for kind, table in (("object", syn.OBJECTS), ("topic", syn.TOPICS)):
        for family, words in table.items():
            for word, value in words.items():
                add(word, Sense(kind, value, family))
    for word, (colour, backdrop) in syn.COLOURS.items():
        if colour is not None:
            add(word, Sense("colour", colour))
        if backdrop is not None:
            add(word, Sense("backdrop", backdrop))
    tables: tuple[tuple[str, dict[str, str] | dict[str, int]], ...] = (
        ("noun_strength", syn.RAIN_NOUN_STRENGTH),
        ("size", syn.SIZES),
        ("shape", syn.SHAPES),
        ("pace", syn.PACES),
        ("strength", syn.STRENGTHS),
        ("count", syn.COUNTS),
    )
    for kind, values in tables:
        for word, value in values.items():
            add(word, Sense(kind, value))
    for kind, words in (
        ("setting", syn.SETTINGS),
        ("prep", syn.PREPOSITIONS),
        ("soft_prep", syn.SOFT_PREPOSITIONS),
        ("determiner", syn.DETERMINERS),
        ("filler", syn.FILLERS),
    ):
        for word in words:
            add(word, Sense(kind))
    return {tuple(words.split()): tuple(s) for words, s in senses.items()}


@dataclasses.dataclass
class Span:
    """A word or phrase of the prompt (outside quotes) and its meanings; ``backdrop``: the index of the
    backdrop phrase it is part of, -1 for none."""

    text: str
    senses: tuple[Sense, ...]
    backdrop: int = -1

    def sense(self, kind: str, family: str = "") -> Sense | None:
        return next((s for s in self.senses if s.kind == kind and s.family == family), None)

    def has(self, kind: str) -> bool:
        return any(s.kind == kind for s in self.senses)


_QUOTE = re.compile(r'"([^"]*)"|“([^”]*)”|(?<![\w\'])\'(.+?)\'(?!\w)')
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_MAX_PHRASE = 3


def split_quotes(text: str) -> tuple[str, list[str]]:
    """The prompt without its quotes, and what it quotes, in order."""
    quoted: list[str] = []

    def take(m: re.Match[str]) -> str:
        quoted.append(next(g for g in m.groups() if g is not None))
        return " "

    rest = _QUOTE.sub(take, text)
    for mark in ('"', "“"):  # a quote opened and never closed runs to the end
        if mark in rest:
            rest, tail = rest.split(mark, 1)
            quoted.append(tail)
    return rest, quoted


def spoken_phrase(quoted: list[str]) -> str:
    """What a talk caption quotes: the quotes lower-cased, without punctuation, joined by a space."""
    parts = (" ".join(re.sub(r"[^\w\s'-]", " ", q.lower()).split()) for q in quoted)
    return " ".join(p for p in parts if p)


def shown(quoted: list[str]) -> str:
    """The quotes as the prompt has them, on one line."""
    return " ".join(" ".join(quoted).split())


def spans_of(text: str) -> list[Span]:
    """The words of ``text``, the longest phrase of the lexicon first."""
    words = [w.removesuffix("'s") for w in _WORD.findall(text.lower())]  # "the ball's colour"
    known, out, i = lexicon(), [], 0
    while i < len(words):
        for n in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
            if (key := tuple(words[i : i + n])) in known:
                out.append(Span(" ".join(key), known[key]))
                i += n
                break
        else:
            word = words[i]
            number = word.isascii() and word.isdigit()
            out.append(Span(word, (Sense("count", int(word)),) if number else ()))
            i += 1
    return out


def mark_backdrops(spans: list[Span]) -> list[tuple[int, int]]:
    """The backdrop phrases, as [start, end) span ranges: a preposition, determiners, colours and a setting
    word ("on a blue floor"); a setting word can go without the preposition ("a black background"), a
    strong preposition without the setting word ("on black"); "with" / "in" / ... need the setting word."""
    phrases: list[tuple[int, int]] = []
    i = 0
    while i < len(spans):
        strong, soft = spans[i].has("prep"), spans[i].has("soft_prep")
        j = i + (strong or soft)
        while j < len(spans) and spans[j].has("determiner"):
            j += 1
        k = j
        while k < len(spans) and (spans[k].has("colour") or spans[k].has("backdrop")):
            k += 1
        setting = k < len(spans) and spans[k].has("setting")
        if setting or (strong and k > j):
            end = k + setting
            for span in spans[i:end]:
                span.backdrop = len(phrases)
            phrases.append((i, end))
            i = end
        else:
            i += 1
    return phrases


def family_of(spans: list[Span], quoted: bool) -> str | None:
    """The family the prompt is most about (nouns 2, verbs 1, a quote 1 for talk); ties: named first."""
    score, first = dict.fromkeys(FAMILIES, 0), {}
    for i, span in enumerate(spans):
        if span.backdrop >= 0:
            continue
        for family in FAMILIES:
            weight = 2 if span.sense("object", family) else 1 if span.sense("topic", family) else 0
            if weight:
                score[family] += weight
                first.setdefault(family, i)
    if quoted:
        score["talk"] += 1
        first.setdefault("talk", len(spans))
    named = [f for f in FAMILIES if score[f]]
    return min(named, key=lambda f: (-score[f], first[f])) if named else None
