"""FSDP2 for the joint transformer: ``fully_shard`` on every block, then the root, with bf16 mixed precision.

Each ``model.blocks`` entry is its own FSDP2 unit (its parameters are all-gathered just before it runs and
freed after), the rest (embeddings, final layer) goes with the root. Under bf16 training (``loop.precision``
"bf16", or "auto" on CUDA) a model with blocks gets ``bf16_policy()``: the all-gathered parameters, and so
the compute, are bf16, while the sharded parameters the optimizer and EMA update stay float32 and gradients
are reduce-scattered in float32. Forward inputs are not cast: token positions and RoPE tables stay float32
(bf16 would round a 5-s time axis to ~0.02 s); bf16 autocast decides each op's dtype as it does without
FSDP. Models without blocks (the codecs) keep float32 parameters under autocast: vector-quantiser
codebooks lose their nearest-code decisions in bf16.

Checkpoints never see shards: ``avgen.train.distributed.full_model_state`` gathers full float32 tensors onto
rank 0, which writes safetensors as on one process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from torch.distributed.fsdp import MixedPrecisionPolicy


def bf16_training(device: torch.device, precision: str) -> bool:
    """Whether a step on ``device`` under ``loop.precision`` runs in bf16 (``avgen.train.precision``)."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def bf16_policy() -> MixedPrecisionPolicy:
    """The FSDP2 ``MixedPrecisionPolicy``: bf16 parameters for compute, float32 gradient reduction, inputs
    left as they are."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    return MixedPrecisionPolicy(
        param_dtype=torch.bfloat16, reduce_dtype=torch.float32, cast_forward_inputs=False
    )


def shard_units(model: nn.Module) -> list[nn.Module]:
    """The submodules sharded one by one: the entries of ``model.blocks`` (none for other models)."""
    blocks = getattr(model, "blocks", None)
    return list(blocks) if isinstance(blocks, nn.ModuleList) else []


def fully_shard_model(model: nn.Module, device: torch.device, precision: str) -> nn.Module:
    """Shard ``model`` in place over the default process group; returns it.

    Every block but the last frees its gathered parameters after its forward and gathers them again for
    the backward; the last block and the root keep theirs, since the backward starts with them at once
    (torchtitan does the same).
    """
    from torch.distributed.fsdp import fully_shard

    units = shard_units(model)
    policy = {"mp_policy": bf16_policy()} if units and bf16_training(device, precision) else {}
    for i, block in enumerate(units):
        fully_shard(block, reshard_after_forward=i < len(units) - 1, **policy)
    fully_shard(model, reshard_after_forward=False, **policy)
    return model
