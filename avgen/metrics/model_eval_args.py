"""The command-line flags of a model evaluation (``avgen eval model``, ``avgen eval curve``) and the
``ModelEvalConfig`` they give."""

from __future__ import annotations

import argparse

from avgen.data.synth.captions import PHRASE_POOLS
from avgen.diffusion import settings
from avgen.metrics.model_eval import ModelEvalConfig


def add_model_eval_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``avgen eval model`` that choose what is generated and how (``model_eval_config``
    reads them); shared by ``avgen eval curve``."""
    p.add_argument("--per-family", type=int, default=32, help="prompts per family (default 32)")
    p.add_argument("--families", default="talk,bounce,keys", help="comma-separated: talk,bounce,keys")
    p.add_argument(
        "--tasks",
        default="t2av,a2v,v2a,codec",
        help="comma-separated: t2av,a2v,v2a (generated), codec (test clips through the codecs: the ceiling)",
    )
    p.add_argument("--batch", type=int, default=8, help="text-to-audio-video prompts per call")
    p.add_argument(
        "--split", default="test", choices=("val", "test"), help="prompts from: test (report) or val (tuning)"
    )
    p.add_argument(
        "--phrase-pool",
        default="fixed",
        choices=PHRASE_POOLS,
        help="what the talk prompts say: fixed (54 phrases) or composed (sentences with held-out words)",
    )
    p.add_argument("--device", default="cpu")
    settings.add_arguments(p)


def model_eval_config(args: argparse.Namespace, save_clips: bool = False) -> ModelEvalConfig:
    """The ``ModelEvalConfig`` of ``add_model_eval_arguments``' flags."""
    return ModelEvalConfig(
        per_family=args.per_family,
        families=tuple(f for f in args.families.split(",") if f),
        tasks=tuple(t for t in args.tasks.split(",") if t),
        batch=args.batch,
        save_clips=save_clips,
        split=args.split,
        phrase_pool=args.phrase_pool,
        sampling=settings.from_arguments(args),
    )
