"""rewrite_prompt: a prompt in a user's own words as a caption of avgen-synth's grammar, by fixed rules.

A model trained only on avgen-synth knows the words and the word order of its captions (the templates of
docs/data.md). ``rewrite_prompt`` finds the family a prompt is about from its nouns and verbs
(``synonyms.OBJECTS`` count two, ``synonyms.TOPICS`` and a quote one; a tie goes to the family named
first), reads each attribute through the tables of ``synonyms`` and writes that family's caption:

- talk ``a {shape} {colour} face says "{phrase}"``: the phrase is what the prompt quotes ("...", “...” or
  '...'; several quotes joined by a space), lower-cased, with punctuation other than apostrophes and
  hyphens removed. Unquoted words are never taken for speech: a prompt that quotes nothing gets no
  phrase, ``a {shape} {colour} face says`` (the training captions always quote one).
- bounce: one to three balls (``BALLS``), each of a size and colour; a count applies to the balls named
  after it ("two red balls and a blue ball"), several colours or sizes before one noun give one ball each
  ("red and blue balls"), a plural without a count is two.
- keys: four to seven bars (``BARS``; a count outside is clamped), one colour, a slow or quick melody.
- ambience: light, steady or heavy rain ("drizzle" is light, "storm" heavy) against a backdrop.

Only ambience captions name a backdrop; in the other families a backdrop phrase ("on a blue floor",
"against a black background", "on black") is dropped. An attribute the prompt does not give is filled
from its ``*_ORDER`` tuple: the first value that pairs with the other attribute into a training pair,
never a held-out test pair (``captions.HELD_OUT``); a pair the prompt gives itself is kept. A caption of
the grammar comes back unchanged.

A prompt is not about that world (``Rewrite.caption`` None) when it names no family, or when as many of
its words are unknown to ``synonyms`` as there are words the caption uses (function words aside).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from avgen.data.synth.bounce import ADVERB
from avgen.data.synth.bounce import _caption as bounce_caption
from avgen.data.synth.captions import HELD_OUT, count_word
from avgen.data.synth.prompt_reading import (
    STRUCTURAL,
    Sense,
    Span,
    family_of,
    mark_backdrops,
    shown,
    spans_of,
    split_quotes,
    spoken_phrase,
)

# Fill order of each attribute a prompt leaves out: the first value making a training pair is taken.
COLOUR_ORDER = ("blue", "red", "green", "yellow", "orange", "white", "pink", "purple")
SIZE_ORDER = ("medium", "small", "big")
SHAPE_ORDER = ("round", "oval", "square")
PACE_ORDER = ("slow", "quick")
STRENGTH_ORDER = ("steady", "heavy", "light")
BACKDROP_ORDER = ("black", "dark blue", "grey", "dark green", "brown", "cream", "light blue")
BALLS = (1, 3)  # how many balls a bounce clip shows
BARS = (4, 7)  # how many bars a keys clip shows
DEFAULT_BARS = 5
PLURAL_BALLS = 2  # "balls" without a count


@dataclasses.dataclass(frozen=True)
class Rewrite:
    """What ``rewrite_prompt`` made of ``prompt``.

    caption: the caption in avgen-synth's grammar, or None when the prompt is not about that world.
    family: the family it is about (None with no caption). mapped: (the prompt's words, the caption's words)
    for each thing the caption says in other words, in prompt order. dropped: the prompt's words and
    phrases the caption does not carry. defaults: (attribute, value) for each attribute filled in.
    explanation: one line saying all that.
    """

    prompt: str
    caption: str | None
    family: str | None = None
    mapped: tuple[tuple[str, str], ...] = ()
    dropped: tuple[str, ...] = ()
    defaults: tuple[tuple[str, str], ...] = ()
    explanation: str = ""

    @property
    def changed(self) -> bool:
        """Whether the caption differs from the prompt (False when there is no caption)."""
        return self.caption is not None and self.caption != self.prompt


@dataclasses.dataclass
class _Draft:
    """The caption being written: which spans it uses, and the notes for the ``Rewrite``."""

    family: str
    spans: list[Span]
    phrases: list[tuple[int, int]]
    quoted: list[str]
    used: set[int] = dataclasses.field(default_factory=set)
    mapped: dict[int, tuple[str, str]] = dataclasses.field(default_factory=dict)
    defaults: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    def free(self, kind: str, family: str = "", within: range | None = None) -> list[tuple[int, Sense]]:
        """Unused spans outside backdrop phrases (in ``within`` if given) with a sense of ``kind``."""
        found = []
        for i in within if within is not None else range(len(self.spans)):
            span = self.spans[i]
            sense = span.sense(kind, family)
            if sense is not None and i not in self.used and span.backdrop < 0:
                found.append((i, sense))
        return found

    def use(self, i: int, said: str | None = None) -> None:
        """Span ``i`` goes into the caption, said there as ``said`` (None: as written)."""
        self.used.add(i)
        if said is not None and said != self.spans[i].text:
            self.mapped[i] = (self.spans[i].text, said)

    def first(self, kind: str, say: Callable[[str], str] = str) -> str | None:
        """The value of the first free span of ``kind`` (used), or None; later ones stay free."""
        found = self.free(kind)
        if not found:
            return None
        i, sense = found[0]
        self.use(i, say(str(sense.value)))
        return str(sense.value)

    def fill(
        self,
        names: tuple[str, str],
        given: tuple[str | None, str | None],
        orders: tuple[tuple[str, ...], ...],
    ) -> tuple[str, str]:
        """The (attribute, colour-or-backdrop) pair: given values kept, missing ones filled in the order of
        ``orders`` with the first pair that is not held out for the test split."""
        adjective, colour = given
        held = HELD_OUT[self.family]
        pair = next(
            (
                (a, c)
                for c in ((colour,) if colour else orders[1])
                for a in ((adjective,) if adjective else orders[0])
                if (a, c) not in held or (adjective and colour)
            ),
            (adjective or orders[0][0], colour or orders[1][0]),
        )
        for name, value, was in zip(names, pair, given):
            if was is None:
                self.defaults.setdefault(name, value)
        return pair

    def use_all(self, kind: str, said: str | None = None) -> None:
        """Every free span of ``kind`` of this family goes in, said as ``said`` (None: its sense's value)."""
        for i, sense in self.free(kind, self.family):
            self.use(i, str(sense.value) if said is None else said)


def _talk(d: _Draft) -> str:
    shape = d.first("shape")
    colour = d.first("colour")
    shape, colour = d.fill(("shape", "colour"), (shape, colour), (SHAPE_ORDER, COLOUR_ORDER))
    d.use_all("object")
    d.use_all("topic")
    article = "an" if shape[0] in "aeiou" else "a"
    head = f"{article} {shape} {colour} face says"
    phrase = spoken_phrase(d.quoted)
    if not phrase:
        d.notes.append('nothing quoted, so no phrase: put the words to say in "double quotes"')
        return head
    raw = shown(d.quoted)
    if raw != phrase:
        d.mapped[len(d.spans)] = (f'"{raw}"', f'"{phrase}"')
    return f'{head} "{phrase}"'


def _groups(d: _Draft) -> list[list[int]]:
    """The spans describing each named group of balls: those since the previous ball noun, up to its own;
    the size and colour words after the last noun join the last group when it has none."""
    nouns = [i for i, _ in d.free("object", "bounce")]
    if not nouns:
        return [list(range(len(d.spans)))]
    groups, start = [], 0
    for n in nouns:
        groups.append(list(range(start, n + 1)))
        start = n + 1
    for kind in ("size", "colour"):
        if not d.free(kind, within=range(groups[-1][0], groups[-1][-1] + 1)):
            groups[-1] += [i for i, _ in d.free(kind, within=range(start, len(d.spans)))]
    return groups


def _bounce(d: _Draft) -> str:
    balls: list[tuple[str | None, str | None]] = []
    counts: list[tuple[int, int]] = []  # (span, how many balls it made)
    for group in _groups(d):
        within = range(min(group), max(group) + 1)
        sizes = [(i, str(s.value)) for i, s in d.free("size", within=within) if i in group]
        colours = [(i, str(s.value)) for i, s in d.free("colour", within=within) if i in group]
        numbers = [(i, int(s.value)) for i, s in d.free("count", within=within) if i in group]
        nouns = [s for i, s in d.free("object", "bounce", within=within) if i in group]
        plural = bool(nouns) and str(nouns[0].value) == "balls"
        n = (
            max(1, numbers[-1][1])
            if numbers
            else max(len(sizes), len(colours), PLURAL_BALLS if plural else 1)
        )
        for j in range(n):
            size = sizes[j % len(sizes)][1] if sizes else None
            colour = colours[j % len(colours)][1] if colours else None
            balls.append((size, colour))
        for i, value in (*sizes, *colours):
            d.use(i, value)
        if numbers:
            counts.append((numbers[-1][0], n))
    most = BALLS[1]
    if len(balls) > most:
        d.notes.append(
            f"{len(balls)} balls cut to {count_word(most)}: bounce clips show one to {count_word(most)}"
        )
        balls = balls[:most]
    kinds = [d.fill(("size", "colour"), ball, (SIZE_ORDER, COLOUR_ORDER)) for ball in balls]
    pace = d.first("pace", lambda p: ADVERB[p])
    if pace is None:
        pace = PACE_ORDER[0]
        d.defaults["pace"] = ADVERB[pace]
    alike = len(set(kinds)) == 1
    for i, n in counts:
        d.use(i, ("a" if n == 1 else count_word(min(n, most))) if alike else None)
    d.use_all("object", "balls" if alike and len(kinds) > 1 else "ball")
    d.use_all("topic", "bounces" if len(kinds) == 1 else "bounce")
    return bounce_caption(kinds, pace)


def _keys(d: _Draft) -> str:
    nouns = d.free("object", "keys")
    numbers = d.free("count", within=range(nouns[0][0])) if nouns else []  # "five ... keys"
    if numbers:
        i, sense = numbers[-1]
        n = min(max(int(sense.value), BARS[0]), BARS[1])
        d.use(i, count_word(n))
        if n != sense.value:
            d.notes.append(f"keys clips show {count_word(BARS[0])} to {count_word(BARS[1])} bars")
    else:
        n = DEFAULT_BARS
        d.defaults["bars"] = count_word(n)
    colour = d.first("colour")
    pace = d.first("pace")
    pace, colour = d.fill(("pace", "colour"), (pace, colour), (PACE_ORDER, COLOUR_ORDER))
    d.use_all("object")
    d.use_all("topic")
    return f"{count_word(n)} {colour} bars play a {pace} melody"


def _ambience(d: _Draft) -> str:
    strength = d.first("strength")
    if strength is None and (implied := d.free("noun_strength")):  # "drizzle", "storm"
        i, sense = implied[0]
        strength = str(sense.value)
        d.use(i, f"{strength} rain")
    backdrop, chosen = None, None
    for start, end in d.phrases:  # the first backdrop phrase naming a backdrop colour
        colours = [s for s in (d.spans[i].sense("backdrop") for i in range(start, end)) if s is not None]
        if colours:
            backdrop, chosen = str(colours[0].value), range(start, end)
            break
    if backdrop is None:
        backdrop = d.first("backdrop")
    strength, backdrop = d.fill(
        ("strength", "backdrop"), (strength, backdrop), (STRENGTH_ORDER, BACKDROP_ORDER)
    )
    if chosen is not None:
        words, said = " ".join(d.spans[i].text for i in chosen), f"against a {backdrop} background"
        d.used.update(chosen)
        if words != said:
            d.mapped[chosen.start] = (words, said)
    d.use_all("object")
    d.use_all("topic")
    return f"{strength} rain falls against a {backdrop} background"


CAPTIONS: dict[str, Callable[[_Draft], str]] = {
    "talk": _talk,
    "bounce": _bounce,
    "keys": _keys,
    "ambience": _ambience,
}
_WORLD = "a talking face, bouncing balls, bars playing a melody or rain"


def rewrite_prompt(text: str) -> Rewrite:
    """``text`` as a caption of avgen-synth's grammar (see the module docstring), or a ``Rewrite`` whose
    caption is None when ``text`` is not about that world. Deterministic: a pure function of ``text``."""
    rest, quoted = split_quotes(text)
    spans = spans_of(rest)
    phrases = mark_backdrops(spans)
    family = family_of(spans, bool(spoken_phrase(quoted)))
    if family is None:
        return Rewrite(text, None, explanation=f"names nothing of avgen-synth's world ({_WORLD})")
    draft = _Draft(family, spans, phrases, quoted)
    caption = CAPTIONS[family](draft)

    dropped: dict[int, str] = {}
    for start, end in phrases:
        if not draft.used.issuperset(range(start, end)):
            dropped[start] = " ".join(s.text for s in spans[start:end])
    unknown = []
    for i, span in enumerate(spans):
        structural = bool(span.senses) and all(s.kind in STRUCTURAL for s in span.senses)
        if i in draft.used or span.backdrop >= 0 or structural:
            continue
        dropped[i] = span.text
        if not span.senses:
            unknown.append(span.text)
    placed = len(draft.used) + (family == "talk" and bool(spoken_phrase(quoted)))
    if len(unknown) >= placed:
        return Rewrite(
            text,
            None,
            dropped=tuple(unknown),
            explanation=f"mostly words outside avgen-synth's world ({_WORLD}): {', '.join(unknown)}",
        )
    if family != "talk":
        dropped.update({len(spans) + k: f'"{shown([q])}"' for k, q in enumerate(quoted)})
    mapped = tuple(draft.mapped[i] for i in sorted(draft.mapped))
    drops = tuple(dropped[i] for i in sorted(dropped))
    defaults = tuple(draft.defaults.items())
    if caption == text:
        explanation = f"already an avgen-synth {family} caption"
    else:
        parts = [", ".join(f"{a} -> {b}" for a, b in mapped)] if mapped else []
        parts += [f"dropped {', '.join(drops)}"] if drops else []
        parts += [f"defaults {', '.join(f'{k} {v}' for k, v in defaults)}"] if defaults else []
        parts += draft.notes or ([] if parts else ["case and word order"])
        explanation = f"as an avgen-synth {family} caption: {'; '.join(parts)}"
    return Rewrite(text, caption, family, mapped, drops, defaults, explanation)
