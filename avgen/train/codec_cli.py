"""``avgen codec train | eval | info``: train a codec on a media folder, measure one, describe one."""

from __future__ import annotations

import argparse
import json
import sys
import time

from avgen.codecs import load_codec
from avgen.codecs.latent_stats import is_audio_codec
from avgen.train.codec import config_from_args, threads_from_env, train_codec
from avgen.train.codec_data import load_audio_clips, load_video_clips
from avgen.train.codec_eval import evaluate_audio, evaluate_video


def _train(args: argparse.Namespace) -> int:
    cfg = config_from_args(
        args.config,
        args.set or [],
        kind=args.kind,
        steps=args.steps,
        batch_size=args.batch_size,
        num_threads=threads_from_env() or None,
    )
    t0 = time.perf_counter()
    families = None  # per-clip synth family of the held-out audio, for per-family SI-SNR
    if cfg.kind == "video":
        train = load_video_clips(args.data, args.limit)
        held = load_video_clips(args.eval_data, args.eval_limit) if args.eval_data else []
    else:
        sr, ch = cfg.audio.sample_rate, cfg.audio.channels
        train, _ = load_audio_clips(args.data, sr, ch, args.limit)
        held, families = (
            load_audio_clips(args.eval_data, sr, ch, args.eval_limit) if args.eval_data else ([], [])
        )
    print(
        f"loaded {len(train)} training and {len(held)} held-out clips in {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    metrics = train_codec(
        cfg,
        train,
        held,
        args.out,
        resume=args.resume,
        progress=not args.no_progress,
        held_out_families=families,
    )
    print(json.dumps(metrics, indent=2))
    return 0


def _eval(args: argparse.Namespace) -> int:
    codec = load_codec(args.codec).eval()
    if is_audio_codec(codec):
        clips, families = load_audio_clips(args.data, codec.sample_rate, codec.channels, args.limit)
        metrics = evaluate_audio(codec, clips, families)
    else:
        metrics = evaluate_video(codec, load_video_clips(args.data, args.limit))
    print(
        json.dumps(
            {"codec": str(args.codec), "codec_id": codec.codec_id, "data": str(args.data), **metrics},
            indent=2,
        )
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    codec = load_codec(args.codec)
    info = {
        "class": type(codec).__name__,
        "codec_id": codec.codec_id,
        "latent_channels": codec.latent_channels,
        "parameters": sum(p.numel() for p in codec.parameters()),
    }
    if is_audio_codec(codec):
        info.update(
            sample_rate=codec.sample_rate,
            channels=codec.channels,
            hop_length=codec.hop_length,
            latent_rate=codec.latent_rate,
            num_quantizers=codec.num_quantizers,
        )
    else:
        info.update(
            temporal_downsample=codec.temporal_downsample, spatial_downsample=codec.spatial_downsample
        )
    print(json.dumps(info, indent=2))
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="avgen codec", description="train, evaluate and describe latent codecs"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    tr = sub.add_parser(
        "train", help="train the audio (EnCodec) or video (causal VAE) codec on a media folder"
    )
    tr.add_argument(
        "--kind", choices=("audio", "video"), help="which codec (default: from --config, else video)"
    )
    tr.add_argument("--data", required=True, help="folder of training media (e.g. avgen-synth train split)")
    tr.add_argument("--eval-data", help="folder of held-out media, evaluated periodically and at the end")
    tr.add_argument("--out", required=True, help="run folder: checkpoints, log.jsonl, codec/, metrics.json")
    tr.add_argument("--config", help="YAML with CodecTrainConfig fields")
    tr.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a field, e.g. video.latent_channels=32"
    )
    tr.add_argument("--steps", type=int)
    tr.add_argument("--batch-size", type=int)
    tr.add_argument("--limit", type=int, help="use only the first N training files")
    tr.add_argument("--eval-limit", type=int, help="use only the first N held-out files")
    tr.add_argument("--resume", action="store_true", help="continue from --out/checkpoints/latest.json")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to log.jsonl)")
    tr.set_defaults(func=_train)

    ev = sub.add_parser("eval", help="held-out metrics of a codec folder: PSNR/SSIM or SI-SNR/mel distance")
    ev.add_argument(
        "--codec", required=True, help="codec folder (save_pretrained, or a Hugging Face EnCodec folder)"
    )
    ev.add_argument("--data", required=True, help="folder of media to measure on")
    ev.add_argument("--limit", type=int, help="use only the first N files")
    ev.set_defaults(func=_eval)

    info = sub.add_parser("info", help="describe a codec folder")
    info.add_argument("codec")
    info.set_defaults(func=_info)
    # (listed for --help; ``avgen codec stats`` itself is routed to avgen.codecs.stats_cli by avgen.cli)
    sub.add_parser("stats", help="per-channel latent mean/std of a codec over a media folder, stored with it")

    args = parser.parse_args(argv)
    return int(args.func(args))
