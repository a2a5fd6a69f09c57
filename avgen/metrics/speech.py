"""Intelligibility of speech with an offline recognizer (PocketSphinx, from the ``eval`` extra).

Two measures for a clip whose phrase is known (avgen-synth's talk clips quote it in the caption):

- ``identify_phrase``: which of a set of candidate phrases the audio says. Each candidate is force-aligned to
  the whole clip (PocketSphinx's ``set_align_text``, silences and noises allowed between words) and scored
  by the acoustic log-likelihood of the clip along that alignment divided by the candidate's phone count.
  Every candidate explains the same frames, yet the raw sum favours short phrases (their few phones stretch
  and silence absorbs the rest). Measured on 120 ground-truth avgen-synth talk clips (2 s, val and test
  splits, 54 candidates): the raw sum picks the right phrase for 37 (right one in the top 3: 64), per phone
  for 73 (88); the raw sum's wrong picks have 6.3 phones where the truth has 9.7, per phone 10.1 vs 8.7.
- ``transcribe`` + ``word_error_rate``: free decoding with PocketSphinx's general US-English language model,
  and the word error rate of that against the phrase. Free decoding of short synthetic phrases is poor even
  on ground truth, so this is read as a ratio against the ground-truth row, not as an absolute.

PocketSphinx's acoustic model is 16 kHz US English; audio at any rate is mixed to mono and resampled.
Decoders are built once per process (about 1 s for the language model) and reused under a lock.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from einops import reduce

from avgen.dsp import resample
from avgen.errors import ClipError
from avgen.metrics._checks import check_audio, check_rate
from avgen.metrics._deps import MissingDependencyError, require

SAMPLE_RATE = 16_000  # PocketSphinx's en-us acoustic model
# Forced alignment of a mismatched voice falls off the default beams (no hypothesis reaches the last word);
# wide beams keep every candidate aligned, at ~20 ms per candidate for 2 s of audio.
_ALIGN = {"lm": None, "bestpath": False, "beam": 1e-200, "wbeam": 1e-200, "pbeam": 1e-200, "maxhmmpf": -1}
_LOCK = threading.Lock()  # a Decoder is stateful and not thread-safe


def speech_available() -> bool:
    """Whether PocketSphinx is installed (``pip install 'avgen[eval]'``)."""
    try:
        require("pocketsphinx")
    except MissingDependencyError:
        return False
    return True


@functools.cache
def _decoder(kind: str) -> Any:
    """The process's PocketSphinx decoder for ``kind``: "align" (no language model) or "transcribe"."""
    ps = require("pocketsphinx")
    options = _ALIGN if kind == "align" else {}
    return ps.Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", **options)


def words_of(text: str) -> list[str]:
    """Lower-case words, punctuation dropped (apostrophes kept): "Hello, there!" -> ["hello", "there"]."""
    return re.findall(r"[a-z0-9']+", text.lower())


def to_pcm16(audio: np.ndarray, sample_rate: int) -> bytes:
    """``audio`` (C, N) or (N,) float in [-1, 1] at ``sample_rate`` as 16 kHz mono 16-bit PCM bytes."""
    audio = check_audio(audio)
    rate = check_rate(sample_rate, "sample_rate")
    if rate != int(rate):
        raise ClipError(f"sample_rate: expected a whole number of Hz, got {sample_rate}")
    mono = reduce(torch.from_numpy(audio), "c n -> n", "mean")
    mono = resample(mono, int(rate), SAMPLE_RATE).clamp(-1.0, 1.0)
    return (mono.numpy() * 32767.0).round().astype("<i2").tobytes()


def _decode(decoder: Any, pcm: bytes) -> None:
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)  # the whole clip: cepstral mean from all of it
    decoder.end_utt()


def _align_score(decoder: Any, pcm: bytes, words: list[str]) -> float:
    """Acoustic log-likelihood of ``pcm`` along the forced alignment of ``words`` (their silences and
    noises included), per phone of the words; -inf when no alignment reaches the last word."""
    decoder.set_align_text(" ".join(words))
    _decode(decoder, pcm)
    hyp = decoder.hyp()
    if hyp is None or words_of(hyp.hypstr) != words:
        return -math.inf
    logmath = decoder.get_logmath()
    total, phones = 0.0, 0
    # ascore comes as a probability (1.0001 ** score): back to log units; no underflow at these sizes
    for seg in decoder.seg():
        if seg.ascore <= 0:
            return -math.inf
        total += logmath.log(seg.ascore)
        if not seg.word.startswith(("<", "[")):  # <sil>, [NOISE]: not the phrase's phones
            phones += len(decoder.lookup_word(seg.word).split())  # "job(2)": the pronunciation aligned
    return total / phones if phones else -math.inf


def identify_phrase(audio: np.ndarray, sample_rate: int, candidates: Sequence[str]) -> dict[str, Any]:
    """Which of ``candidates`` the speech in ``audio`` says, by forced alignment (see the module docstring).

    Args:
        audio: (C, N) or (N,) float in [-1, 1]; any rate, mixed to mono and resampled to 16 kHz.
        candidates: phrases whose words are all in PocketSphinx's US-English dictionary (duplicates and
            case/punctuation variants count once, by their first spelling).
    Returns:
        ``{"phrase": best candidate or None (none aligns), "score": its score, "scores": {candidate: score},
        "ranks": {candidate: rank}}``. Scores are PocketSphinx log-likelihood units per phone (higher is
        better, comparable within one clip only; -inf where the alignment failed, and all -inf for digital
        silence); rank 1 is the best, ties share the better rank.
    Raises:
        ClipError: no candidates, a candidate without words, or a word missing from the dictionary.
        MissingDependencyError: pocketsphinx is not installed.
    """
    unique: dict[tuple[str, ...], str] = {}
    for c in candidates:
        unique.setdefault(tuple(words_of(c)), c)  # the first spelling of a phrase stands for it
    if not unique:
        raise ClipError("identify_phrase: no candidate phrases")
    if () in unique:
        raise ClipError(f"identify_phrase: candidate {unique[()]!r} has no words")
    pcm = to_pcm16(audio, sample_rate)
    scores = dict.fromkeys(unique.values(), -math.inf)
    silent = not any(pcm)  # digital silence says nothing (per phone, the longest phrase would win)
    with _LOCK:
        decoder = _decoder("align")
        oov = sorted({w for ws in unique for w in ws if decoder.lookup_word(w) is None})
        if oov:
            raise ClipError(f"identify_phrase: words not in PocketSphinx's dictionary: {oov}")
        for words, phrase in unique.items():
            if not silent:
                scores[phrase] = _align_score(decoder, pcm, list(words))
    ranks = {c: 1 + sum(s > scores[c] for s in scores.values()) for c in scores}
    best = max(scores, key=scores.__getitem__)  # the first of equals
    aligned = math.isfinite(scores[best])
    return {"phrase": best if aligned else None, "score": scores[best], "scores": scores, "ranks": ranks}


def transcribe(audio: np.ndarray, sample_rate: int) -> str:
    """Free decoding of ``audio`` ((C, N) or (N,) float in [-1, 1], any rate) with PocketSphinx's US-English
    language model: lower-case words separated by spaces, "" when nothing is recognised."""
    pcm = to_pcm16(audio, sample_rate)
    if not any(pcm):
        return ""  # digital silence (PocketSphinx would hear a word in it)
    with _LOCK:
        decoder = _decoder("transcribe")
        _decode(decoder, pcm)
        hyp = decoder.hyp()
    return " ".join(words_of(re.sub(r"\(\d+\)", "", hyp.hypstr))) if hyp is not None else ""


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by Levenshtein distance over words
    (``words_of``: case and punctuation ignored). 0 is perfect; above 1 when the hypothesis adds words.

    Raises:
        ClipError: ``reference`` has no words.
    """
    ref, hyp = words_of(reference), words_of(hypothesis)
    if not ref:
        raise ClipError(f"word_error_rate: reference {reference!r} has no words")
    row = list(range(len(hyp) + 1))  # distances from ref[:0] to each prefix of hyp
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / len(ref)


MAX_CANDIDATES = 54  # a clip's phrase and at most 53 others: chance 1/54 whatever the pool's size


def candidates_for(phrase: str, candidates: Sequence[str], limit: int = MAX_CANDIDATES) -> list[str]:
    """``phrase`` and the others of ``candidates`` (different words), at most ``limit`` in all: from a larger
    pool the others are a sample fixed by ``phrase`` (sha256-seeded), so every model is scored against the
    same ones and alignment time stays bounded."""
    others = list(dict.fromkeys(c for c in candidates if words_of(c) != words_of(phrase)))
    if len(others) >= limit:
        seed = int.from_bytes(hashlib.sha256(phrase.encode()).digest()[:8], "little")
        picked = np.random.default_rng(seed).choice(len(others), size=limit - 1, replace=False)
        others = [others[i] for i in sorted(picked)]
    return [phrase, *others]


def score_speech(
    audio: np.ndarray, sample_rate: int, phrase: str, candidates: Sequence[str]
) -> dict[str, Any]:
    """One clip's intelligibility for a report row: ``{"phrase_identified": bool, "phrase_rank": int (1 =
    best of the candidates, ``phrase`` among them), "transcript": str, "wer": float}``. The candidates
    are ``candidates_for(phrase, candidates)``."""
    pool = candidates_for(phrase, candidates)
    found = identify_phrase(audio, sample_rate, pool)
    transcript = transcribe(audio, sample_rate)
    return {
        "phrase_identified": found["phrase"] == phrase,
        "phrase_rank": found["ranks"][phrase],
        "transcript": transcript,
        "wer": round(word_error_rate(phrase, transcript), 4),
    }


def caption_speech(
    audio: np.ndarray, sample_rate: int, caption: str, candidates: Sequence[str] | None
) -> dict[str, Any]:
    """``score_speech`` for the phrase quoted in an avgen-synth talk caption (``a round red face says "good
    night"``); every value None when ``candidates`` is None (pocketsphinx missing) or nothing is quoted."""
    quoted = re.search(r'"([^"]+)"', caption)
    if candidates is None or quoted is None or not words_of(quoted[1]):
        return dict.fromkeys(("phrase_identified", "phrase_rank", "transcript", "wer"))
    return score_speech(audio, sample_rate, quoted[1], candidates)


def summarize_speech(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Over the rows scored by ``score_speech``: ``phrase_identified`` (share), ``phrase_rank_median`` and
    ``wer`` (mean); each None when no row was scored."""
    scored = [r for r in rows if r.get("phrase_identified") is not None]
    if not scored:
        return dict.fromkeys(("phrase_identified", "phrase_rank_median", "wer"))
    return {
        "phrase_identified": round(sum(r["phrase_identified"] for r in scored) / len(scored), 4),
        "phrase_rank_median": float(np.median([r["phrase_rank"] for r in scored])),
        "wer": round(float(np.mean([r["wer"] for r in scored])), 4),
    }


def speech_markdown(summaries: dict[str, dict[str, Any] | None], candidates: int) -> list[str]:
    """Markdown table lines: one row per task of ``summarize_speech``'s keys (and ``clips``), with the chance
    level of identifying a phrase among ``candidates``."""

    def fmt(x: Any) -> str:
        return "n/a" if x is None else (f"{x:.3g}" if isinstance(x, float) else str(x))

    lines = [
        f"| talk: speech | clips | phrase identified (chance {1 / candidates:.3f}) "
        f"| phrase rank median (of {candidates}) | word error rate |",
        "|---|---|---|---|---|",
    ]
    for task, s in summaries.items():
        if s:
            said = f"{fmt(s.get('phrase_identified'))} | {fmt(s.get('phrase_rank_median'))}"
            lines.append(f"| {task} | {s.get('clips', 'n/a')} | {said} | {fmt(s.get('wer'))} |")
    return lines
