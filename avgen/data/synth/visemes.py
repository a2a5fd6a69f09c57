"""espeak-ng phoneme mnemonics -> mouth shapes (visemes), from how each sound is made, not its loudness."""

from __future__ import annotations

# name -> (openness, width), both in [0, 1]: jaw opening, and lip spread (0 = rounded, 1 = spread).
VISEMES: dict[str, tuple[float, float]] = {
    "rest": (0.0, 0.5),  # silence: lips together
    "closed": (0.0, 0.55),  # bilabials p b m: lips pressed shut
    "lip-teeth": (0.12, 0.6),  # f v: lower lip under the teeth
    "open": (1.0, 0.75),  # open vowels: a, father, cup, cat, eye, now
    "mid": (0.6, 0.7),  # mid vowels: bed, say, about, bird
    "spread": (0.3, 1.0),  # close front vowels and y: see, sit, yes
    "round": (0.5, 0.2),  # rounded: food, good, go, boy, saw, w
    "tongue": (0.25, 0.6),  # t d n s z l r th sh ch j: teeth nearly together
    "back": (0.4, 0.6),  # k g ng h: mouth loosely open
}
_EXACT: dict[str, str] = {}
for _name, _phonemes in {
    "closed": "p b m",
    "lip-teeth": "f v",
    "open": "a a# A: A@ aI aU V { aI@ aU@ aI3 0",
    "mid": "e E e@ eI @ @- @2 @5 3: 3 @L E2 e#",
    "spread": "i i: I I2 I# i@ i@3 j",
    "round": "u: U U@ w O: O@ o@ oU OI o O 0# u",
    "tongue": "T D t d n s z l r S Z tS dZ t# d# r- l/ l#",
    "back": "k g N h x ?",
}.items():
    for _p in _phonemes.split():
        _EXACT[_p] = _name
_VOWEL_START = set("aAeEiIoOuUV@3{0")


def viseme_of(phoneme: str) -> str:
    """The viseme name of an espeak-ng phoneme mnemonic (stress marks ignored; pauses give "rest")."""
    p = phoneme.lstrip("',%=")
    if not p or p.startswith("_"):
        return "rest"
    for key in (p, p[:2], p[:1]):
        if key in _EXACT:
            return _EXACT[key]
    return "mid" if p[0] in _VOWEL_START else "tongue"


def is_pause(phoneme: str) -> bool:
    return phoneme.lstrip("',%=").startswith("_") or not phoneme.strip()
