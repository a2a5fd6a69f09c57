"""A joint run's validation: flow losses per task on fixed draws, so any two runs compare, and sample clips
scored for sync."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from tqdm import tqdm

from avgen.diffusion.flow import FlowConfig
from avgen.errors import AVGenError, ConfigError
from avgen.io import write_av
from avgen.metrics.evaluate import evaluate_clip

if TYPE_CHECKING:  # (joint.py imports this module)
    from avgen.train.joint import JointTask

# Validation's fixed flow settings, one per task: one t per sample from logit-normal(0, 1), shift 1, for
# every run whatever it trained with; "v2a" gives the frames clean and scores the sound, "a2v" the reverse.
# The random draws do not depend on these settings, so every task sees the same t and noise per clip; they
# come from VALIDATION_SEED, not the run's seed, so every run sees them too.
VALIDATION_SEED = 0
VALIDATION_FLOWS: dict[str, tuple[FlowConfig, tuple[str, ...]]] = {
    "t2av": (FlowConfig(independent_prob=0.0, clean_prob=0.0), ("video", "audio")),
    "v2a": (FlowConfig(independent_prob=0.0, clean_prob=1.0, clean_modality="video"), ("audio",)),
    "a2v": (FlowConfig(independent_prob=0.0, clean_prob=1.0, clean_modality="audio"), ("video",)),
}


@torch.no_grad()
def validation_losses(run: JointTask, model: nn.Module) -> dict[str, Any]:
    """A ``JointTask``'s flow losses on its first ``val_batches`` validation batches, fixed noise, no caption
    dropout.

    ``val_loss``: the run's own flow settings (its clean share, timestep law and loss weights), so it
    tracks one run but does not compare runs trained with other settings. ``val_mse``: per task and
    modality, under ``VALIDATION_FLOWS`` with draws from ``VALIDATION_SEED`` (the same timesteps and
    noise for every run, whatever its seed, and every task), e.g.
    ``{"t2av": {"video": .., "audio": ..}, "v2a": {"audio": ..}, "a2v": {"video": ..}}``: these compare
    any two runs on the same validation clips. ``val_clips``: how many clips were scored.
    """
    val = run.val_set
    if val is None:
        raise ConfigError("joint.data has no validation clips (val_n is 0); set joint.data.val_n")
    model = model.to(run.device).eval()
    bs = run.cfg.batch_size
    by_bucket: dict[str, list[int]] = {}
    for i, b in enumerate(val.buckets):
        by_bucket.setdefault(b, []).append(i)
    chunks = [idx[s : s + bs] for idx in by_bucket.values() for s in range(0, len(idx), bs)]
    chunks = chunks[: run.cfg.val_batches]
    if not chunks:
        raise ConfigError("joint.val_batches is 0: set it above 0 to score validation clips")
    count = sum(len(c) for c in chunks)
    val_loss = 0.0
    mse = {task: dict.fromkeys(terms, 0.0) for task, (_, terms) in VALIDATION_FLOWS.items()}
    for chunk in tqdm(chunks, desc="validation", disable=not run.progress, leave=False):
        seeds = [run.sample_seed(-1, i) for i in chunk]  # the run's own seed: val_loss tracks one run
        loss, _ = run.batch_loss(model, val, chunk, seeds, 0.0)
        val_loss += float(loss) * len(chunk)
        fixed = [run.sample_seed(-1, i, seed=VALIDATION_SEED) for i in chunk]  # the same for every run
        for task, (flow, terms) in VALIDATION_FLOWS.items():
            _, logs = run.batch_loss(model, val, chunk, fixed, 0.0, flow=flow)
            for term in terms:
                mse[task][term] += float(logs[f"{term}_mse"]) * len(chunk)
    mse = {task: {term: total / count for term, total in terms.items()} for task, terms in mse.items()}
    return {"val_loss": val_loss / count, "val_mse": mse, "val_clips": count}


def write_samples(run: JointTask, model: nn.Module, step: int, out: Path) -> list[dict[str, Any]]:
    """A ``JointTask``'s first ``eval_samples`` validation captions generated with ``model``, as MP4 under
    ``out/samples/step_N/`` with their sync metrics (a missing optional metric dependency is recorded,
    never raised: it must not stop training)."""
    pipe = run.pipeline(model)
    folder = out / "samples" / f"step_{step:08d}"
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i, caption in enumerate(run.val_set.captions[: run.cfg.eval_samples]):
        clip = pipe(caption, seed=i, progress=False)
        path = write_av(folder / f"{i:02d}.mp4", clip, overwrite=True)
        record: dict[str, Any] = {"file": str(path), "caption": caption}
        try:
            record |= evaluate_clip(clip.video, float(clip.fps), clip.audio, clip.sample_rate).to_dict()
        except (
            ImportError,
            AVGenError,
        ) as e:  # a missing optional metric dependency must not stop training
            record["metrics_error"] = f"{type(e).__name__}: {e}"
        records.append(record)
    return records
