"""Per-pixel maps of encoded clips, and the per-token loss weights the joint trainer makes of them.

A small object covers a few percent of a frame, so the plain flow loss spends nearly all of its weight on
the backdrop. ``joint.foreground_weight`` weighs each video token's error by the share of its pixels that
a named map marks: ``1 + foreground_weight * share``, divided by the clip's mean over its video tokens, so
each clip's video loss keeps its scale.

A clip's map: its latents decoded by the run's video codec, each pixel marked by the dataset's map
``avgen.data.maps.CLIP_MAPS[kind]`` (avgen-synth: "objects", anything off the backdrop; "mouth", the
talking face's mouth), averaged over each latent cell's pixels: ``(T', H', W')`` in [0, 1]; a ``hold``
map keeps each cell's largest share over the clip in every latent frame. ``stride`` decodes every
``stride``-th latent frame and lets it stand for the next ``stride - 1``: exact where the codec decodes
each frame on its own (temporal kernel 1, no temporal down-sampling, as the frame-wise video autoencoder),
an approximation otherwise. Decoding is the costly part, so maps are cached beside the latents, keyed by
the latents' bytes, the codec, the stride and the kind ("objects" adds none to the key).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from einops import rearrange, reduce
from safetensors import safe_open
from torch import Tensor
from torch.nn import functional as F
from tqdm import tqdm

from avgen.atomic import save_safetensors
from avgen.data.maps import CLIP_MAPS
from avgen.errors import ConfigError
from avgen.tokens import VIDEO, ShapeError, TokenSpec
from avgen.train.encode import device_of

FORMAT = "avgen.foreground/1"


@torch.no_grad()
def foreground_maps(
    video_codec: Any,
    latents: list[Tensor],
    *,
    stride: int = 1,
    batch: int = 16,
    kind: str = "objects",
    progress: bool = False,
) -> list[Tensor]:
    """``(T', H', W')`` float32 share of foreground pixels per latent cell of each ``latents[i]``
    ``(C, T', H', W')``; clips of one shape are decoded ``batch`` at a time. ``kind``: a name in
    ``avgen.data.maps.CLIP_MAPS`` (the module docstring)."""
    if stride < 1:
        raise ConfigError(f"foreground stride must be >= 1, got {stride}")
    if kind not in CLIP_MAPS:  # (read at call time: a dataset may have added its own maps)
        raise ConfigError(f"foreground map kind {kind!r}: choose from {sorted(CLIP_MAPS)}")
    pixel_map = CLIP_MAPS[kind]
    device = device_of(video_codec)
    maps: list[Tensor] = []
    bar = tqdm(total=len(latents), desc="foreground maps", unit="clip", disable=not progress)
    start = 0
    while start < len(latents):
        shape = latents[start].shape
        end = start + 1
        while end < len(latents) and end - start < batch and latents[end].shape == shape:
            end += 1
        z = torch.stack(latents[start:end])[:, :, ::stride].to(device)  # (B, C, t, H', W')
        frames = video_codec.decode(z).float().clamp(-1, 1)  # (B, 3, Tf, H, W) in [-1, 1]
        t, h, w = z.shape[2:]
        r, a = video_codec.temporal_downsample, video_codec.spatial_downsample
        short = t * r - frames.shape[2]  # a causal codec decodes its first latent frame to 1 frame, not r
        if not 0 <= short < r or frames.shape[3:] != (h * a, w * a):
            raise ShapeError(
                f"the video codec decoded latents {tuple(z.shape)} to frames {tuple(frames.shape)}, not "
                f"{r} frames and {a}x{a} pixels per latent cell"
            )
        frames = torch.cat(
            [frames[:, :, :1].expand(-1, -1, short, -1, -1), frames], dim=2
        )  # (B, 3, t*r, H, W)
        video = (
            rearrange(((frames + 1) * 127.5).round().to(torch.uint8), "b c t h w -> b t h w c").cpu().numpy()
        )
        for clip in video:
            fg = pixel_map.fn(clip)  # (Tf, H, W) bool
            share = reduce(
                torch.from_numpy(fg).float(), "(t r) (h a) (w c) -> t h w", "mean", r=r, a=a, c=a
            )  # (t, H', W')
            if pixel_map.hold:
                share = share.amax(dim=0, keepdim=True).expand_as(share)
            maps.append(share.repeat_interleave(stride, dim=0)[: shape[1]].contiguous())
        bar.update(end - start)
        start = end
    bar.close()
    return maps


def _cache_key(video_codec: Any, latents: list[Tensor], stride: int, kind: str = "objects") -> str:
    digest = hashlib.blake2b(digest_size=8)
    head = [FORMAT, video_codec.codec_id, stride, len(latents)] + ([kind] if kind != "objects" else [])
    digest.update(json.dumps(head).encode())
    for z in latents:
        digest.update(str(tuple(z.shape)).encode())
        digest.update(z.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def cached_foreground_maps(
    video_codec: Any,
    latents: list[Tensor],
    cache_dir: str | None,
    *,
    stride: int = 1,
    kind: str = "objects",
    progress: bool = False,
) -> list[Tensor]:
    """``foreground_maps``, read from / saved to ``cache_dir`` (None: always computed; float16 on disk).
    A damaged cache file is computed again and replaced."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"foreground-{_cache_key(video_codec, latents, stride, kind)}.safetensors"
        if path.exists():
            try:
                with safe_open(str(path), framework="pt") as f:
                    maps = [f.get_tensor(f"map/{i}").float() for i in range(len(latents))]
                if all(m.shape == z.shape[1:] for m, z in zip(maps, latents)):
                    return maps
            except Exception:  # a damaged cache is computed again, never an error
                pass
    maps = foreground_maps(video_codec, latents, stride=stride, kind=kind, progress=progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {f"map/{i}": m.half() for i, m in enumerate(maps)}
        save_safetensors(tensors, path, metadata={"format": FORMAT})
    return maps


def token_weights(maps: Tensor, spec: TokenSpec, modality: Tensor, strength: float) -> Tensor:
    """Per-token loss factors ``(B, L)`` from foreground ``maps (B, T', H', W')`` of the clips packed with
    ``spec`` into tokens of ``modality (L,)``: video tokens ``1 + strength * share`` over the clip's mean (the
    share of a token's cells' pixels that are foreground; padding counts as backdrop), audio tokens 1."""
    pt, ph, pw = spec.video_patch
    t, h, w = maps.shape[1:]
    padded = F.pad(maps.float(), (0, -w % pw, 0, -h % ph, 0, -t % pt))
    share = reduce(padded, "b (t pt) (h ph) (w pw) -> b (t h w)", "mean", pt=pt, ph=ph, pw=pw)  # (B, Nv)
    is_video = modality == VIDEO  # (L,)
    if share.shape[1] != int(is_video.sum()):
        raise ShapeError(
            f"foreground maps {tuple(maps.shape)} give {share.shape[1]} video tokens, the sequence has "
            f"{int(is_video.sum())}"
        )
    weights = torch.ones(maps.shape[0], modality.shape[0], device=maps.device)  # (B, L)
    video = 1 + strength * share
    weights[:, is_video] = video / video.mean(dim=1, keepdim=True)
    return weights
