"""torch.distributed for training: torchrun env init, DDP or FSDP2 wrapping, rank-0-only writing.

``init_distributed()`` reads torchrun's variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT``) and opens the process group with gloo on CPU and nccl on CUDA; without
them it returns a single-process context and touches nothing. Multi-node runs use torchrun's usual
rendezvous arguments; nothing here is node specific.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from avgen.errors import AVGenError, ConfigError

STRATEGIES = ("ddp", "fsdp")


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: ``rank`` of ``world_size``, its ``device``, and whether a group is open."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    initialized: bool = False

    @property
    def is_main(self) -> bool:
        """True on the one process that writes files (logs, checkpoints, exports)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.initialized and self.world_size > 1


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: this rank's CUDA device when there is one, else CPU; or an explicit ``cpu`` / ``cuda``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device 'cuda' asked for, but torch sees no CUDA device; use device: cpu")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if name != "cpu":
        raise ConfigError(f"device must be auto, cpu or cuda, got {name!r}")
    return torch.device("cpu")


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistContext:
    """Open the process group when launched by torchrun (``WORLD_SIZE`` > 1), else a 1-process context."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local)
    if world <= 1:
        return DistContext(device=dev)
    if dist.is_initialized():
        return DistContext(rank, world, local, dev, True)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(
        backend, rank=rank, world_size=world, timeout=datetime.timedelta(seconds=timeout_s)
    )
    return DistContext(rank, world, local, dev, True)


def current_context() -> DistContext:
    """The context of the process group this process already joined (``init_distributed``), or a
    1-process context when there is none; for code that the loop does not hand a context (data loading)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return DistContext()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = dist.get_backend() == "nccl"
    dev = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    return DistContext(dist.get_rank(), dist.get_world_size(), local, dev, True)


def close_distributed(ctx: DistContext) -> None:
    import torch.distributed as dist

    if ctx.initialized and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, ctx: DistContext, strategy: str, precision: str = "fp32") -> nn.Module:
    """DDP, or FSDP2 (``avgen.train.fsdp``: ``fully_shard`` per block, then the root; bf16 parameters with
    float32 gradient reduction when ``precision`` trains in bf16).

    On one process the model is returned as is.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"distributed strategy must be one of {STRATEGIES}, got {strategy!r}")
    if not ctx.distributed:
        return model
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)
    from avgen.train.fsdp import fully_shard_model

    return fully_shard_model(model, ctx.device, precision)


def unwrap(model: nn.Module) -> nn.Module:
    """The user module inside a DDP wrapper (FSDP2 shards in place, so it is the module itself)."""
    return (
        model.module
        if hasattr(model, "module") and type(model).__name__ == "DistributedDataParallel"
        else model
    )


def is_sharded(model: nn.Module) -> bool:
    return any(hasattr(p, "device_mesh") for p in model.parameters())


@contextlib.contextmanager
def no_grad_sync(model: nn.Module, skip: bool) -> Iterator[None]:
    """Skip the gradient all-reduce for a micro-batch that is not the last of its accumulation."""
    if not skip:
        yield
    elif hasattr(model, "no_sync"):  # DDP
        with model.no_sync():
            yield
    elif hasattr(model, "set_requires_gradient_sync"):  # FSDP2
        model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)
    else:
        yield


def all_mean(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """Mean of each value over ranks (for logging); identity on one process."""
    if not ctx.distributed or not values:
        return values
    import torch.distributed as dist

    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return {k: float(v) / ctx.world_size for k, v in zip(keys, t.tolist())}


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True when ``flag`` is set on any rank (e.g. one rank received SIGTERM), so all ranks stop together."""
    if not ctx.distributed:
        return flag
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj`` (picklable in memory only, never written), in rank order."""
    if not ctx.distributed:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        import torch.distributed as dist

        dist.barrier()


def waiting_group(ctx: DistContext, timeout_s: float) -> Any:
    """A gloo group of every rank with its own ``timeout_s``, for ``all_succeeded`` after uneven work (each
    rank encoding its share of a latent cache can take hours): the main group's timeout does not apply
    and no GPU stream waits. Made before the work, while the ranks are together; None on one process."""
    if not ctx.distributed:
        return None
    import torch.distributed as dist

    return dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=timeout_s))


def all_succeeded(ok: bool, ctx: DistContext, group: Any) -> bool:
    """Wait for every rank (over ``group`` from ``waiting_group``), then True when every rank passed
    ``ok=True``; a rank that failed still calls this, so the others stop instead of waiting out the
    timeout. The group is released afterwards."""
    if not ctx.distributed:
        return ok
    import torch.distributed as dist

    t = torch.tensor([0.0 if ok else 1.0])
    try:
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group)
    finally:
        dist.destroy_process_group(group)
    return bool(t.item() == 0)


def micro_batch_size(batch_size: int, world_size: int, grad_accum: int) -> int:
    """Per-rank micro-batch of a global ``batch_size``; it must split evenly."""
    if batch_size % (world_size * grad_accum):
        raise AVGenError(
            f"batch_size {batch_size} does not split into {world_size} process(es) x {grad_accum} "
            "accumulation steps; make it a multiple of their product"
        )
    return batch_size // (world_size * grad_accum)


def full_model_state(model: nn.Module, keys: set[str] | None = None) -> dict[str, torch.Tensor]:
    """Full (unsharded) CPU state dict; a collective under FSDP2 (every rank calls, rank 0 reads it)."""
    if is_sharded(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    else:
        sd = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    return sd if keys is None else {k: v for k, v in sd.items() if k in keys}


def load_full_model_state(model: nn.Module, state: dict[str, torch.Tensor], strict: bool) -> None:
    if is_sharded(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, strict=strict))
    else:
        unwrap(model).load_state_dict(state, strict=strict)


def optimizer_state(model: nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
    """A full optimizer state dict (collective under FSDP2; keyed by parameter name there)."""
    if is_sharded(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(
            model, opt, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
    return opt.state_dict()


def load_optimizer_state(model: nn.Module, opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    if is_sharded(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(model, opt, state, options=StateDictOptions(full_state_dict=True))
    else:
        opt.load_state_dict(state)
