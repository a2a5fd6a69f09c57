"""The training loop: one readable function for the audio codec, the video autoencoder and the joint model.

AdamW, linear warmup + cosine decay, gradient accumulation, gradient clipping, EMA, bf16 autocast on
CUDA (fp32 on CPU), a tqdm bar, a JSONL log of every metric (TensorBoard too when installed), periodic
evaluation, checkpoints every N steps and on SIGTERM/SIGINT, resume from the newest complete one.
What is trained, on what data, with what loss is the task's business (see ``Task``).

Run folder (``out``)::

    config.json           the resolved config of the run (written by the caller)
    log.jsonl             one line per log / eval step and one for the final evaluation
    checkpoints/step_N/   see avgen.train.checkpoint
    metrics.json          the final evaluation
    (task exports)        e.g. codec/ or pipeline/
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from avgen.errors import CheckpointError, ConfigError
from avgen.train import checkpoint as ckpt
from avgen.train import distributed as D
from avgen.train.ema import EMA

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class LoopConfig:
    """Optimisation and bookkeeping settings shared by every task.

    lr follows ``lr_factor``: linear warmup over ``warmup`` steps, then cosine to ``lr * min_lr_ratio``
    at ``steps``. ``grad_accum`` micro-batches make one step. ``ema_decay`` 0 turns EMA off.
    ``eval_every`` 0 turns periodic evaluation off. ``precision`` "auto" is bf16 autocast on CUDA and fp32
    on CPU (bf16 matmul on a CPU without bf16 instructions is ~400x slower; on one with avx512_bf16 the
    joint step is 1.6x faster under "bf16", ``benchmarks/TRAIN.md``). ``compile`` runs the model's blocks
    through ``torch.compile`` (the joint DiT's ``compile_blocks``; other models refuse it).
    """

    steps: int = 1000
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 100
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    grad_accum: int = 1
    ema_decay: float = 0.0
    log_every: int = 25
    eval_every: int = 500
    ckpt_every: int = 500
    keep_checkpoints: int = 2
    seed: int = 0
    precision: str = "auto"
    num_threads: int = 0
    compile: bool = False

    def __post_init__(self) -> None:
        for name in ("steps", "grad_accum", "log_every", "ckpt_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"loop.{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_every < 0 or self.warmup < 0 or self.num_threads < 0:
            raise ConfigError("loop.eval_every, loop.warmup and loop.num_threads must be >= 0")
        if not (self.lr > 0 and 0 <= self.min_lr_ratio <= 1):
            raise ConfigError(
                f"loop: need lr > 0 and 0 <= min_lr_ratio <= 1, got {self.lr}, {self.min_lr_ratio}"
            )
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"loop.ema_decay must be in [0, 1) (0 = off), got {self.ema_decay}")
        if self.grad_clip < 0 or self.weight_decay < 0 or len(self.betas) != 2:
            raise ConfigError("loop: grad_clip and weight_decay must be >= 0 and betas two numbers")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"loop.precision must be one of {PRECISIONS}, got {self.precision!r}")


def lr_factor(step: int, cfg: LoopConfig) -> float:
    """Multiplier of ``cfg.lr`` at optimizer step ``step`` (0-based): warmup, then cosine to min_lr_ratio."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class Task(Protocol):
    """What the loop drives. ``model`` is trained by the loop's AdamW (parameters with requires_grad),
    tracked by EMA and wrapped by DDP/FSDP; ``aux_modules`` / ``aux_optimizers`` (e.g. a GAN
    discriminator) are stepped by the task inside ``loss`` and only checkpointed by the loop."""

    name: str
    model: nn.Module
    aux_modules: dict[str, nn.Module]
    aux_optimizers: dict[str, torch.optim.Optimizer]
    samples_per_step: int  # global batch size (for samples/s)

    def checkpoint_keys(self) -> set[str] | None:
        """The model state-dict keys a checkpoint holds (None = all; LoRA: the adapters only)."""

    def next_batches(self, ctx: D.DistContext, grad_accum: int) -> list[Any]:
        """This rank's ``grad_accum`` micro-batches of the next step; advances the data position."""

    def loss(self, model: nn.Module, batch: Any, step: int) -> tuple[Tensor, dict[str, Tensor | float]]:
        """Scalar loss of one micro-batch (``model`` may be a DDP wrapper) and values to log."""

    def data_state(self) -> dict[str, Any]: ...

    def load_data_state(self, state: dict[str, Any]) -> None: ...

    def generators(self) -> dict[str, torch.Generator]:
        """Task RNGs whose state must survive a resume."""

    def fresh_model(self) -> nn.Module:
        """A new unsharded module with ``model``'s architecture (the export copy under FSDP)."""

    def evaluate(self, model: nn.Module, step: int, out: Path) -> dict[str, Any]:
        """Held-out metrics of an unwrapped (EMA when on) model; runs on rank 0 only."""

    def export(self, model: nn.Module, folder: Path) -> None:
        """Write the usable artefact (codec / pipeline folder) of ``model`` into ``folder``; rank 0 only."""


@dataclass
class _Run:
    model: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    ema: EMA | None


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def cpu_has_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool | None:
    """Whether this CPU has bf16 matmul instructions (avx512_bf16 or amx_bf16); None where unknown."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    flags = {
        f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()
    }
    return bool(flags & {"avx512_bf16", "amx_bf16"}) if flags else None


def _warn_slow_bf16(device: torch.device, precision: str) -> None:
    if device.type == "cpu" and precision == "bf16" and cpu_has_bf16() is False:
        warnings.warn(
            "loop.precision=bf16 on a CPU without bf16 instructions (no avx512_bf16 or amx_bf16 in "
            "/proc/cpuinfo): its bf16 matmuls are emulated, many times slower than fp32 "
            "(benchmarks/TRAIN.md); set loop.precision=fp32 (or auto)",
            RuntimeWarning,
            stacklevel=3,
        )


@contextlib.contextmanager
def _stop_signals() -> Iterator[dict[str, bool]]:
    """SIGTERM / SIGINT set a flag (the loop checkpoints and returns); a second SIGINT interrupts at once."""
    flag = {"stop": False}
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        if flag["stop"] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["stop"] = True

    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: no handlers, the flag just stays False
        pass
    try:
        yield flag
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


class _Logger:
    """JSONL (append-only, so a torn last line is harmless) + TensorBoard when installed; rank 0 only."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.path, self.enabled, self.tb = out / "log.jsonl", enabled, None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                self.tb = None

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for key, value in _flatten(record).items():
                if key != "step" and isinstance(value, int | float):
                    self.tb.add_scalar(key, value, record["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flatten(v, f"{prefix}{k}/")
        else:
            out[f"{prefix}{k}"] = v
    return out


def _get(d: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def _check_run_folder(
    out: Path, resume: bool, run_config: dict[str, Any] | None, must_match: tuple[str, ...]
) -> None:
    saved = out / "config.json"
    if resume:
        if run_config is not None and saved.is_file():
            before = json.loads(saved.read_text())
            differ = [k for k in must_match if _get(before, k) != _get(run_config, k)]
            if differ:
                raise CheckpointError(
                    f"{saved}: --resume with a different model config ({', '.join(differ)} changed); "
                    "use the saved config or pick a new --out"
                )
    elif ckpt.latest_checkpoint(out) is not None:
        raise CheckpointError(f"{out}: already holds a run; pass --resume to continue it or pick a new --out")


def _save(
    run: _Run, task: Task, step: int, cfg: LoopConfig, ctx: D.DistContext, out: Path, export_into: bool
) -> None:
    """Checkpoint ``step``: collectives on every rank, files on rank 0."""
    keys = task.checkpoint_keys()
    modules = {"model": D.full_model_state(run.model, keys)}
    if run.ema is not None:
        modules["ema"] = run.ema.state_dict()
    optimizers = {"model": D.optimizer_state(run.model, run.opt)}
    for name, m in task.aux_modules.items():
        modules[name] = {k: v.detach().cpu() for k, v in m.state_dict().items()}
    for name, o in task.aux_optimizers.items():
        optimizers[name] = o.state_dict()
    rngs = D.gather_objects(ckpt.capture_rng(task.generators()), ctx)
    export_model = _export_model(run, task, ctx) if export_into else None
    if ctx.is_main:
        state = ckpt.TrainState(
            step=step,
            modules=modules,
            optimizers=optimizers,
            schedulers={"model": run.sched.state_dict()},
            rng=dict(enumerate(rngs)),
            extra={
                "data": task.data_state(),
                "ema_updates": 0 if run.ema is None else run.ema.num_updates,
                "world_size": ctx.world_size,
                "task": task.name,
            },
        )
        write = (lambda folder: task.export(export_model, folder)) if export_model is not None else None
        ckpt.save_checkpoint(out, state, keep=cfg.keep_checkpoints, write_extra_files=write)
    D.barrier(ctx)


def _restore(run: _Run, task: Task, folder: Path, cfg: LoopConfig, ctx: D.DistContext) -> int:
    state = ckpt.load_checkpoint(folder)
    if state.extra.get("task") not in (None, task.name):
        raise CheckpointError(f"{folder}: a {state.extra.get('task')!r} checkpoint, not {task.name!r}")
    keys = task.checkpoint_keys()
    where = str(folder / ckpt.STATE_TENSORS)
    if D.is_sharded(run.model):
        D.load_full_model_state(run.model, state.modules["model"], strict=keys is None)
    else:
        ckpt.load_module_state(D.unwrap(run.model), state.modules["model"], f"{where} [model]", keys)
    try:
        D.load_optimizer_state(run.model, run.opt, state.optimizers["model"])
        for name, o in task.aux_optimizers.items():
            o.load_state_dict(state.optimizers[name])
    except (KeyError, ValueError) as e:
        raise CheckpointError(
            f"{folder}: optimizer state does not match ({e}); resume with the same settings"
        ) from e
    for name, m in task.aux_modules.items():
        ckpt.load_module_state(m, state.modules.get(name, {}), f"{where} [{name}]", None)
    run.sched.load_state_dict(state.schedulers["model"])
    for group, base in zip(run.opt.param_groups, run.sched.base_lrs):  # ``steps`` may have changed
        group["lr"] = base * lr_factor(state.step, cfg)
    if run.ema is not None:
        if "ema" not in state.modules:
            raise CheckpointError(f"{folder}: has no EMA weights; resume with loop.ema_decay=0 or start over")
        run.ema.load_state_dict(state.modules["ema"], int(state.extra.get("ema_updates", 0)))
    rng = state.rng.get(ctx.rank)
    if rng is None or int(state.extra.get("world_size", 1)) != ctx.world_size:
        raise CheckpointError(
            f"{folder}: written by {state.extra.get('world_size')} process(es), resumed with {ctx.world_size}; "
            "resume with the same number of processes"
        )
    ckpt.restore_rng(rng, task.generators())
    task.load_data_state(state.extra.get("data", {}))
    return state.step


def _export_model(run: _Run, task: Task, ctx: D.DistContext) -> nn.Module:
    """An unwrapped copy of the model with the EMA weights when EMA is on; every rank must call it
    (full tensors are gathered under FSDP2), only rank 0's copy is complete."""
    ema_state = run.ema.state_dict() if run.ema is not None else None
    if D.is_sharded(run.model):
        full = D.full_model_state(run.model)  # rank 0 only; the others get {}
        model = task.fresh_model()
        if ctx.is_main:
            D.load_full_model_state(model, full, strict=True)
    else:
        model = copy.deepcopy(D.unwrap(run.model))
    if ema_state is not None and ctx.is_main:
        EMA.load_into(model, ema_state)
    return model.eval()


def train(
    task: Task,
    cfg: LoopConfig,
    out: str | Path,
    *,
    ctx: D.DistContext | None = None,
    strategy: str = "ddp",
    resume: bool = False,
    progress: bool = True,
    run_config: dict[str, Any] | None = None,
    must_match: tuple[str, ...] = (),
    export_in_checkpoints: bool = False,
    callbacks: tuple[Callable[[int], None], ...] = (),
) -> dict[str, Any]:
    """Train ``task`` for ``cfg.steps`` optimizer steps; returns ``{"step", "status", "final"}``.

    resume: continue from the newest complete checkpoint in ``out`` (refused when ``run_config``'s
    ``must_match`` keys differ from the saved config.json); without it an existing run is an error.
    status: "done", or "interrupted" after SIGTERM/SIGINT (a checkpoint of the last step was written).
    callbacks: each called with the step number after every optimizer step (rank-local).
    """
    ctx = ctx or D.DistContext()
    out = Path(out)
    _warn_slow_bf16(ctx.device, cfg.precision)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        _check_run_folder(out, resume, run_config, must_match)
        if run_config is not None:
            from avgen.atomic import write_json

            write_json(out / "config.json", run_config)
    D.barrier(ctx)

    if cfg.compile:  # before wrapping, as torchtitan does: FSDP2 then shards the compiled blocks
        if not hasattr(task.model, "compile_blocks"):
            raise ConfigError(
                f"loop.compile: task {task.name!r} trains a {type(task.model).__name__}, which has no "
                "compile_blocks(); only the joint DiT compiles, so set loop.compile=false"
            )
        task.model.compile_blocks()
    model = D.wrap_model(task.model.to(ctx.device), ctx, strategy)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError(f"task {task.name!r} has no trainable parameters")
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    run = _Run(model, opt, sched, EMA(D.unwrap(model), cfg.ema_decay) if cfg.ema_decay > 0 else None)
    step = 0
    latest = ckpt.latest_checkpoint(out) if resume else None
    if latest is not None:
        step = _restore(run, task, latest, cfg, ctx)

    from tqdm import tqdm

    bar = tqdm(
        total=cfg.steps,
        initial=step,
        disable=not (progress and ctx.is_main),
        dynamic_ncols=True,
        desc=task.name,
    )
    log = _Logger(out, ctx.is_main)
    status = "done"
    sums: dict[str, float] = {}
    count, t0 = 0, time.perf_counter()
    with _stop_signals() as signals:
        while step < cfg.steps:
            batches = task.next_batches(ctx, cfg.grad_accum)
            for i, batch in enumerate(batches):
                # note: every micro-batch but the last skips the gradient all-reduce
                with D.no_grad_sync(model, skip=i < len(batches) - 1):
                    with _autocast(ctx.device, cfg.precision):
                        loss, logs = task.loss(model, batch, step)
                    (loss / len(batches)).backward()
                for k, v in {"loss": loss, **logs}.items():
                    sums[k] = sums.get(k, 0.0) + float(torch.as_tensor(v).detach()) / len(
                        batches
                    )  # note: a CPU-GPU sync point
            if cfg.grad_clip > 0:
                norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
                sums["grad_norm"] = sums.get("grad_norm", 0.0) + float(norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            if run.ema is not None:
                run.ema.update(D.unwrap(model))
            step += 1
            count += 1
            bar.update(1)
            for cb in callbacks:
                cb(step)

            stop = D.any_rank(signals["stop"], ctx)
            if step % cfg.log_every == 0 or step == cfg.steps or stop:
                elapsed = time.perf_counter() - t0
                record = {k: v / count for k, v in D.all_mean(sums, ctx).items()}
                tokens = record.pop("tokens", None)
                record = {"step": step, "lr": cfg.lr * lr_factor(step - 1, cfg), **record}
                record["steps_per_s"] = count / elapsed
                record["samples_per_s"] = count * task.samples_per_step / elapsed
                if tokens is not None:  # tokens per micro-batch per rank -> global tokens/s
                    record["tokens_per_s"] = tokens * cfg.grad_accum * ctx.world_size * count / elapsed
                bar.set_postfix(loss=f"{record['loss']:.4g}")
                log.write(record)
                sums, count, t0 = {}, 0, time.perf_counter()
            # Evaluation and checkpoints are left out of the step rate: their time moves t0 on, so the
            # window's earlier steps keep theirs (resetting t0 would credit them to the later steps alone).
            aside = time.perf_counter()
            if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps and not stop:
                eval_model = _export_model(run, task, ctx)
                if ctx.is_main:
                    log.write({"step": step, "eval": task.evaluate(eval_model, step, out)})
                D.barrier(ctx)
            if step % cfg.ckpt_every == 0 or step == cfg.steps or stop:
                _save(run, task, step, cfg, ctx, out, export_in_checkpoints)
            t0 += time.perf_counter() - aside
            if stop:
                status = "interrupted"
                break
    bar.close()

    final: dict[str, Any] = {}
    if status == "done":
        export_model = _export_model(run, task, ctx)
        if ctx.is_main:
            task.export(export_model, out)
            final = task.evaluate(export_model, step, out)
            log.write({"step": step, "final": final})
            from avgen.atomic import write_json

            write_json(out / "metrics.json", {"step": step, "task": task.name, "final": final})
        D.barrier(ctx)
    log.close()
    return {"step": step, "status": status, "final": final}
