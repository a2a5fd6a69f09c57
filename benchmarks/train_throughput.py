"""Training throughput of the joint model (tokens/s, samples/s) through the real loop and joint task.

Random-weight codecs with the default configs (16 video / 32 audio latent channels) stand in for the
trained ones (throughput does not depend on codec weights); the text encoder is the offline MiniLM.
The clips are avgen-synth 64x64, 2 s at 24 fps: 208 video + 50 audio = 258 tokens per clip.

    OMP_NUM_THREADS=2 python benchmarks/train_throughput.py --preset default --batch 16 --steps 30

``--precision fp32,bf16`` times each precision in turn in one process (same clips, same model), so the
ratio is not at the mercy of a shared machine's load between runs; bf16 autocast on a CPU only pays
where it has bf16 instructions (``lscpu``: avx512_bf16 or amx_bf16). A ``+compile`` suffix
(``--precision bf16,bf16+compile``) trains with ``loop.compile`` (the DiT's blocks through ``torch.compile``);
its compile time lands in the warmup steps, reported apart as ``first_step_s``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup-steps", type=int, default=5, help="steps excluded from the measurement")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--precision", default="fp32", help="comma-separated: fp32, bf16 (autocast), each optionally +compile"
    )
    p.add_argument("--checkpointing", action="store_true", help="gradient checkpointing in the DiT")
    p.add_argument(
        "--codecs",
        help="a pipeline folder whose video and audio codecs to use (e.g. avgen/weights/avgen-tiny); "
        "default: random-weight codecs of the default configs",
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="a model variant to time, as overrides of joint.model (repeatable), e.g. "
        """'x222={"video_patch": [2, 2, 2], "dit": {"prediction": "x"}}'; each precision is timed on each""",
    )
    args = p.parse_args()
    variants = dict(parse_variant(v) for v in args.variant) or {"default": {}}

    from avgen.codecs.audio import EncodecCodec
    from avgen.codecs.encodec_config import EncodecCodecConfig
    from avgen.codecs.video_vae import CausalVideoVAE, VideoVAEConfig
    from avgen.config import from_dict
    from avgen.train.joint import JointTask
    from avgen.train.joint_config import JointConfig
    from avgen.train.loop import train
    from avgen.train.loop_config import LoopConfig

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.codecs:
            video, audio = Path(args.codecs) / "video_codec", Path(args.codecs) / "audio_codec"
        else:
            torch.manual_seed(0)
            video, audio = root / "video", root / "audio"
            CausalVideoVAE(VideoVAEConfig()).save_pretrained(video)
            EncodecCodec(EncodecCodecConfig()).save_pretrained(audio)
        runs = [
            (name, overrides, precision)
            for name, overrides in variants.items()
            for precision in args.precision.split(",")
        ]
        for i, (name, overrides, variant) in enumerate(runs):
            model = {
                "preset": args.preset,
                "video_codec": str(video),
                "audio_codec": str(audio),
                **overrides,
                "dit": {"gradient_checkpointing": args.checkpointing, **overrides.get("dit", {})},
            }
            cfg = from_dict(
                JointConfig,
                {
                    "batch_size": args.batch,
                    "val_batches": 0,
                    "model": model,
                    "data": {"n": args.batch * 2, "val_n": 0, "size": [64, 64], "duration": 2.0},
                },
            )
            precision, _, extra = variant.partition("+")
            if extra not in ("", "compile"):
                raise SystemExit(f"--precision: unknown suffix {extra!r} in {variant!r}; only +compile")
            torch.manual_seed(0)
            t0 = time.perf_counter()
            task = JointTask(cfg)
            setup = time.perf_counter() - t0
            total = args.warmup_steps + args.steps
            loop = LoopConfig(
                steps=total,
                warmup=1,
                log_every=1,
                eval_every=0,
                ckpt_every=total,
                ema_decay=0.999,
                precision=precision,
                compile=extra == "compile",
            )
            run = root / f"run_{i}_{precision}{'_compile' if extra else ''}"
            train(task, loop, run, progress=False)
            records = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
            timed = [r for r in records if "loss" in r and r["step"] > args.warmup_steps]
            sec = sum(1 / r["steps_per_s"] for r in timed)
            params = sum(p.numel() for p in task.model.parameters())
            per_clip = round(timed[0]["tokens_per_s"] / timed[0]["steps_per_s"] / args.batch)
            result = {
                "variant": name,
                "model_overrides": overrides,
                "preset": args.preset,
                "precision": precision,
                "compile": extra == "compile",
                "first_step_s": 1 / records[0]["steps_per_s"],
                "parameters": params,
                "batch": args.batch,
                "tokens_per_clip": per_clip,
                "threads": args.threads,
                "gradient_checkpointing": args.checkpointing,
                "measured_steps": len(timed),
                "sec_per_step": sec / len(timed),
                "samples_per_s": args.batch * len(timed) / sec,
                "tokens_per_s": args.batch * per_clip * len(timed) / sec,
                "final_loss": timed[-1]["loss"],
                "setup_s (encode clips, text)": setup,
                "torch": torch.__version__,
                "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            }
            print(json.dumps(result, indent=2))


def parse_variant(text: str) -> tuple[str, dict]:
    """``NAME=JSON`` -> (name, overrides of joint.model)."""
    name, sep, body = text.partition("=")
    try:
        overrides = json.loads(body) if sep else None
    except json.JSONDecodeError as e:
        raise SystemExit(f"--variant {text!r}: the part after '=' is not JSON ({e})") from None
    if not name or not isinstance(overrides, dict):
        raise SystemExit(f"--variant {text!r}: expected NAME={{JSON object of joint.model overrides}}")
    return name, overrides


if __name__ == "__main__":
    main()
