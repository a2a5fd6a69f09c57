"""The training loop: one readable function for the audio codec, the video autoencoder and the joint model.

AdamW, linear warmup + cosine decay, gradient accumulation, gradient clipping, EMA, bf16 autocast on
CUDA (fp32 on CPU), a tqdm bar, a JSONL log of every metric (TensorBoard too when installed), periodic
evaluation, checkpoints every N steps and on SIGTERM/SIGINT, resume from the newest complete one.
What is trained, on what data, with what loss is the task's business (see ``Task``).

Run folder (``out``)::

    config.json           the resolved config of the run (written by the caller)
    log.jsonl             one line per log / eval step and one for the final evaluation
    checkpoints/step_N/   see avgen.train.checkpoint
    snapshots/step_N/     every ``snapshot_every`` steps, see avgen.train.snapshots
    metrics.json          the final evaluation
    (task exports)        e.g. codec/ or pipeline/
"""

from __future__ import annotations

import copy
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from tqdm import tqdm

from avgen.atomic import write_json
from avgen.errors import CheckpointError, ConfigError
from avgen.train import checkpoint as ckpt
from avgen.train import distributed as D
from avgen.train import snapshots
from avgen.train.budget import StepBudget
from avgen.train.ema import EMA
from avgen.train.loop_config import LoopConfig, lr_factor
from avgen.train.precision import autocast, warn_slow_bf16
from avgen.train.run_log import RunLog
from avgen.train.signals import stop_signals


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


def _snapshot(run: _Run, task: Task, step: int, ctx: D.DistContext, out: Path) -> None:
    """Export the model (EMA when on) to ``out/snapshots/step_N`` unless that snapshot exists; every rank
    must call it (the export gathers under FSDP2), rank 0 writes."""
    if D.any_rank(ctx.is_main and snapshots.has_snapshot(out, step), ctx):
        return
    model = _export_model(run, task, ctx)
    if ctx.is_main:
        export = functools.partial(task.export, model)
        snapshots.write_snapshot(out, step, task.samples_per_step, export, task=task.name)
    D.barrier(ctx)


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
    warn_slow_bf16(ctx.device, cfg.precision)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        _check_run_folder(out, resume, run_config, must_match)
        if run_config is not None:
            write_json(out / "config.json", run_config)
    D.barrier(ctx)

    if cfg.compile:  # before wrapping, as torchtitan does: FSDP2 then shards the compiled blocks
        if not hasattr(task.model, "compile_blocks"):
            raise ConfigError(
                f"loop.compile: task {task.name!r} trains a {type(task.model).__name__}, which has no "
                "compile_blocks(); only the joint DiT compiles, so set loop.compile=false"
            )
        task.model.compile_blocks()
    model = D.wrap_model(task.model.to(ctx.device), ctx, strategy, cfg.precision)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError(f"task {task.name!r} has no trainable parameters")
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    run = _Run(model, opt, sched, EMA(D.unwrap(model), cfg.ema_decay) if cfg.ema_decay > 0 else None)
    budget = None
    if cfg.budget_minutes > 0:
        budget = StepBudget(cfg.budget_minutes, ctx.device, out, cfg.steps, resume)
        if budget.steps is not None:  # fixed before a resume: the schedule is the one it ran with
            cfg = replace(cfg, steps=budget.steps)
    step = 0
    latest = ckpt.latest_checkpoint(out) if resume else None
    if latest is not None:
        step = _restore(run, task, latest, cfg, ctx)
        if cfg.snapshot_every and step % cfg.snapshot_every == 0:  # a stop skipped it, or a crash beat it
            _snapshot(run, task, step, ctx, out)

    bar = tqdm(
        total=cfg.steps,
        initial=step,
        disable=not (progress and ctx.is_main),
        dynamic_ncols=True,
        desc=task.name,
    )
    log = RunLog(out, ctx.is_main, start_step=step)  # drops what a stopped run logged past its checkpoint
    status = "done"
    sums: dict[str, float] = {}
    count, t0 = 0, time.perf_counter()
    with stop_signals() as signals:
        while step < cfg.steps:
            if budget is not None:
                budget.start()
            batches = task.next_batches(ctx, cfg.grad_accum)
            for i, batch in enumerate(batches):
                # note: every micro-batch but the last skips the gradient all-reduce
                with D.no_grad_sync(model, skip=i < len(batches) - 1):
                    with autocast(ctx.device, cfg.precision):
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
            if budget is not None and (planned := budget.stop(step)) is not None:
                if ctx.world_size > 1:  # every process must stop at the same step
                    planned = round(D.all_mean({"steps": float(planned)}, ctx)["steps"])
                budget.fix(planned, ctx.is_main)
                cfg = replace(cfg, steps=planned)  # the schedule's lambda reads cfg: it decays over planned
                bar.total = planned
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
            # A stop checkpoints at once; the resume writes this step's snapshot.
            if cfg.snapshot_every and step % cfg.snapshot_every == 0 and not stop:
                _snapshot(run, task, step, ctx, out)
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
            seen = step * task.samples_per_step
            write_json(
                out / "metrics.json", {"step": step, "samples_seen": seen, "task": task.name, "final": final}
            )
        D.barrier(ctx)
    log.close()
    return {"step": step, "status": status, "final": final}
