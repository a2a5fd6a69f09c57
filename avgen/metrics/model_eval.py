"""Quality of a trained pipeline on held-out avgen-synth prompts: sync, adherence, per task.

For ``per_family`` test-split samples of each family (rendered in-process at the model's clip geometry,
seeds 0, 1, 2, ... of the "test" split, whose captions never occur in training) this generates:

- ``t2av``: audio and video from the caption;
- ``a2v``: video from the caption and the test clip's own sound (speech for talk, impacts for bounce);
- ``v2a``: sound from the caption and the test clip's own frames;
- ``codec``: the test clip through both codecs (``AVPipeline.reconstruct``): the ceiling any generated clip
  can reach in the codecs' latent space;

and scores every result with ``avgen.metrics.prompted`` (caption-only, as a user's clip would be scored),
next to the ground-truth clips themselves (``gt``). Per task and family the report gives:

- talk: lip-sync lag (ms, positive = audio late) median and share within one frame of 0, correlation at lag
  0, and the same correlation for shuffled pairs (clip i's mouth against clip i+1's sound) as the floor;
  and whether the found faces draw a mouth that moves at all: the share of frames with a mouth-coloured
  pixel in the mouth box, and the standard deviation of the opening over the clip (pixels), each a mean
  over the clips with a face, and the share of those whose opening changes at all (the correlation is a
  mean over these alone). A face drawn without a mouth has no lip sync to find, whatever its sound;
  and whether the sound says the caption's phrase (``avgen.metrics.speech``, PocketSphinx from the eval
  extra): the share of clips where forced alignment picks it among ``speech_candidates`` (all 54 fixed
  phrases, chance 1/54; or the split's composed pool, a few hundred), its median rank there, and the word
  error rate of free decoding (None without pocketsphinx);
- bounce: impact F1 and AV-Align, and AV-Align as a ratio of the ground-truth clips' mean, each next to its
  chance level (shuffled pairs; peaks shifted at random), and the mean count per clip of audio onsets and of
  visible impacts: a generator that makes twice the events of real clips scores at chance as well as it;
- talk, bounce, keys: the share of clips showing the caption's colour(s) (and the asked ball count);
- every family: how steady the picture is, as the mean change between consecutive frames (8-bit levels),
  and for bounce how much a tracked ball's area varies from frame to frame (``avgen.metrics.synth``): a
  generator whose balls flicker as blobs draws spurious impacts, so this is read next to the event counts;
- every family: the share of clips whose backdrop is one the renderer draws behind the asked colours, and
  for bounce the share of frames that show a round flat-coloured ball and little else (``avgen.metrics.scene``).
"""

from __future__ import annotations

import functools
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from avgen.atomic import write_text
from avgen.clip import AVClip
from avgen.config import to_dict
from avgen.data.synth import SynthConfig, make_sample, sample_family
from avgen.data.synth.captions import PHRASE_POOLS, TEST_PHRASES, TRAIN_PHRASES, phrases
from avgen.data.synth.spec import SPLITS
from avgen.diffusion.settings import SamplingConfig
from avgen.errors import ConfigError
from avgen.io import write_av
from avgen.metrics.av_align import av_align, chance_iou
from avgen.metrics.prompted import score_prompted
from avgen.metrics.report import write_json
from avgen.metrics.scene import scene_scores
from avgen.metrics.speech import (
    MAX_CANDIDATES,
    caption_speech,
    speech_available,
    speech_markdown,
    summarize_speech,
)
from avgen.metrics.synth import frame_change, frame_rms, impact_f1, lip_sync, mouth_openness, parse_caption

TASKS = ("t2av", "a2v", "v2a", "codec")
SCORED_FAMILIES = ("talk", "bounce", "keys")
PHRASES = tuple(dict.fromkeys(TRAIN_PHRASES + TEST_PHRASES))  # the candidates under the "fixed" pool


def speech_candidates(phrase_pool: str, split: str) -> tuple[str, ...]:
    """The phrases a talk clip's speech is identified among: PHRASES (all 54, whatever the split) for the
    "fixed" pool; the split's own pool for "composed" (a few hundred for val and test)."""
    return PHRASES if phrase_pool == "fixed" else phrases(split, phrase_pool)


@dataclass(frozen=True)
class ModelEvalConfig:
    """``per_family`` prompts per family of avgen-synth's ``split``; clips of ``seconds`` at ``size``
    (height, width) and ``fps``.

    ``sampling``: overrides of the pipeline's ``SamplingConfig`` by field name (empty: the pipeline's
    own settings). ``batch``: text-to-audio-video prompts per call. Report on ``split="test"``; tune
    settings on ``"val"`` (its captions differ from the test split's), so test numbers stay held out.
    ``phrase_pool``: what the talk clips say (``SynthConfig.phrase_pool``); speech is identified among
    ``speech_candidates(phrase_pool, split)``.
    """

    per_family: int = 32
    families: tuple[str, ...] = SCORED_FAMILIES
    tasks: tuple[str, ...] = TASKS
    size: tuple[int, int] = (64, 64)
    seconds: float = 2.0
    fps: int = 24
    batch: int = 8
    seed: int = 0
    save_clips: bool = False
    split: str = "test"
    sampling: dict[str, Any] = field(default_factory=dict)
    phrase_pool: str = "fixed"

    def __post_init__(self) -> None:

        if self.split not in SPLITS:
            raise ConfigError(f"split {self.split!r}: choose from {SPLITS}")
        if self.phrase_pool not in PHRASE_POOLS:
            raise ConfigError(f"phrase_pool {self.phrase_pool!r}: choose from {PHRASE_POOLS}")
        SamplingConfig().replace(**self.sampling)  # unknown names and bad values fail here, by name
        if self.per_family < 2:
            raise ConfigError(
                f"per_family must be >= 2 (shuffled pairs need two clips), got {self.per_family}"
            )
        if bad := [f for f in self.families if f not in SCORED_FAMILIES]:
            raise ConfigError(f"families {bad}: choose from {SCORED_FAMILIES}")
        if bad := [t for t in self.tasks if t not in TASKS]:
            raise ConfigError(f"tasks {bad}: choose from {TASKS}")
        if self.batch < 1:
            raise ConfigError(f"batch must be >= 1, got {self.batch}")


def test_samples(cfg: ModelEvalConfig, sample_rate: int, max_seeds: int = 100_000) -> list[Any]:
    """The first ``per_family`` SynthSamples of ``cfg.split`` of each family in ``cfg.families``, by seed."""
    synth = SynthConfig(
        sizes=(tuple(cfg.size),),
        fps=cfg.fps,
        sample_rate=sample_rate,
        durations=(cfg.seconds,),
        phrase_pool=cfg.phrase_pool,
    )
    want = dict.fromkeys(cfg.families, cfg.per_family)
    out = []
    for seed in range(max_seeds):
        if not any(want.values()):
            return out
        family = sample_family(seed, cfg.split, synth)  # render only the clips that are wanted
        if want.get(family, 0) > 0:
            want[family] -= 1
            out.append(make_sample(seed, cfg.split, synth))
    raise ConfigError(
        f"found too few {cfg.split} samples of {[f for f, n in want.items() if n]} in {max_seeds} seeds"
    )


def score_clip(
    video: np.ndarray,
    fps: int,
    audio: np.ndarray,
    sample_rate: int,
    caption: str,
    *,
    speech: bool = True,
    candidates: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Caption-only scores, AV-Align, and the per-frame mouth/sound curves for shuffled lip-sync pairs;
    for talk, whether the speech says the quoted phrase among ``candidates`` (default PHRASES;
    ``score_speech``; None values unless ``speech``)."""
    row = score_prompted(video, fps, audio, sample_rate, caption)
    if row["family"] == "talk":
        pool = PHRASES if candidates is None else candidates
        row.update(caption_speech(audio, sample_rate, caption, pool if speech else None))
    row["frame_change"] = round(frame_change(video), 4)
    row.update(scene_scores(video, row["family"], parse_caption(caption)["colors"]))
    align = av_align(video, fps, audio, sample_rate)
    row["av_align"] = align.score
    if row["family"] == "bounce":  # the same peak densities with no sync (random circular shifts)
        row["av_align_chance"] = chance_iou(align.audio_peaks, align.video_peaks, fps, len(video) / fps)
    if row.get("face"):
        row["openness"] = mouth_openness(video, row["face"]["mouth_center"], row["face"]["radius"]).tolist()
    row["envelope"] = frame_rms(audio, sample_rate, fps, len(video)).tolist()
    return row


def _mean(xs: list[float | None]) -> float | None:
    vals = [float(x) for x in xs if x is not None and np.isfinite(x)]
    return round(statistics.fmean(vals), 4) if vals else None


def _shuffled(rows: list[dict[str, Any]], score: Callable[[dict, dict], float | None]) -> float | None:
    """Mean of ``score(clip i, clip i+1)`` over cyclic pairs: what a score reaches with no sync."""
    if len(rows) < 2:
        return None
    return _mean([score(r, rows[(i + 1) % len(rows)]) for i, r in enumerate(rows)])


def _shuffled_correlation(rows: list[dict[str, Any]], fps: int) -> float | None:
    """Mean lag-0 correlation of clip i's mouth with clip i+1's sound (cyclic): the no-sync floor."""
    faces = [r for r in rows if r.get("openness") is not None]
    return _shuffled(
        faces, lambda r, o: lip_sync(np.asarray(r["openness"]), np.asarray(o["envelope"]), fps)["correlation"]
    )


def _mouth_drawn(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Over the clips with a face: ``mouth_shown``, the mean share of frames with any mouth-coloured pixel
    in the mouth box; ``mouth_opening_std``, the mean standard deviation of the opening (pixels); and
    ``mouth_moving``, the share of them whose opening changes at all: the clips the lip-sync correlation
    is a mean over (a constant opening has none)."""
    curves = [np.asarray(r["openness"], np.float64) for r in rows if r.get("openness") is not None]
    curves = [c for c in curves if len(c)]
    return {
        "mouth_shown": _mean([float((c > 0).mean()) for c in curves]),
        "mouth_opening_std": _mean([float(c.std()) for c in curves]),
        "mouth_moving": round(sum(bool(np.ptp(c) > 0) for c in curves) / len(curves), 4) if curves else None,
    }


def _shuffled_impact_f1(rows: list[dict[str, Any]], fps: int) -> float | None:
    """Mean impact F1 of clip i's impacts against clip i+1's onsets (cyclic): what events as dense as
    these reach by chance. A ball with no track still scores 0, as in ``impact_f1``."""
    return _shuffled(
        rows, lambda r, o: impact_f1(r["impact"]["impact_times"], o["impact"]["onset_times"], fps)["f1"]
    )


def summarize(rows: list[dict[str, Any]], fps: int, gt_av_align: float | None = None) -> dict[str, Any]:
    """Aggregate one task's rows of one family (see the module docstring for what is reported)."""
    family = rows[0]["family"]
    out: dict[str, Any] = {"clips": len(rows)}
    if family == "talk":
        syncs = [r["lip_sync"] for r in rows]
        lags = [s["lag_ms"] for s in syncs if s and s["lag_ms"] is not None]
        frame_ms = 1000.0 / fps
        out.update(
            face_found=round(sum(s is not None for s in syncs) / len(rows), 4),
            lag_ms_median=round(statistics.median(lags), 2) if lags else None,
            within_one_frame=round(sum(abs(lag) <= frame_ms + 1e-6 for lag in lags) / len(rows), 4),
            correlation=_mean([s["correlation"] if s else None for s in syncs]),
            shuffled_correlation=_shuffled_correlation(rows, fps),
            **_mouth_drawn(rows),
        )
        out.update(summarize_speech(rows))
    if family == "bounce":
        out["impact_f1"] = _mean([r["impact"]["f1"] for r in rows])
        out["impact_f1_shuffled"] = _shuffled_impact_f1(rows, fps)
        out["av_align"] = _mean([r["av_align"] for r in rows])
        out["av_align_chance"] = _mean([r.get("av_align_chance") for r in rows])
        if gt_av_align and out["av_align"] is not None:
            out["av_align_vs_gt"] = round(out["av_align"] / gt_av_align, 4)
        out["onsets_per_clip"] = round(statistics.mean(len(r["impact"]["onset_times"]) for r in rows), 2)
        out["impacts_per_clip"] = round(statistics.mean(len(r["impact"]["impact_times"]) for r in rows), 2)
        out["ball_area_cv"] = _mean([r.get("ball_area_cv") for r in rows])
    out["frame_change"] = _mean([r.get("frame_change") for r in rows])
    out["background_ok"] = round(sum(bool(r.get("background_ok")) for r in rows) / len(rows), 4)
    if family == "bounce":
        out["ball_round"] = _mean([r.get("ball_round") for r in rows])
    prompts = [r["prompt"] for r in rows if r.get("prompt")]
    if prompts:
        out["color_ok"] = round(sum(p["color_ok"] for p in prompts) / len(prompts), 4)
        counts = [p["count_ok"] for p in prompts if p["count_ok"] is not None]
        out["count_ok"] = round(sum(counts) / len(counts), 4) if counts else None
    return out


def _fmt(x: Any) -> str:
    return "n/a" if x is None else (f"{x:.3g}" if isinstance(x, float) else str(x))


def summary_markdown(report: dict[str, Any]) -> str:
    """The report's summary as markdown tables: talk (lip sync), bounce (impacts, AV-Align), colour."""
    summary, tasks = report["summary"], list(report["summary"])
    lines = []
    if any("talk" in summary[t] for t in tasks):
        lines += [
            "| talk | clips | face found | lag median (ms) | within 1 frame | corr. at lag 0 | shuffled pairs "
            "| mouth shown | opening std (px) | mouth moves |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for t in tasks:
            s = summary[t].get("talk")
            if s:
                lines.append(
                    f"| {t} | {s['clips']} | {_fmt(s['face_found'])} | {_fmt(s['lag_ms_median'])} | "
                    f"{_fmt(s['within_one_frame'])} | {_fmt(s['correlation'])} | {_fmt(s['shuffled_correlation'])} | "
                    f"{_fmt(s.get('mouth_shown'))} | {_fmt(s.get('mouth_opening_std'))} | "
                    f"{_fmt(s.get('mouth_moving'))} |"
                )
        config = report.get("config", {})
        candidates = speech_candidates(config.get("phrase_pool", "fixed"), config.get("split", "test"))
        lines += [
            "",
            *speech_markdown(
                {t: summary[t].get("talk") for t in tasks}, min(len(candidates), MAX_CANDIDATES)
            ),
            "",
        ]
    if any("bounce" in summary[t] for t in tasks):
        lines += [
            "| bounce | clips | impact F1 | shuffled pairs | AV-Align | AV-Align chance | AV-Align / ground truth "
            "| onsets / clip | impacts / clip |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for t in tasks:
            s = summary[t].get("bounce")
            if s:
                ratio = s.get("av_align_vs_gt", 1.0 if t == "gt" else None)
                f1s = f"{_fmt(s['impact_f1'])} | {_fmt(s.get('impact_f1_shuffled'))}"
                align = f"{_fmt(s['av_align'])} | {_fmt(s.get('av_align_chance'))}"
                events = f"{_fmt(s.get('onsets_per_clip'))} | {_fmt(s.get('impacts_per_clip'))}"
                lines.append(f"| {t} | {s['clips']} | {f1s} | {align} | {_fmt(ratio)} | {events} |")
        lines.append("")
    families = [f for f in SCORED_FAMILIES if any(f in summary[t] for t in tasks)]
    lines += [
        "| change between frames (0-255) | " + " | ".join(families) + " | ball area variation |",
        "|---|" + "---|" * (len(families) + 1),
    ]
    for t in tasks:
        cells = [_fmt(summary[t].get(f, {}).get("frame_change")) for f in families]
        cells.append(_fmt(summary[t].get("bounce", {}).get("ball_area_cv")))
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    for title, key, extra in (
        ("caption colour shown (count right)", "color_ok", "count_ok"),
        ("backdrop right (ball shown, share of frames)", "background_ok", "ball_round"),
    ):
        lines += ["", f"| {title} | " + " | ".join(families) + " |", "|---|" + "---|" * len(families)]
        for t in tasks:
            cells = [_score_cell(summary[t].get(f, {}), key, extra) for f in families]
            lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _score_cell(scores: dict, key: str, extra: str) -> str:
    """``scores[key]``, with ``scores[extra]`` in brackets where the family has it."""
    more = f" ({_fmt(scores[extra])})" if scores.get(extra) is not None else ""
    return f"{_fmt(scores.get(key))}{more}"


def _generate(pipe: Any, task: str, samples: list[Any], cfg: ModelEvalConfig) -> list[Any]:
    """One AVClip per sample for ``task`` (t2av in batches of ``cfg.batch``)."""
    common = {**cfg.sampling, "progress": False}
    if task == "t2av":
        clips = []
        for i in range(0, len(samples), cfg.batch):
            chunk = samples[i : i + cfg.batch]
            clips += pipe(
                [s.caption for s in chunk],
                seconds=cfg.seconds,
                height=cfg.size[0],
                width=cfg.size[1],
                fps=cfg.fps,
                seed=cfg.seed + i,
                **common,
            )
        return clips
    if task == "codec":
        return [pipe.reconstruct(s.clip) for s in samples]
    out = []
    for i, s in enumerate(samples):
        if task == "a2v":
            given = AVClip(audio=s.clip.audio, sample_rate=s.clip.sample_rate)
            out.append(
                pipe(
                    s.caption,
                    audio=given,
                    height=cfg.size[0],
                    width=cfg.size[1],
                    fps=cfg.fps,
                    seed=cfg.seed + i,
                    **common,
                )
            )
        else:
            given = AVClip(video=s.clip.video, fps=s.clip.fps)
            out.append(pipe(s.caption, video=given, seed=cfg.seed + i, **common))
    return out


def _save_clip(out: Path, task: str, index: int, family: str, clip: Any) -> None:
    """``out/clips/TASK/NNN_FAMILY.mp4`` (the ground-truth clips under ``gt``), folders made as needed."""
    folder = out / "clips" / task
    folder.mkdir(parents=True, exist_ok=True)
    write_av(folder / f"{index:03d}_{family}.mp4", clip, overwrite=True)


def evaluate_model(
    pipe: Any, cfg: ModelEvalConfig, out: Path | None = None, *, progress: bool = True
) -> dict[str, Any]:
    """Generate and score (see the module docstring); writes ``out/report.json`` (+ clips) when ``out``.

    Returns ``{"config", "summary": {task: {family: {...}}}, "seconds", "rows": {task: [...]}}``.
    """
    start = time.perf_counter()
    samples = test_samples(cfg, pipe.audio_codec.sample_rate)
    rows: dict[str, list[dict[str, Any]]] = {"gt": []}
    save = out is not None and cfg.save_clips
    speech = speech_available()
    score = functools.partial(
        score_clip, speech=speech, candidates=speech_candidates(cfg.phrase_pool, cfg.split)
    )
    if "talk" in cfg.families and not speech:
        print("note: no pocketsphinx, so no phrase/WER scores: pip install 'avgen[eval]'", file=sys.stderr)
    for i, s in enumerate(samples):
        clip = s.clip
        rows["gt"].append(score(clip.video, cfg.fps, clip.audio, clip.sample_rate, s.caption))
        if save:
            _save_clip(out, "gt", i, rows["gt"][-1]["family"], clip)
    timings = {}
    for task in tqdm(cfg.tasks, desc="tasks", disable=not progress):
        t0 = time.perf_counter()
        clips = _generate(pipe, task, samples, cfg)
        timings[task] = round(time.perf_counter() - t0, 2)
        rows[task] = []
        for i, (s, clip) in enumerate(zip(samples, clips, strict=True)):
            rows[task].append(score(clip.video, cfg.fps, clip.audio, clip.sample_rate, s.caption))
            if save:
                _save_clip(out, task, i, rows[task][-1]["family"], clip)
    summary: dict[str, dict[str, Any]] = {}
    for task, task_rows in rows.items():
        summary[task] = {}
        for family in cfg.families:
            fam = [r for r in task_rows if r["family"] == family]
            gt = summary.get("gt", {}).get(family, {}).get("av_align")
            summary[task][family] = summarize(fam, cfg.fps, gt)
    report = {
        "config": {k: v for k, v in vars(cfg).items()},
        "pipeline": getattr(pipe.config, "name", None),
        "sampling": to_dict(pipe.config.sampling.replace(**cfg.sampling)),
        "summary": summary,
        "generation_seconds": timings,
        "seconds": round(time.perf_counter() - start, 2),
        "rows": {
            t: [{k: v for k, v in r.items() if k not in ("openness", "envelope")} for r in rs]
            for t, rs in rows.items()
        },
    }
    if out is not None:
        write_json(out / "report.json", report)

        write_text(out / "report.md", summary_markdown(report))
    return report
