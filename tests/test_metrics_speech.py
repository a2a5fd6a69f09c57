"""Intelligibility scores: word error rate in closed form, phrase identification on real espeak-ng speech,
the error without pocketsphinx, and the talk rows of the model evaluation."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest

from avgen.errors import ClipError
from avgen.metrics import speech
from avgen.metrics.speech import (
    caption_speech,
    speech_markdown,
    summarize_speech,
    to_pcm16,
    word_error_rate,
)

# Ten phrases of avgen-synth's pool, 2 to 4 words, among them the short ones forced alignment favours.
CANDIDATES = (
    "good morning",
    "thank you very much",
    "open the door",
    "the cat is sleeping",
    "one two three",
    "a big red bus",
    "happy birthday",
    "turn on the light",
    "close the window",
    "well done",
)


def test_word_error_rate_closed_forms() -> None:
    assert word_error_rate("the cat is sleeping", "the cat is sleeping") == 0.0
    assert word_error_rate("the cat is sleeping", "the dog is sleeping") == 0.25  # one substitution
    assert word_error_rate("the cat is sleeping", "the cat sleeping") == 0.25  # one deletion
    assert word_error_rate("the cat is sleeping", "the cat is is sleeping") == 0.25  # one insertion
    assert word_error_rate("good night", "") == 1.0  # every word deleted
    assert word_error_rate("yes", "no no no") == 3.0  # a substitution and two insertions
    assert word_error_rate("Hello, there!", "hello there") == 0.0  # case and punctuation ignored
    assert word_error_rate("a b c d", "b c d a") == 0.5  # a deletion and an insertion, not 4 substitutions
    with pytest.raises(ClipError, match="no words"):
        word_error_rate(" ,. ", "anything")


def test_pcm_is_16khz_mono_int16() -> None:
    stereo = np.stack([np.full(22050, 0.5, np.float32), np.full(22050, 1.5, np.float32)])  # mean 1.0
    pcm = np.frombuffer(to_pcm16(stereo, 22050), "<i2")
    assert len(pcm) == 16000  # one second
    assert np.abs(pcm[100:-100].astype(int) - 32767).max() <= 1  # mixed to mono, clipped to [-1, 1]
    with pytest.raises(ClipError, match="whole number"):
        to_pcm16(stereo, 22050.5)


def test_summaries_of_speech_rows() -> None:
    rows = [
        {"phrase_identified": True, "phrase_rank": 1, "wer": 0.5},
        {"phrase_identified": False, "phrase_rank": 4, "wer": 1.0},
        {"phrase_identified": False, "phrase_rank": 9, "wer": 1.5},
        {"phrase_identified": None, "phrase_rank": None, "wer": None},  # not scored: left out
    ]
    got = summarize_speech(rows)
    assert got == {"phrase_identified": 0.3333, "phrase_rank_median": 4.0, "wer": 1.0}
    assert summarize_speech(rows[3:]) == dict.fromkeys(("phrase_identified", "phrase_rank_median", "wer"))
    table = speech_markdown({"gt": {"clips": 3, **got}, "t2av": None}, 54)
    assert table[0].startswith("| talk: speech | clips | phrase identified (chance 0.019) |")
    assert table[2:] == ["| gt | 3 | 0.333 | 4 | 1 |"]
    # nothing quoted, or no recognizer: every value None
    none = dict.fromkeys(("phrase_identified", "phrase_rank", "transcript", "wer"))
    assert caption_speech(np.zeros((1, 160), np.float32), 16000, 'a red face says "hi"', None) == none
    assert caption_speech(np.zeros((1, 160), np.float32), 16000, "a red face", CANDIDATES) == none


def test_missing_pocketsphinx_names_the_extra(monkeypatch) -> None:
    from avgen.metrics._deps import MissingDependencyError

    speech._decoder.cache_clear()  # a decoder built by another test would hide the missing import
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)  # `import pocketsphinx` raises ImportError
    try:
        assert not speech.speech_available()
        with pytest.raises(MissingDependencyError, match=r"pocketsphinx.*pip install 'avgen\[eval\]'"):
            speech.identify_phrase(np.full(1600, 0.1, np.float32), 16000, CANDIDATES)
        with pytest.raises(MissingDependencyError, match="pocketsphinx"):
            speech.transcribe(np.full(1600, 0.1, np.float32), 16000)
    finally:
        speech._decoder.cache_clear()


def test_identify_phrase_on_espeak_speech() -> None:
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("espeakng_loader")
    from avgen.data.synth.speech import synthesize

    # Measured: en-us picks all 10 of CANDIDATES (en+m1 and en-us+Denis 9, the miss ranked 2nd); pinned
    # with room on 5 of them, at espeak-ng's 22050 Hz (resampled inside) with silence around as in a clip.
    ranks = []
    for phrase in CANDIDATES[:5]:
        spoken = synthesize(phrase, voice="en-us", rate=170, pitch=50)
        pad = np.zeros(spoken.sample_rate // 4, np.float32)
        found = speech.identify_phrase(
            np.concatenate([pad, spoken.audio, pad]), spoken.sample_rate, CANDIDATES
        )
        assert set(found["ranks"]) == set(CANDIDATES) and found["score"] == found["scores"][found["phrase"]]
        assert found["ranks"][found["phrase"]] == 1 and sorted(found["ranks"].values())[0] == 1
        ranks.append(found["ranks"][phrase])
    assert sum(r == 1 for r in ranks) >= 4 and max(ranks) <= 3, ranks
    # duplicates and spellings count once; digital silence identifies nothing and transcribes to ""
    found = speech.identify_phrase(np.zeros(8000, np.float32), 16000, ["Well done!", "well done", "good job"])
    assert list(found["scores"]) == ["Well done!", "good job"] and found["phrase"] is None
    assert found["ranks"] == {"Well done!": 1, "good job": 1}
    assert speech.transcribe(np.zeros(8000, np.float32), 16000) == ""
    with pytest.raises(ClipError, match="dictionary"):
        speech.identify_phrase(pad, spoken.sample_rate, ["good morning", "glorbix frundle"])


def test_model_eval_talk_rows_score_speech(tmp_path, capsys, monkeypatch) -> None:
    pytest.importorskip("pocketsphinx")
    from avgen.metrics import model_eval
    from avgen.metrics.model_eval import PHRASES, ModelEvalConfig, evaluate_model
    from avgen.pipeline import tiny_pipeline

    cfg = ModelEvalConfig(
        per_family=2, families=("talk",), tasks=("codec",), size=(32, 32), seconds=1.0, sampling={"steps": 1}
    )
    assert len(PHRASES) == 54 and "good morning" in PHRASES and "good evening" in PHRASES  # train + test
    monkeypatch.setattr(model_eval, "PHRASES", CANDIDATES)  # fewer alignments (the clip's own is added)
    pipe = tiny_pipeline()
    report = evaluate_model(pipe, cfg, tmp_path, progress=False)
    for task in ("gt", "codec"):  # ground truth and the codec round trip, as for generated clips
        for row in report["rows"][task]:
            assert isinstance(row["phrase_identified"], bool) and 1 <= row["phrase_rank"] <= 11
            assert isinstance(row["transcript"], str) and row["wer"] >= 0
        talk = report["summary"][task]["talk"]
        assert 0 <= talk["phrase_identified"] <= 1 and talk["wer"] >= 0 and talk["phrase_rank_median"] >= 1
    assert "| talk: speech | clips | phrase identified" in (tmp_path / "report.md").read_text()
    assert "| codec | 2 |" in (tmp_path / "report.md").read_text()
    assert capsys.readouterr().err == ""

    # without pocketsphinx the evaluation still runs: None values and one note, not one per clip
    speech._decoder.cache_clear()
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)
    try:
        report = evaluate_model(pipe, dataclasses.replace(cfg, tasks=()), None, progress=False)
    finally:
        speech._decoder.cache_clear()
    assert capsys.readouterr().err.count("pocketsphinx") == 1
    assert all(r["phrase_identified"] is None and r["wer"] is None for r in report["rows"]["gt"])
    assert report["summary"]["gt"]["talk"]["phrase_identified"] is None
