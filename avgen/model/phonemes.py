"""Timed phonemes: what a clip says and when, as conditioning for the joint model.

A timeline is a sequence of ``(start, end, mnemonic)``: seconds on the clip's time axis (the axis of the
video and audio token positions) and an espeak-ng phoneme mnemonic (``"h"``, ``"@"``, ``"'oU"``). Stress
marks (``'`` primary, ``,`` secondary) become a separate stress id; pauses (``"_"``, ``"_:"``) are not
tokens (silence is where no phoneme is). ``Phonemes`` batches timelines as padded tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from avgen.errors import ConfigError
from avgen.model.layers import timestep_embedding

TimedPhoneme = tuple[float, float, str]
Timeline = Sequence[TimedPhoneme]

PAD, OTHER = 0, 1
# espeak-ng's English mnemonics (all its English voices), stress marks removed; id = index.
PHONEMES: tuple[str, ...] = (
    "<pad>",
    "<other>",
    # consonants
    *"p b t d k g f v T D s z S Z h m n N l r w j tS dZ ?".split(),
    # vowels and diphthongs
    *"a a# aa A: A@ aI aI2 aI@ aU aU@ e e# e@ eI E E2 i i: i@ i@3 I I2 I# IR".split(),
    *"0 O O: O@ O2 OI o@ oU u u: U U@ V VR 3 3: @ @2 @5 @L {".split(),
)
_INDEX = {p: i for i, p in enumerate(PHONEMES)}
STRESSES = ("", "'", ",")  # none, primary, secondary


def split_stress(mnemonic: str) -> tuple[str, int]:
    """``"'oU"`` -> ``("oU", 1)``: the mnemonic without stress marks and its stress id (see STRESSES)."""
    stress = 1 if "'" in mnemonic else 2 if "," in mnemonic else 0
    return mnemonic.lstrip("',%="), stress


def is_pause(mnemonic: str) -> bool:
    """Pauses and empty mnemonics: no token."""
    p = mnemonic.lstrip("',%=")
    return not p.strip() or p.startswith("_")


def phoneme_id(mnemonic: str) -> int:
    """The id of a mnemonic (stress ignored): exact, else its longest known prefix (``"t#"`` -> ``"t"``),
    else OTHER."""
    p, _ = split_stress(mnemonic)
    for n in range(len(p), 0, -1):
        if p[:n] in _INDEX:
            return _INDEX[p[:n]]
    return OTHER


@dataclass(frozen=True)
class Phonemes:
    """A batch of timelines: ``ids (B, P)`` long (PAD = no phoneme), ``stress (B, P)`` long, ``start`` and
    ``end (B, P)`` float32 seconds. Rows are padded at the end."""

    ids: Tensor
    stress: Tensor
    start: Tensor
    end: Tensor

    def __post_init__(self) -> None:
        shapes = {tuple(x.shape) for x in (self.ids, self.stress, self.start, self.end)}
        if len(shapes) != 1 or self.ids.ndim != 2:
            raise ConfigError(f"Phonemes: ids, stress, start, end must share one (B, P) shape, got {shapes}")

    @property
    def mask(self) -> Tensor:
        """``(B, P)`` bool, True where a phoneme is."""
        return self.ids != PAD

    def __len__(self) -> int:
        return self.ids.shape[0]

    @classmethod
    def from_timelines(cls, timelines: Sequence[Timeline]) -> Phonemes:
        """One row per timeline (an empty timeline is a row of padding); pauses are dropped. Each start and
        end must be finite with start < end."""
        rows = [[p for p in tl if not is_pause(p[2])] for tl in timelines]
        width = max((len(r) for r in rows), default=0)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        stress = torch.zeros_like(ids)
        start = torch.zeros(len(rows), width)
        end = torch.zeros(len(rows), width)
        for b, row in enumerate(rows):
            for i, (s, e, m) in enumerate(row):
                if not (float(s) < float(e) and abs(float(s)) < 1e6 and abs(float(e)) < 1e6):
                    raise ConfigError(
                        f"phoneme timeline {b}: phoneme {i} ({m!r}) spans {s}..{e} s; need finite start < end"
                    )
                ids[b, i], stress[b, i] = phoneme_id(m), split_stress(m)[1]
                start[b, i], end[b, i] = float(s), float(e)
        return cls(ids, stress, start, end)

    @classmethod
    def empty(cls, batch: int) -> Phonemes:
        """``batch`` rows without phonemes."""
        return cls.from_timelines([()] * batch)

    def to(self, device: torch.device | str) -> Phonemes:
        return Phonemes(*(x.to(device) for x in (self.ids, self.stress, self.start, self.end)))

    def repeat(self, n: int) -> Phonemes:
        """Each row repeated ``n`` times (``B -> B * n``, row-major), like ``TextStates.repeat``."""
        return Phonemes(*(x.repeat_interleave(n, 0) for x in (self.ids, self.stress, self.start, self.end)))

    @staticmethod
    def cat(parts: Sequence[Phonemes]) -> Phonemes:
        """Concatenate along the batch, padding shorter rows."""
        width = max(p.ids.shape[1] for p in parts)

        def pad(x: Tensor) -> Tensor:
            return F.pad(x, (0, width - x.shape[1]))

        return Phonemes(
            *(torch.cat([pad(getattr(p, name)) for p in parts]) for name in ("ids", "stress", "start", "end"))
        )


class PhonemeEmbedder(nn.Module):
    """``Phonemes`` -> conditioning tokens ``(B, P, D)``: the phoneme, its stress and its duration. Where a
    token sits in time is not in its features: attention reads it from the token's RoPE time."""

    def __init__(self, dim: int, duration_dim: int = 64) -> None:
        super().__init__()
        self.duration_dim = duration_dim
        self.ids = nn.Embedding(len(PHONEMES), dim)
        self.stress = nn.Embedding(len(STRESSES), dim)
        self.duration = nn.Linear(duration_dim, dim)

    def forward(self, phonemes: Phonemes) -> Tensor:
        seconds = (phonemes.end - phonemes.start).clamp(0, 10)
        dur = timestep_embedding(seconds, self.duration_dim).to(self.duration.weight.dtype)
        return self.ids(phonemes.ids) + self.stress(phonemes.stress) + self.duration(dur)
