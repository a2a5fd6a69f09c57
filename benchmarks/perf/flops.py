"""Exact forward FLOP count of ``JointDiT``, and the same count taken by torch's ``FlopCounterMode``.

Counted (a multiply-add is 2 FLOPs): every matmul ``2*m*n*k`` in the linears (input/output projections,
time embedding MLP, adaLN modulation, text projection, q/k/v/out projections, MLP), and the attention
matmuls (``Q K^T`` and ``A V``: ``4 * B * L_q * L_k * width`` per attention) of the joint self-attention and
of the cross-attention to the text. Excluded: element-wise work (RMSNorm, RoPE, softmax, GELU, SiLU,
adaLN modulate/gate, residual adds, bias adds, embedding lookups), the input checks, and everything outside
the DiT (text encoder, sampler arithmetic, codecs). Bias adds of ``addmm`` are excluded by torch too.

``FlopCounterMode`` counts ``mm``/``addmm``/``bmm`` and SDPA; on CPU torch 2.13 does not count
``aten._scaled_dot_product_flash_attention_for_cpu``, so ``counted_flops`` maps it to torch's own SDPA
formula (``sdpa_flop_count``). Both counts use the padded text length (masked text tokens still cost).

    python -m benchmarks.perf.flops --preset default --batch 2 --video-tokens 208 --audio-tokens 50 --text-tokens 16
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

FREQ_DIM = 256  # avgen.model.layers.TimestepEmbedder's sinusoid width


@dataclass(frozen=True)
class FlopCount:
    """Forward FLOPs of one ``JointDiT`` call, by where they are spent (all ints, multiply-add = 2)."""

    embed: int  # video_in, audio_in, text_proj, time-embedding MLP, shared modulation
    modulation: int  # per-block adaLN linears (modulation="block") and the final layer's
    self_attention_proj: int  # qkv + out projections of the joint self-attention
    self_attention_matmul: int  # Q K^T and A V over the joint sequence
    cross_attention_proj: int  # q, kv (on text) and out projections of the cross-attention
    cross_attention_matmul: int  # Q K^T and A V against the text tokens
    mlp: int
    output: int  # final video / audio projections

    @property
    def total(self) -> int:
        return sum(asdict(self).values())

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "total": self.total}


def _lin(rows: int, fan_in: int, fan_out: int) -> int:
    return 2 * rows * fan_in * fan_out


def jointdit_flops(
    cfg: Any,
    batch: int,
    video_tokens: int,
    audio_tokens: int,
    text_tokens: int,
    modulation_rows: int = 2,
) -> FlopCount:
    """Analytic forward FLOPs of ``JointDiT(cfg)`` on ``batch`` sequences.

    ``cfg``: an ``avgen.model.dit.DiTConfig``. ``text_tokens``: the padded text length ``Lt``.
    ``modulation_rows``: rows ``S`` of the timestep embedding and adaLN per sample: the number of
    ``constant_runs`` (2 for text-to-audio-video: one video run, one audio run) or ``L`` when per token.
    """
    if min(batch, text_tokens, modulation_rows) < 1 or min(video_tokens, audio_tokens) < 0:
        raise ValueError(
            f"need batch, text_tokens, modulation_rows >= 1 and token counts >= 0, got {batch}, "
            f"{text_tokens}, {modulation_rows}, {video_tokens}, {audio_tokens}"
        )
    d, b, s = cfg.width, batch, modulation_rows
    seq = video_tokens + audio_tokens
    rows, mod_rows, text_rows = b * seq, b * s, b * text_tokens
    hidden = int(d * cfg.mlp_ratio)
    spec = cfg.tokens
    embed = _lin(b * video_tokens, spec.video_dim, d) + _lin(b * audio_tokens, spec.audio_dim, d)
    embed += _lin(text_rows, cfg.text_dim, d)
    embed += _lin(mod_rows, FREQ_DIM, d) + _lin(mod_rows, d, d)
    per_block_mod = _lin(mod_rows, d, 6 * d)
    if cfg.modulation == "shared":
        embed += per_block_mod
        block_mod = 0
    else:
        block_mod = per_block_mod * cfg.depth
    depth = cfg.depth
    return FlopCount(
        embed=embed,
        modulation=block_mod + _lin(mod_rows, d, 2 * d),
        self_attention_proj=depth * (_lin(rows, d, 3 * d) + _lin(rows, d, d)),
        self_attention_matmul=depth * 4 * b * seq * seq * d,
        cross_attention_proj=depth * (_lin(rows, d, d) + _lin(text_rows, d, 2 * d) + _lin(rows, d, d)),
        cross_attention_matmul=depth * 4 * b * seq * text_tokens * d,
        # per_modality_mlp sends each token through one of two MLPs of the same size: same count
        mlp=depth * (_lin(rows, d, hidden) + _lin(rows, hidden, d)),
        output=_lin(b * video_tokens, d, spec.video_dim) + _lin(b * audio_tokens, d, spec.audio_dim),
    )


def _cpu_sdpa_mapping() -> dict[Any, Callable[..., int]]:
    """FlopCounterMode formulas for the CPU SDPA kernel that torch leaves uncounted."""
    import torch
    from torch.utils.flop_counter import sdpa_flop_count

    def cpu_flash(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, **kwargs: Any) -> int:
        return sdpa_flop_count(query_shape, key_shape, value_shape)

    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {op: cpu_flash} if op is not None else {}


def counted_flops(fn: Callable[[], Any]) -> tuple[int, dict[str, int]]:
    """Run ``fn()`` under ``FlopCounterMode`` (with the CPU SDPA kernel counted); returns the total and the
    count per aten op (``{"mm": ..., "addmm": ..., ...}``)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False, custom_mapping=_cpu_sdpa_mapping()) as counter:
        fn()
    per_op = {str(k).split(".")[-1]: int(v) for k, v in counter.get_flop_counts()["Global"].items()}
    return int(counter.get_total_flops()), per_op


def example_inputs(
    model: Any, batch: int, video_tokens: int, audio_tokens: int, text_tokens: int, seed: int = 0
) -> dict[str, Any]:
    """Random inputs for ``model.forward`` (a JointDiT): ``x (B, L, F)``, one ``t`` per sample (so the
    modulation runs once per modality: 2 rows), video-then-audio modality ids, positions in seconds."""
    import torch

    cfg = model.config
    seq = video_tokens + audio_tokens
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    modality = torch.cat([torch.zeros(video_tokens), torch.ones(audio_tokens)]).long()
    positions = torch.rand(seq, 3, generator=g)
    return {
        "x": torch.randn(batch, seq, cfg.tokens.feature_dim, generator=g).to(device),
        "t": torch.rand(batch, generator=g).to(device),
        "positions": positions.to(device),
        "modality": modality.to(device),
        "text": torch.randn(batch, text_tokens, cfg.text_dim, generator=g).to(device),
        "text_mask": torch.ones(batch, text_tokens, dtype=torch.bool).to(device),
    }


def compare(
    preset: str, batch: int, video_tokens: int, audio_tokens: int, text_tokens: int, **overrides: Any
) -> dict[str, Any]:
    """Analytic vs FlopCounterMode count for a preset (random weights; meta-free, so it runs the model)."""
    import torch

    from avgen.model.dit import JointDiT, dit_config

    cfg = dit_config(preset, **overrides)
    model = JointDiT(cfg).eval()
    inputs = example_inputs(model, batch, video_tokens, audio_tokens, text_tokens)
    with torch.no_grad():
        total, per_op = counted_flops(lambda: model(**inputs))
    analytic = jointdit_flops(cfg, batch, video_tokens, audio_tokens, text_tokens)
    return {
        "preset": preset,
        "overrides": {k: str(v) for k, v in overrides.items()},
        "batch": batch,
        "video_tokens": video_tokens,
        "audio_tokens": audio_tokens,
        "text_tokens": text_tokens,
        "analytic": analytic.to_dict(),
        "flop_counter": {"total": total, "per_op": per_op},
        "relative_difference": (total - analytic.total) / analytic.total,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--batch", type=int, default=2, help="2 = one clip with guidance batched")
    p.add_argument("--video-tokens", type=int, default=208)
    p.add_argument("--audio-tokens", type=int, default=50)
    p.add_argument("--text-tokens", type=int, default=16)
    args = p.parse_args(argv)
    out = compare(args.preset, args.batch, args.video_tokens, args.audio_tokens, args.text_tokens)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
