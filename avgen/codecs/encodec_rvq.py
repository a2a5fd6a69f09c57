"""EnCodec's residual vector quantizer in plain torch, under ``transformers.EncodecModel``'s tensor names.

Each layer holds one Euclidean codebook (``codebook.embed``, (codebook_size, D)) plus the EMA buffers a
k-means fit writes (``cluster_size``, ``embed_avg``, ``inited``). The residual loop itself (codes of the
residual left by the layers before) is the caller's.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.nn import functional as F


class Codebook(nn.Module):
    """``codebook_size`` codewords of ``dim`` floats; nearest codeword by Euclidean distance."""

    def __init__(self, codebook_size: int, dim: int) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.inited = nn.Buffer(torch.ones(1))
        self.cluster_size = nn.Buffer(torch.zeros(codebook_size))
        self.embed = nn.Buffer(torch.zeros(codebook_size, dim))
        self.embed_avg = nn.Buffer(torch.zeros(codebook_size, dim))

    def quantize(self, x: Tensor) -> Tensor:
        """(N, D) float -> (N,) int64 index of the nearest codeword (the first one on ties)."""
        embed = self.embed.t()  # (D, K)
        dist = -(x.pow(2).sum(1, keepdim=True) - 2 * x @ embed + embed.pow(2).sum(0, keepdim=True))  # (N, K)
        return dist.max(dim=-1).indices

    def encode(self, x: Tensor) -> Tensor:
        """(B, L, D) float -> (B, L) int64 codes."""
        b = x.shape[0]
        return rearrange(self.quantize(rearrange(x, "b l d -> (b l) d")), "(b l) -> b l", b=b)

    def decode(self, codes: Tensor) -> Tensor:
        """(B, L) int64 codes -> (B, L, D) codewords."""
        return F.embedding(codes, self.embed)


class VectorQuantizer(nn.Module):
    """One codebook over channel-first latents: (B, D, L) <-> (B, L) codes."""

    def __init__(self, codebook_size: int, dim: int) -> None:
        super().__init__()
        self.codebook = Codebook(codebook_size, dim)

    def encode(self, z: Tensor) -> Tensor:
        """(B, D, L) float -> (B, L) int64 codes."""
        return self.codebook.encode(rearrange(z, "b d l -> b l d"))

    def decode(self, codes: Tensor) -> Tensor:
        """(B, L) int64 codes -> (B, D, L) float codewords."""
        return rearrange(self.codebook.decode(codes), "b l d -> b d l")


class ResidualVQ(nn.Module):
    """``num_quantizers`` codebooks applied one after another to what the ones before left (``layers``)."""

    def __init__(self, num_quantizers: int, codebook_size: int, dim: int) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.num_quantizers = num_quantizers
        self.layers = nn.ModuleList([VectorQuantizer(codebook_size, dim) for _ in range(num_quantizers)])
