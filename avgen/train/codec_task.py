"""What codec training does per step, for audio (EnCodec) and video (causal VAE).

A task holds its clips in memory (loaded once), draws random crops with its own generator, computes
one micro-batch's loss and evaluates on whole held-out clips. The generic loop (``avgen.train.loop``)
owns the optimizer, schedule, EMA, checkpoints and distribution; see its ``Task`` protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn

from avgen.codecs.audio import EncodecCodec
from avgen.codecs.losses import (
    AudioLossWeights,
    VideoLossWeights,
    audio_reconstruction_loss,
    video_vae_loss,
)
from avgen.codecs.video_vae import CausalVideoVAE
from avgen.data.maps import VIDEO_MASKS
from avgen.errors import AVGenError
from avgen.train.codec_data import to_signed, whole_clip
from avgen.train.codec_eval import evaluate_audio, evaluate_video
from avgen.train.discriminator import (
    DiscriminatorConfig,
    MultiScaleSTFTDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from avgen.train.distributed import micro_batch_size


class VideoAutoencoder(nn.Module):
    """The VAE's training forward as ``forward`` (so DDP sees it): sample the posterior, decode."""

    def __init__(self, vae: CausalVideoVAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``x (B, 3, T, H, W)`` in [-1, 1] -> (reconstruction, posterior mean, posterior logvar)."""
        mean, logvar = self.vae.encode_dist(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        return self.vae.decode_raw(z), mean, logvar


class AudioAutoencoder(nn.Module):
    """EnCodec's training forward (encoder -> decoder, no quantiser) as ``forward``."""

    def __init__(self, codec: EncodecCodec) -> None:
        super().__init__()
        self.codec = codec

    def forward(self, x: Tensor) -> Tensor:
        """``x (B, C, N)`` in [-1, 1] -> reconstruction ``(B, C, N)`` (unclamped)."""
        return self.codec.decode_raw(self.codec.encode_raw(x))[..., : x.shape[-1]]


class _CropTask:
    """What both codec tasks share for the loop: every step draws random crops of in-memory clips from one
    generator, so the checkpoint needs only that generator's state (no data position, no extra keys)."""

    gen: torch.Generator

    def checkpoint_keys(self) -> set[str] | None:
        return None

    def generators(self) -> dict[str, torch.Generator]:
        return {"data": self.gen}

    def data_state(self) -> dict[str, Any]:
        return {}

    def load_data_state(self, state: dict[str, Any]) -> None:
        pass


class VideoTask(_CropTask):
    """Causal VAE training: L1 + SSIM + KL on random (crop_frames, crop_size, crop_size) crops; a weighted
    L1 weighs the pixels of the dataset's "objects" and "mouth" masks (``avgen.data.maps.VIDEO_MASKS``).
    ``fit_stats``: refit the latent mean/std at export (off when the encoder is frozen)."""

    name = "video_codec"

    def __init__(
        self,
        vae: CausalVideoVAE,
        train: Sequence[Tensor],
        held_out: Sequence[Tensor],
        *,
        batch_size: int,
        crop_frames: int,
        crop_size: int,
        weights: VideoLossWeights,
        fit_stats: bool = True,
        eval_clips: int = 32,
        stats_clips: int = 64,
        seed: int = 0,
        rank: int = 0,
    ) -> None:
        vae.latent_shape(crop_frames, crop_size, crop_size)  # ClipError now rather than mid-training
        too_small = [
            tuple(v.shape) for v in train if v.shape[1] < crop_frames or min(v.shape[2:]) < crop_size
        ]
        if too_small:
            raise AVGenError(
                f"{len(too_small)} training clips are smaller than the crop, e.g. {too_small[0]}"
            )
        self.model = VideoAutoencoder(vae)
        self.train, self.held_out = list(train), list(held_out)
        self.batch_size, self.crop_frames, self.crop_size = batch_size, crop_frames, crop_size
        self.weights, self.eval_clips, self.stats_clips = weights, eval_clips, stats_clips
        self.fit_stats = fit_stats
        self.samples_per_step = batch_size
        self.aux_modules: dict[str, nn.Module] = {}
        self.aux_optimizers: dict[str, torch.optim.Optimizer] = {}
        self.gen = torch.Generator().manual_seed(seed * 1_000_003 + rank)
        self.exported_id: str | None = None

    def crops(self, n: int) -> Tensor:
        """(n, 3, crop_frames, crop_size, crop_size) float32 in [-1, 1], random clips, offsets and flips."""
        gen, out = self.gen, []
        for _ in range(n):
            v = self.train[int(torch.randint(len(self.train), (1,), generator=gen))]
            _, t, h, w = v.shape
            t0 = int(torch.randint(t - self.crop_frames + 1, (1,), generator=gen))
            y0 = int(torch.randint(h - self.crop_size + 1, (1,), generator=gen))
            x0 = int(torch.randint(w - self.crop_size + 1, (1,), generator=gen))
            crop = v[:, t0 : t0 + self.crop_frames, y0 : y0 + self.crop_size, x0 : x0 + self.crop_size]
            if bool(torch.rand((), generator=gen) < 0.5):
                crop = crop.flip(-1)
            out.append(crop)
        return to_signed(torch.stack(out))

    def next_batches(self, ctx: Any, grad_accum: int) -> list[Tensor]:
        n = micro_batch_size(self.batch_size, ctx.world_size, grad_accum)
        return [self.crops(n).to(ctx.device) for _ in range(grad_accum)]

    def loss(self, model: nn.Module, x: Tensor, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        recon, mean, logvar = model(x)
        return video_vae_loss(recon, x, mean, logvar, self.weights, VIDEO_MASKS)

    def fresh_model(self) -> nn.Module:
        return VideoAutoencoder(CausalVideoVAE(self.model.vae.config))

    def evaluate(self, model: nn.Module, step: int, out: Path) -> dict[str, float]:
        return evaluate_video(model.vae, self.held_out[: self.eval_clips])

    @torch.no_grad()
    def export(self, model: nn.Module, folder: Path) -> None:
        """Fit latent mean/std on (up to ``stats_clips``) training clips, write ``folder/codec``. Without
        ``fit_stats`` (a frozen encoder) the codec's own stats are kept, so its latents stay exactly those a
        DiT was trained on."""
        vae = model.vae.eval()
        ts, ss = vae.temporal_downsample, vae.spatial_downsample
        if self.fit_stats:
            clips = self.train[: self.stats_clips]
            vae.stats.fit(vae.encode_dist(whole_clip(v, ts, ss))[0] for v in clips)
        vae.save_pretrained(folder / "codec")
        self.exported_id = vae.codec_id


class AudioTask(_CropTask):
    """EnCodec training: waveform L1 + multi-res STFT + multi-res mel, optional MS-STFT discriminator.

    The discriminator is stepped inside ``loss`` (once per micro-batch, from ``disc_start`` on).
    """

    name = "audio_codec"

    def __init__(
        self,
        codec: EncodecCodec,
        train: Sequence[Tensor],
        held_out: Sequence[Tensor],
        *,
        held_out_families: Sequence[str | None] | None = None,
        batch_size: int,
        crop_seconds: float,
        weights: AudioLossWeights,
        adversarial: bool = False,
        disc_start: int = 0,
        disc_lr: float = 3e-4,
        eval_clips: int = 32,
        stats_clips: int = 64,
        seed: int = 0,
        rank: int = 0,
    ) -> None:
        self.model = AudioAutoencoder(codec)
        self.train, self.held_out = list(train), list(held_out)
        self.held_out_families = list(held_out_families) if held_out_families is not None else None
        self.batch_size, self.samples_per_step = batch_size, batch_size
        self.crop = max(
            codec.hop_length, round(crop_seconds * codec.sample_rate) // codec.hop_length * codec.hop_length
        )
        self.weights, self.eval_clips, self.stats_clips = weights, eval_clips, stats_clips
        self.adversarial, self.disc_start = adversarial, disc_start
        self.aux_modules: dict[str, nn.Module] = {}
        self.aux_optimizers: dict[str, torch.optim.Optimizer] = {}
        if adversarial:
            self.disc = MultiScaleSTFTDiscriminator(DiscriminatorConfig(channels=codec.channels))
            self.aux_modules["disc"] = self.disc
            self.aux_optimizers["disc"] = torch.optim.AdamW(
                self.disc.parameters(), lr=disc_lr, betas=(0.5, 0.9)
            )
        self.gen = torch.Generator().manual_seed(seed * 1_000_003 + rank)
        self.exported_id: str | None = None

    def crops(self, n: int) -> Tensor:
        """(n, C, crop) float32 in [-1, 1]; clips shorter than the crop are zero-padded; random gain."""
        gen, out = self.gen, []
        for _ in range(n):
            for _attempt in range(8):  # prefer crops with sound: silent ones teach little (and SC is 0/0)
                a = self.train[int(torch.randint(len(self.train), (1,), generator=gen))]
                s = int(torch.randint(max(1, a.shape[-1] - self.crop + 1), (1,), generator=gen))
                c = a[:, s : s + self.crop]
                if float(c.pow(2).mean()) > 1e-6:
                    break
            c = torch.nn.functional.pad(c, (0, self.crop - c.shape[-1]))
            gain = 10 ** (float(torch.empty(()).uniform_(-6, 0, generator=gen)) / 20)  # -6..0 dB
            out.append(c * gain)
        return torch.stack(out)

    def next_batches(self, ctx: Any, grad_accum: int) -> list[Tensor]:
        n = micro_batch_size(self.batch_size, ctx.world_size, grad_accum)
        return [self.crops(n).to(ctx.device) for _ in range(grad_accum)]

    def loss(self, model: nn.Module, x: Tensor, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        recon = model(x)
        loss, logs = audio_reconstruction_loss(recon, x, self.model.codec.sample_rate, self.weights)
        if self.adversarial and step >= self.disc_start:
            d_opt = self.aux_optimizers["disc"]
            d_loss = discriminator_loss(self.disc(x), self.disc(recon.detach()))
            d_opt.zero_grad(set_to_none=True)  # also clears what the last generator loss left in D
            d_loss.backward()
            d_opt.step()
            real, fake = self.disc(x), self.disc(recon)
            adv, fm = generator_adversarial_loss(fake), feature_matching_loss(real, fake)
            loss = loss + self.weights.adversarial * adv + self.weights.feature_matching * fm
            logs.update(d_loss=d_loss.detach(), adv=adv.detach(), fm=fm.detach())
        return loss, logs

    def fresh_model(self) -> nn.Module:
        return AudioAutoencoder(EncodecCodec(self.model.codec.config))

    def evaluate(self, model: nn.Module, step: int, out: Path) -> dict[str, float]:
        families = self.held_out_families[: self.eval_clips] if self.held_out_families is not None else None
        return evaluate_audio(model.codec, self.held_out[: self.eval_clips], families)

    @torch.no_grad()
    def export(self, model: nn.Module, folder: Path) -> None:
        """Latent mean/std from training clips, RVQ codebooks by k-means on their frames; ``folder/codec``."""
        codec = model.codec.eval()
        raws = [codec.encode_raw(a[None]) for a in self.train[: self.stats_clips]]
        codec.stats.fit(raws)
        frames = torch.cat([rearrange(r, "b d l -> (b l) d") for r in raws])
        if frames.shape[0] >= codec.config.codebook_size:
            g = torch.Generator().manual_seed(0)  # not the global RNG: exporting must not change training
            pick = torch.randperm(frames.shape[0], generator=g)[: 16 * codec.config.codebook_size]
            codec.fit_codebooks(frames[pick])
        codec.save_pretrained(folder / "codec")
        self.exported_id = codec.codec_id
