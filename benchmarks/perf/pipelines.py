"""Which pipeline a speed or quality benchmark runs: a folder, a shipped name, or a random stand-in.

``--pipeline`` takes a pipeline folder (``AVPipeline.save_pretrained``), a shipped name (``avgen-tiny``),
or ``random:tiny`` / ``random:default``: random weights built in-process and saved to a temporary folder
(so ``avgen generate --pipeline DIR`` can load the same thing in a child process). ``random:tiny`` is
``avgen.pipeline.tiny_pipeline()`` (for tests); ``random:default`` is the real size the shipped model will
have: the "default" JointDiT preset, the default video VAE and EnCodec configs and the offline MiniLM text
encoder, with the default ``PipelineConfig`` (64x64, 2 s, 24 fps, heun). Speed does not depend on the
weights; quality does, so quality benchmarks should name a trained pipeline.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

RANDOM = ("random:tiny", "random:default")


def random_default_pipeline(seed: int = 0) -> Any:
    """The shipped model's architecture with random weights (adaLN-zero layers made live)."""
    import torch

    from avgen.codecs.audio import EncodecCodec
    from avgen.codecs.encodec_config import EncodecCodecConfig
    from avgen.codecs.video_vae import CausalVideoVAE, VideoVAEConfig
    from avgen.model.dit import JointDiT, dit_config
    from avgen.model.text import TextEncoder, TextEncoderConfig
    from avgen.pipeline import AVPipeline, PipelineConfig
    from avgen.tokens import TokenSpec

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        video, audio = CausalVideoVAE(VideoVAEConfig()), EncodecCodec(EncodecCodecConfig())
        text = TextEncoder.from_config(TextEncoderConfig())
        spec = TokenSpec(video_channels=video.latent_channels, audio_channels=audio.latent_channels)
        dit = JointDiT(dit_config("default", tokens=spec, text_dim=text.dim))
        with torch.no_grad():
            for p in dit.parameters():
                p.add_(0.02 * torch.randn_like(p))
    return AVPipeline(dit, video, audio, text, PipelineConfig(name="random-default"))


def resolve(source: str, workdir: Path) -> tuple[str, str]:
    """A loadable name or folder for ``source`` and a description; ``random:*`` is built and saved under
    ``workdir``. A shipped name whose weights are missing raises avgen's CheckpointError."""
    if source not in RANDOM:
        from avgen.pipeline import SHIPPED, shipped_path

        if source in SHIPPED and not (shipped_path(source) / "pipeline.json").is_file():
            from avgen.errors import CheckpointError

            raise CheckpointError(
                f"{source}: its weights are not in this install yet; pass a pipeline folder, or "
                "--pipeline random:default to time the same architecture with random weights"
            )
        return source, source
    if source == "random:tiny":
        from avgen.pipeline import tiny_pipeline

        pipe = tiny_pipeline()
    else:
        pipe = random_default_pipeline()
    folder = workdir / source.replace(":", "-")
    pipe.save_pretrained(folder, overwrite=True)
    return str(folder), f"{source} (random weights, {pipe.config.name})"


def load(name_or_path: str, device: str = "cpu") -> Any:
    """``AVPipeline.from_pretrained`` (imported here, so the benchmark's own import stays cheap)."""
    from avgen.pipeline import AVPipeline

    return AVPipeline.from_pretrained(name_or_path, device=device)


def workdir() -> tempfile.TemporaryDirectory:
    """A temporary folder for random pipelines and outputs, removed when the benchmark ends."""
    return tempfile.TemporaryDirectory(prefix="avgen-perf-")
