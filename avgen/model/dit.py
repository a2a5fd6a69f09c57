"""JointDiT: one transformer over a packed sequence of video patches and audio frames.

Pre-norm blocks of self-attention over the whole joint sequence (multi-axis RoPE on (t, h, w)),
cross-attention to text states, and an MLP. Modulation is adaLN-zero from each token's own timestep,
so video and audio can sit at different noise levels in one forward pass (a token at t = 0 is "given clean":
the conditioning of audio-to-video and video-to-audio). It is computed once per run of tokens that share a
modality and a timestep (two runs in text-to-audio-video), and per token only when the timesteps vary more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from avgen.config import from_dict, to_dict
from avgen.model.blocks import FinalLayer, JointBlock, SequenceContext, SpeechContext
from avgen.model.bridge import bridge_mask
from avgen.model.dit_config import GUIDANCE_SCALES, DiTConfig, dit_config
from avgen.model.layers import (
    GuidanceEmbedder,
    Modalities,
    RMSNorm,
    TimestepEmbedder,
    constant_runs,
    modulate,
    rope_angles,
    rope_tables,
    run_starts,
)
from avgen.model.phonemes import PhonemeEmbedder, Phonemes
from avgen.tokens import AUDIO, VIDEO, ShapeError, TokenSpec
from avgen.weights import load_weights, read_json, save_weights, write_json


class JointDiT(nn.Module):
    """The joint audio-video diffusion transformer; returns the flow velocity of every token.

    At init (adaLN-zero) every block is the identity and the last layer outputs exactly zero (the velocity
    with ``prediction="v"``, the clean tokens with "x").
    """

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = config
        d, spec = config.width, config.tokens
        b = config.video_bottleneck
        self.video_in = (
            nn.Sequential(nn.Linear(spec.video_dim, b), nn.Linear(b, d))
            if b
            else nn.Linear(spec.video_dim, d)
        )
        self.audio_in = nn.Linear(spec.audio_dim, d)
        self.modality_embed = nn.Embedding(2, d)
        self.time_embed = TimestepEmbedder(d)
        self.text_norm = RMSNorm(config.text_dim)
        self.text_proj = nn.Linear(config.text_dim, d)
        if config.phonemes:
            self.phoneme_embed = PhonemeEmbedder(d)
        if config.guidance_embed:
            self.guidance_embed = GuidanceEmbedder(d, len(GUIDANCE_SCALES))
        if config.modulation == "shared":
            self.shared_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        ends = config.modality_blocks
        self.blocks = nn.ModuleList(
            [
                JointBlock(config, per_modality=i < ends or i >= config.depth - ends)
                for i in range(config.depth)
            ]
        )
        self.final = FinalLayer(config)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier linears, small embeddings, and zeros on every modulation and the output (adaLN-zero)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.modality_embed.weight, std=0.02)
        if hasattr(self, "phoneme_embed"):
            nn.init.normal_(self.phoneme_embed.ids.weight, std=0.02)
            nn.init.normal_(self.phoneme_embed.stress.weight, std=0.02)
        for lin in self.time_embed.mlp:
            if isinstance(lin, nn.Linear):
                nn.init.normal_(lin.weight, std=0.02)
        zero = [self.final.modulation[1], self.final.video, self.final.audio]
        zero += [b.modulation[1] for b in self.blocks if hasattr(b, "modulation")]
        zero += [self.shared_modulation[1]] if hasattr(self, "shared_modulation") else []
        zero += [b.cross.proj for b in self.blocks]
        zero += [b.bridge.attn.proj for b in self.blocks if hasattr(b, "bridge")]
        zero += [b.speech.proj for b in self.blocks if hasattr(b, "speech")]
        zero += [self.guidance_embed.mlp[2]] if hasattr(self, "guidance_embed") else []
        for lin in zero:
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def _check(
        self, x: Tensor, t: Tensor, positions: Tensor, modality: Tensor, text: Tensor, mask: Tensor
    ) -> Tensor:
        spec = self.config.tokens
        if x.ndim != 3 or x.shape[-1] != spec.feature_dim:
            raise ShapeError(f"x must be (B, L, {spec.feature_dim}) packed tokens, got {tuple(x.shape)}")
        b, seq = x.shape[:2]
        if t.shape not in ((b,), (b, seq)):
            raise ShapeError(f"t must be (B,) or (B, L) = ({b},) or ({b}, {seq}), got {tuple(t.shape)}")
        if positions.shape not in ((seq, 3), (b, seq, 3)):
            raise ShapeError(f"positions must be ({seq}, 3) or ({b}, {seq}, 3), got {tuple(positions.shape)}")
        if modality.shape != (seq,) or modality.is_floating_point():
            raise ShapeError(
                f"modality must be ({seq},) integer ids (0 video, 1 audio), got {tuple(modality.shape)}"
            )
        if text.ndim != 3 or text.shape[0] != b or text.shape[2] != self.config.text_dim:
            raise ShapeError(
                f"text states must be ({b}, Lt, {self.config.text_dim}), got {tuple(text.shape)}"
            )
        if mask.shape != text.shape[:2] or mask.dtype != torch.bool:
            raise ShapeError(
                f"text_mask must be bool {tuple(text.shape[:2])}, got {mask.dtype} {tuple(mask.shape)}"
            )
        bad = ~torch.isfinite(x).all() | ~torch.isfinite(t).all() | ~torch.isfinite(text).all()
        bad = bad | ~mask.any(dim=1).all() | ((modality != VIDEO) & (modality != AUDIO)).any()
        if bad:  # note: one CPU-GPU sync point per forward
            if not mask.any(dim=1).all():
                raise ShapeError("text_mask has a row with no True entry; encode an empty prompt instead")
            if ((modality != VIDEO) & (modality != AUDIO)).any():
                raise ShapeError("modality ids must be 0 (video) or 1 (audio)")
            raise ShapeError("x, t or text states contain NaN or inf")
        return t[:, None].expand(b, seq) if t.ndim == 1 else t

    def _speech(self, phonemes: Phonemes | None, positions: Tensor, batch: int) -> SpeechContext:
        """The blocks' view of ``phonemes`` (None: no speech in any sample) for tokens at ``positions``."""
        cfg = self.config
        if phonemes is None:
            phonemes = Phonemes.empty(batch).to(positions.device)
        if len(phonemes) != batch:
            raise ShapeError(f"phonemes have {len(phonemes)} rows; expected {batch} (one per sample)")
        if not (torch.isfinite(phonemes.start).all() and torch.isfinite(phonemes.end).all()):
            raise ShapeError("phoneme start/end times contain NaN or inf")
        phonemes = phonemes.to(positions.device)

        def rope(times: Tensor) -> tuple[Tensor, Tensor]:  # (B or 1, N) seconds -> time-only tables
            pos = F.pad(rearrange(times, "b n -> b n 1"), (0, 2))
            return rope_tables(
                rope_angles(pos, cfg.rope_axes, cfg.rope_theta, (cfg.rope_time_scale, 1.0, 1.0))
            )

        token_t = positions[..., 0] if positions.ndim == 3 else positions[None, :, 0]  # (B or 1, L)
        mask = rearrange(phonemes.mask, "b p -> b 1 1 p")
        if cfg.phoneme_window > 0:
            tt = rearrange(token_t, "b l -> b 1 l 1")
            w = cfg.phoneme_window
            near = (tt >= rearrange(phonemes.start - w, "b p -> b 1 1 p")) & (
                tt <= rearrange(phonemes.end + w, "b p -> b 1 1 p")
            )
            mask = mask & near
        return SpeechContext(
            states=self.phoneme_embed(phonemes),
            rope_q=rope(token_t.float()),
            rope_k=rope((phonemes.start + phonemes.end) / 2),
            mask=mask,
        )

    def forward(
        self,
        x: Tensor,
        t: Tensor,
        positions: Tensor,
        modality: Tensor,
        text: Tensor,
        text_mask: Tensor,
        phonemes: Phonemes | None = None,
        guidance: Tensor | None = None,
    ) -> Tensor:
        """Velocity for packed tokens.

        ``x (B, L, F)`` noisy packed tokens (``avgen.tokens.pack``); ``t (B,)`` or ``(B, L)`` per-token
        time in [0, 1] (1 = pure noise, 0 = clean); ``positions (L, 3)`` or ``(B, L, 3)``; ``modality (L,)``;
        ``text (B, Lt, text_dim)`` states and ``text_mask (B, Lt)`` bool; ``phonemes``: B timed-phoneme rows
        for a model with ``config.phonemes`` (None = nothing said; ignored by a model without); ``guidance
        (B, 4)`` float: the ``GUIDANCE_SCALES`` of each sample, required by a model with
        ``config.guidance_embed`` and ignored by one without. Returns ``(B, L, F)`` float32, zero on the
        padded features.
        """
        t = self._check(x, t, positions, modality, text, text_mask)
        reads_guidance = self.config.guidance_embed
        if reads_guidance:
            want = (x.shape[0], len(GUIDANCE_SCALES))
            if guidance is None or tuple(guidance.shape) != want or not guidance.is_floating_point():
                got = None if guidance is None else tuple(guidance.shape)
                raise ShapeError(
                    f"this DiT reads guidance scales (guidance_embed): pass guidance {want}, the scales "
                    f"{GUIDANCE_SCALES} of each sample; got {got}"
                )
        cfg, spec = self.config, self.config.tokens
        modalities = Modalities.of(modality, VIDEO, AUDIO)
        h = modalities.apply(
            lambda xv: self.video_in(xv[..., : spec.video_dim]),
            lambda xa: self.audio_in(xa[..., : spec.audio_dim]),
            x,
        )
        h = h + self.modality_embed(modality)  # (B, L, D)
        runs = constant_runs(t, modality)  # e.g. [video tokens, audio tokens], or None: per token
        c = self.time_embed(t if runs is None else t[:, run_starts(runs)])  # (B, S, D), S = L or runs
        if reads_guidance:
            c = c + rearrange(self.guidance_embed(guidance.to(c.device)), "b d -> b 1 d")
        c_blocks = self.shared_modulation(c) if cfg.modulation == "shared" else c  # (B, S, 6D) or (B, S, D)
        ctx = SequenceContext(
            rope=rope_tables(
                rope_angles(positions, cfg.rope_axes, cfg.rope_theta, (cfg.rope_time_scale, 1.0, 1.0))
            ),
            text=self.text_proj(self.text_norm(text)),
            text_mask=text_mask,
            modalities=modalities,
            runs=runs,
            bridge_mask=bridge_mask(positions[..., 0], modality, cfg.bridge_window)
            if cfg.bridge_window > 0
            else None,
            speech=self._speech(phonemes, positions, x.shape[0]) if cfg.phonemes else None,
        )
        for block in self.blocks:
            if cfg.gradient_checkpointing and torch.is_grad_enabled():
                h = checkpoint(block, h, c_blocks, ctx, use_reentrant=False)
            else:
                h = block(h, c_blocks, ctx)
        shift, scale = self.final.modulation(c).chunk(2, dim=-1)
        h = modulate(self.final.norm(h), shift, scale, runs)
        out = modalities.apply(  # (B, L, F) float32, zero on the padded features
            lambda hv: F.pad(self.final.video(hv).float(), (0, spec.feature_dim - spec.video_dim)),
            lambda ha: F.pad(self.final.audio(ha).float(), (0, spec.feature_dim - spec.audio_dim)),
            h,
        )
        if cfg.prediction == "x":  # out is x0_hat; x_t = (1 - t) x0 + t noise gives v = (x_t - x0) / t
            out = x_to_velocity(x.float(), out, t, cfg.prediction_min_t)
        return out

    def compile_blocks(self, **options: Any) -> JointDiT:
        """``torch.compile`` each block in place (regional compilation); returns ``self``.

        Only the blocks are compiled: the input checks, ``constant_runs`` and ``Modalities.of`` around them
        read values back to the host. The blocks share one compiled graph. The first call compiles
        the forward and backward (tens of seconds on a CPU, ``benchmarks/TRAIN.md``); a new sequence, text or batch length compiles once
        more and is dynamic from then on. State-dict keys, ``save_pretrained`` and deep copies (which come
        back uncompiled) are unchanged. ``options`` go to ``torch.compile`` (e.g. ``mode``, ``backend``).
        """
        for block in self.blocks:
            block.compile(**options)
        return self

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (atomically each)."""
        d = Path(directory)
        save_weights(self, d / "model.safetensors")
        write_json(d / "config.json", to_dict(self.config))

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> JointDiT:
        """Load a model written by ``save_pretrained``; a mismatch raises CheckpointError."""
        d = Path(directory)
        cfg = from_dict(DiTConfig, read_json(d / "config.json"), where=str(d / "config.json"))
        model = cls(cfg)
        load_weights(model, d / "model.safetensors")
        return model


def x_to_velocity(x_t: Tensor, x0_hat: Tensor, t: Tensor, min_t: float) -> Tensor:
    """The velocity ``(x_t - x0_hat) / max(t, min_t)`` of a clean-sample prediction, for ``x_t, x0_hat
    (B, L, F)`` and per-token ``t (B, L)``; zero wherever both are zero (padded features)."""
    return (x_t - x0_hat) / rearrange(t.float().clamp(min=min_t), "b l -> b l 1")


def parameter_count(config: DiTConfig) -> int:
    """Number of parameters of ``JointDiT(config)``, counted on the meta device (allocates nothing)."""
    with torch.device("meta"):
        model = JointDiT(config)
    return sum(p.numel() for p in model.parameters())


def tiny_dit(
    tokens: TokenSpec | None = None, text_dim: int = 32, seed: int = 0, active: bool = True
) -> JointDiT:
    """The "tiny" preset, built in milliseconds for tests; deterministic in ``seed`` (global RNG untouched).

    ``active=True`` adds small noise to every weight so the zero-initialised (adaLN-zero) layers are live
    and the output depends on every input, as a trained model's would; ``active=False`` is the plain init.
    """
    cfg = dit_config(
        "tiny", tokens=tokens or TokenSpec(video_channels=4, audio_channels=6), text_dim=text_dim
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = JointDiT(cfg)
        if active:
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.1 * torch.randn_like(p))
    return model
