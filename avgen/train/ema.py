"""Exponential moving average of a model's trainable weights (what the shipped model samples with).

``shadow = decay * shadow + (1 - decay) * param`` after every optimizer step, in float32, with the
decay warmed up as ``min(decay, (1 + n) / (10 + n))`` so early averages are not dominated by the init.
The shadow tensors have the parameters' own type: plain tensors, or DTensor shards under FSDP2, so
the update never gathers anything; ``state_dict`` returns full tensors for checkpoints and export.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avgen.errors import CheckpointError, ConfigError


def _full(t: Tensor) -> Tensor:
    """A DTensor's full value (a collective: every rank must call it), or the tensor itself."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


class EMA:
    """Shadow copies of ``model``'s trainable parameters, keyed by parameter name.

    decay: in [0, 1); 0.999 is typical for thousands of steps. ``num_updates`` counts ``update`` calls.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.shadow: dict[str, Tensor] = {
            name: p.detach().float().clone() for name, p in model.named_parameters() if p.requires_grad
        }

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One EMA step towards ``model``'s current parameters (same names as at construction)."""
        params = dict(model.named_parameters())
        names = list(self.shadow)
        d = self.current_decay()
        shadows = [self.shadow[n] for n in names]
        torch._foreach_lerp_(shadows, [params[n].detach().float() for n in names], 1.0 - d)
        self.num_updates += 1

    def state_dict(self) -> dict[str, Tensor]:
        """Full float32 tensors, one per tracked parameter (collective under FSDP2)."""
        return {name: _full(t).detach().cpu() for name, t in self.shadow.items()}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Tensor], num_updates: int) -> None:
        if set(state) != set(self.shadow):
            raise CheckpointError(
                f"EMA state does not match the model: missing {sorted(set(self.shadow) - set(state))[:4]}, "
                f"unexpected {sorted(set(state) - set(self.shadow))[:4]}"
            )
        for name, t in self.shadow.items():
            src = state[name]
            if hasattr(t, "distribute_tensor") or hasattr(t, "device_mesh"):
                from torch.distributed.tensor import distribute_tensor

                t.copy_(distribute_tensor(src.to(t.device), t.device_mesh, t.placements))
            else:
                t.copy_(src)
        self.num_updates = num_updates

    @staticmethod
    @torch.no_grad()
    def load_into(model: nn.Module, state: dict[str, Tensor]) -> None:
        """Write averaged weights (``state_dict()`` of an EMA) into an unsharded ``model``."""
        params = dict(model.named_parameters())
        for name, t in state.items():
            params[name].copy_(t.to(params[name].dtype))
