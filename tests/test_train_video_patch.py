"""A joint model over a video VAE without temporal compression: ``joint.model.video_patch`` packs several
latent frames per token, the exported pipeline keeps the layout and generates clips of the asked length."""

from __future__ import annotations

import pytest

from avgen.codecs.video_vae import CausalVideoVAE, VideoVAEConfig
from avgen.errors import ConfigError
from avgen.train.joint_config import JointModelConfig
from avgen.train.recipe import load_recipe, run

RECIPE = """
task: joint
loop: {{steps: 2, lr: 1.0e-3, warmup: 1, log_every: 1, eval_every: 2, ckpt_every: 2, num_threads: 1}}
joint:
  batch_size: 2
  val_batches: 1
  model: {{preset: tiny, video_codec: {vae}, audio_codec: tiny, text_encoder: tiny, text_max_length: 64,
          video_patch: [4, 2, 2]}}
  data: {{n: 4, val_n: 2, size: [32, 32], duration: 1.0, cache_dir: {cache}}}
"""


def test_per_frame_vae_with_temporal_token_patches(tmp_path):
    from avgen.pipeline import AVPipeline

    cfg = VideoVAEConfig(latent_channels=4, channels=(8, 8, 8), temporal_down=(False, False))
    vae = CausalVideoVAE(cfg).eval()
    assert vae.temporal_downsample == 1
    vae.save_pretrained(tmp_path / "vae")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(vae=tmp_path / "vae", cache=tmp_path / "latents"))
    assert run(load_recipe(recipe, out=str(tmp_path / "run")), progress=False)["status"] == "done"

    pipe = AVPipeline.from_pretrained(tmp_path / "run" / "pipeline")
    spec = pipe.dit.config.tokens
    assert spec.video_patch == (4, 2, 2) and spec.video_dim == 4 * 4 * 2 * 2
    clip = pipe("a red ball bounces", seconds=1.0, steps=2, seed=0)
    assert clip.video.shape[0] == 24 and clip.video.shape[1:3] == (32, 32)  # every frame its own latent


def test_bad_token_patches_fail_by_name():
    with pytest.raises(ConfigError, match="video_patch"):
        JointModelConfig(video_codec="tiny", audio_codec="tiny", video_patch=(0, 2, 2))
    with pytest.raises(ConfigError, match="audio_patch"):
        JointModelConfig(video_codec="tiny", audio_codec="tiny", audio_patch=0)
    with pytest.raises(ConfigError, match="video_patch"):
        JointModelConfig(video_codec="tiny", audio_codec="tiny", dit={"tokens": {}})
