"""LoRA: low-rank adapters on a model's attention and MLP linears, for fine-tuning a pipeline cheaply.

``y = W x + b + (alpha / r) * B (A x)`` with ``A (r, in)`` Kaiming-initialised and ``B (out, r)`` zero, so a
freshly adapted model computes exactly what the base model did. Only ``A`` and ``B`` train; ``merge``
folds ``(alpha / r) B A`` into ``W`` (and ``unmerge`` takes it out again), so a merged model runs at the
base model's speed and saves as a plain model. ``adapter_state`` is what a fine-tune ships.
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from avgen.atomic import save_safetensors, write_json
from avgen.config import from_dict, to_dict
from avgen.errors import CheckpointError, ConfigError

# JointDiT's attention and MLP linears (see avgen.model.layers); modulation and I/O layers stay frozen.
DEFAULT_TARGETS = ("*.attn.qkv", "*.attn.proj", "*.cross.q", "*.cross.kv", "*.cross.proj", "*.fc1", "*.fc2")
ADAPTER_KEYS = ("lora_a", "lora_b")


@dataclass(frozen=True)
class LoRAConfig:
    """rank 0 means no LoRA (full fine-tuning). targets: fnmatch patterns of module names to adapt."""

    rank: int = 0
    alpha: float = 16.0
    targets: tuple[str, ...] = DEFAULT_TARGETS

    def __post_init__(self) -> None:
        if self.rank < 0 or not self.alpha > 0:
            raise ConfigError(f"lora: need rank >= 0 and alpha > 0, got rank={self.rank}, alpha={self.alpha}")
        if self.rank and not self.targets:
            raise ConfigError("lora.targets is empty: name the linears to adapt, e.g. '*.attn.qkv'")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update; same input/output as the base layer."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        if rank < 1 or rank > min(base.in_features, base.out_features):
            raise ConfigError(
                f"LoRA rank {rank} must be in [1, {min(base.in_features, base.out_features)}] for a "
                f"{base.in_features}->{base.out_features} linear"
            )
        self.base = base.requires_grad_(False)
        self.scale = alpha / rank
        self.merged = False
        w = base.weight
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, dtype=w.dtype, device=w.device))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, dtype=w.dtype, device=w.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def delta(self) -> Tensor:
        """The weight update ``scale * B @ A``, ``(out, in)``."""
        return self.scale * self.lora_b @ self.lora_a

    def forward(self, x: Tensor) -> Tensor:
        y = self.base(x)
        if self.merged:
            return y
        return y + self.scale * ((x @ self.lora_a.t().to(x.dtype)) @ self.lora_b.t().to(x.dtype))

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.base.weight += self.delta().to(self.base.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base.weight -= self.delta().to(self.base.weight.dtype)
            self.merged = False


def apply_lora(model: nn.Module, cfg: LoRAConfig) -> list[str]:
    """Freeze ``model`` and wrap every ``nn.Linear`` whose name matches ``cfg.targets``; returns their names.

    Raises ConfigError when nothing matches (a mistyped pattern must not silently train nothing).
    """
    model.requires_grad_(False)
    names = [
        n
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear) and any(fnmatch.fnmatchcase(n, p) for p in cfg.targets)
    ]
    if not names:
        raise ConfigError(f"lora.targets {list(cfg.targets)} match no linear layer of {type(model).__name__}")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(getattr(parent, child), cfg.rank, cfg.alpha))
    return names


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def adapter_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the adapters (what a LoRA checkpoint holds)."""
    return {f"{n}.{k}" for n in lora_layers(model) for k in ADAPTER_KEYS}


def adapter_state(model: nn.Module) -> dict[str, Tensor]:
    state = model.state_dict()
    return {k: state[k].detach().cpu() for k in sorted(adapter_keys(model))}


def merge_lora(model: nn.Module) -> None:
    for m in lora_layers(model).values():
        m.merge()


def unmerge_lora(model: nn.Module) -> None:
    for m in lora_layers(model).values():
        m.unmerge()


@torch.no_grad()
def strip_lora(model: nn.Module) -> nn.Module:
    """Merge every adapter and put the plain ``nn.Linear`` back: the model saves as the base class does."""
    for name, m in lora_layers(model).items():
        m.merge()
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, m.base)
    return model


def save_adapters(model: nn.Module, cfg: LoRAConfig, directory: str | Path) -> Path:
    """Write ``adapters.safetensors`` + ``lora.json`` (rank, alpha, targets) into ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    save_safetensors(adapter_state(model), d / "adapters.safetensors", metadata={"format": "avgen.lora"})
    write_json(d / "lora.json", {"format": "avgen.lora", "config": to_dict(cfg)})
    return d


def load_adapters(model: nn.Module, directory: str | Path) -> LoRAConfig:
    """Apply the LoRA of ``directory`` (from ``save_adapters``) to a base ``model``; returns its config."""
    d = Path(directory)
    if not (d / "lora.json").is_file() or not (d / "adapters.safetensors").is_file():
        raise CheckpointError(
            f"{d}: no lora.json + adapters.safetensors; expected a folder from save_adapters"
        )
    cfg = from_dict(
        LoRAConfig, json.loads((d / "lora.json").read_text())["config"], where=str(d / "lora.json")
    )
    apply_lora(model, cfg)
    state = load_file(str(d / "adapters.safetensors"))
    expected = adapter_keys(model)
    if set(state) != expected:
        raise CheckpointError(
            f"{d}: adapters do not fit this model (missing {sorted(expected - set(state))[:3]}, "
            f"unexpected {sorted(set(state) - expected)[:3]})"
        )
    model.load_state_dict(state, strict=False)
    return cfg
