"""Phoneme timelines (``avgen.model.phonemes``): from avgen-synth's ground-truth events for training, and
from espeak-ng for the quoted words of a prompt at generation.

A prompt's speech is what it quotes: ``'a round red face says "good morning"'`` says "good morning". At
generation espeak-ng (PyPI ``espeakng-loader``, the ``speech`` extra) gives each phoneme its duration at a
speaking rate, and the timeline starts at a chosen second; the model renders voice and mouth on that timing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from avgen.errors import ConfigError
from avgen.model.phonemes import TimedPhoneme

QUOTE = re.compile(r'"([^"]+)"')
DEFAULT_START = 0.3  # seconds of silence before the first word
DEFAULT_RATE = 180  # words per minute (the talk family speaks at 150-210)
MAX_RATE = 300
VOICE = "en-us+m1"


def quoted_speech(prompt: str) -> str | None:
    """The words a prompt quotes (several quotes joined by a space), None if it quotes nothing."""
    parts = [p.strip() for p in QUOTE.findall(prompt) if p.strip()]
    return " ".join(parts) if parts else None


def timeline_from_events(events: Sequence[Mapping[str, Any]], speech_end: float | None) -> list[TimedPhoneme]:
    """The phoneme timeline of an avgen-synth clip from its "phoneme" and "pause" events: each phoneme
    lasts until the next phoneme or pause, the last until ``speech_end`` (seconds)."""
    marks = sorted(
        (float(e["time"]), e["kind"], str(e.get("phoneme", "")))
        for e in events
        if e.get("kind") in ("phoneme", "pause")
    )
    out: list[TimedPhoneme] = []
    for i, (t, kind, mnemonic) in enumerate(marks):
        if kind != "phoneme":
            continue
        end = marks[i + 1][0] if i + 1 < len(marks) else speech_end
        if end is None or not end > t:
            end = t + 0.08  # the clip ends mid-phoneme: a typical phoneme's length
        out.append((round(t, 6), round(float(end), 6), mnemonic))
    return out


def speak_timeline(
    text: str,
    *,
    seconds: float,
    start: float | None = None,
    rate: int | None = None,
    voice: str = VOICE,
) -> list[TimedPhoneme]:
    """espeak-ng's phonemes of ``text``, the first sounding at ``start`` seconds, spoken at ``rate`` words per minute,
    to fit a clip of ``seconds``.

    Defaults: ``start`` DEFAULT_START (moved earlier if the words would not fit), ``rate`` DEFAULT_RATE
    (raised up to MAX_RATE if they would not fit). A given start or rate is kept as given; words that cannot
    fit raise ConfigError saying what would make them fit.
    """
    from avgen.data.synth.speech import synthesize

    if rate is not None and not 80 <= rate <= 450:
        raise ConfigError(f"speech_rate must be in [80, 450] words per minute, got {rate}")
    if start is not None and not 0 <= start < seconds:
        raise ConfigError(f"speech_start must be in [0, {seconds}) seconds (the clip), got {start}")
    spoken_rate = rate or DEFAULT_RATE
    while True:
        speech = synthesize(text, voice=voice, rate=spoken_rate, pitch=50)
        marks = [(s / speech.sample_rate, p) for s, p in speech.phonemes]
        # espeak pads both ends with silence: the words run from the first sounding phoneme to the pause
        # after the last; times count from the first (so ``start`` is when the first word begins)
        sounding = [t for t, p in marks if not p.lstrip("',%=").startswith("_")]
        first, last = min(sounding, default=0.0), max(sounding, default=0.0)
        spoken_end = next((t for t, p in marks if t > last), speech.duration) - first
        marks = [(t - first, p) for t, p in marks if t >= first]
        room = seconds - 0.05 - (DEFAULT_START if start is None else start)
        if spoken_end <= room or rate is not None or spoken_rate >= MAX_RATE:
            break
        spoken_rate = min(spoken_rate + 30, MAX_RATE)
    t0 = DEFAULT_START if start is None else start
    if start is None and t0 + spoken_end > seconds - 0.05:
        t0 = max(0.05, seconds - 0.05 - spoken_end)
    if t0 + spoken_end > seconds:
        raise ConfigError(
            f'the quoted words "{text}" take {spoken_end:.2f} s at {spoken_rate} words per minute and start at '
            f"{t0:.2f} s, past the {seconds:g} s clip: make the clip longer (seconds=), the quote shorter, or "
            "speak faster (speech_rate=)"
        )
    events = [
        {"kind": "pause" if p.startswith("_") else "phoneme", "time": t0 + t, "phoneme": p} for t, p in marks
    ]
    return timeline_from_events(events, t0 + spoken_end)


def prompt_timeline(
    prompt: str, *, seconds: float, start: float | None = None, rate: int | None = None
) -> list[TimedPhoneme]:
    """The timeline of what ``prompt`` quotes (``speak_timeline``), [] if it quotes nothing."""
    text = quoted_speech(prompt)
    return [] if text is None else speak_timeline(text, seconds=seconds, start=start, rate=rate)
