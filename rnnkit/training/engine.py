"""The training loop. It knows nothing about the model beyond `loss = objective.compute_loss(...)`.

An objective supplies `compute_loss(model, batch) -> Tensor` and `evaluate(model, loader, ctx) ->
{metric: value}` (including `loss`), and names the metric to monitor. Callbacks receive a small
`TrainState`, never the trainer. Every epoch the loop writes, atomically:

    run_dir/metrics.jsonl               one JSON record per epoch
    run_dir/model.safetensors           the best weights so far (by the monitored metric)
    run_dir/checkpoints/last.safetensors model + optimizer + RNG + counters, for --resume
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import Tensor, nn

from rnnkit.errors import ConfigError, RnnkitError
from rnnkit.io import atomic_write_text
from rnnkit.model_file import split_aliases
from rnnkit.run_folder import Files
from rnnkit.training import distributed
from rnnkit.training.checkpoint import (
    load_checkpoint,
    load_weights_file,
    rank_state,
    save_checkpoint,
    save_state,
)
from rnnkit.training.control import Budget, Progress, SigtermFlag, cadence, sigterm_flag
from rnnkit.training.precision import Precision, resolve_device, resolve_precision
from rnnkit.training.schedule import SCHEDULES, lr_factor

logger = logging.getLogger(__name__)


class TrainingError(RnnkitError, RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the last checkpoint is intact."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train; every default is what we would pick for a small RNN on a CPU.

    Attributes:
        epochs: passes over the training data; early stopping may end sooner.
        batch_size: sequences per step; 64 keeps a CPU's cores busy without hurting accuracy.
        optimizer: "adamw" (decoupled weight decay, Loshchilov & Hutter 2019) or "adam".
        lr: peak learning rate; 3e-3 suits Adam on small RNNs with a one-cycle schedule.
        weight_decay: AdamW's decay; small, since dropout already regularises.
        schedule: "onecycle", "cosine" or "constant" (see `schedule.py`).
        warmup_fraction: share of steps spent warming up.
        clip_norm: max global gradient norm; RNN gradients explode without it (Pascanu et al.,
            2013). None turns clipping off.
        precision: "auto" (bf16 where the CPU runs it, fp16 on CUDA, else fp32), "fp32",
            "bf16" or "fp16".
        device: "auto", "cpu", "cuda" or "mps".
        seed: seeds weights, dropout and batch order.
        patience: epochs without improvement before stopping early; None never stops early.
        max_minutes: a wall-clock budget for training. The schedule then runs on elapsed time
            instead of steps (warm-up and decay fit the budget whatever the machine's speed),
            and the epoch in progress ends when the budget is spent; its evaluation and
            checkpoint follow, and the best weights are kept. None trains for `epochs`.
        checkpoint_seconds: how often, at most, the run folder is brought up to date (best
            weights, `metrics.jsonl`, the resume checkpoint); it always is after the first and
            the last epoch. On a tiny series an epoch takes milliseconds and saving after each
            one took as long as the training; a crash loses at most this much work. 0 saves
            after every epoch. Checked before every step, so a long epoch is saved part-way.
        checkpoint_every: also save every this many optimizer steps (None: by time alone).
            A checkpoint written inside an epoch holds the batch position, the RNG states of
            every rank and any state the objective carries, so `--resume` continues exactly
            where it was: the weights end bitwise equal to an uninterrupted run on CPU.
    """

    epochs: int = 10
    batch_size: int = 64
    optimizer: Literal["adamw", "adam"] = "adamw"
    lr: float = 3e-3
    weight_decay: float = 0.01
    schedule: Literal["onecycle", "cosine", "constant"] = "onecycle"
    warmup_fraction: float = 0.1
    clip_norm: float | None = 1.0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: str = "auto"
    seed: int = 0
    patience: int | None = 3
    max_minutes: float | None = None
    checkpoint_seconds: float = 30.0
    checkpoint_every: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if self.optimizer not in ("adamw", "adam"):
            raise ConfigError(f"optimizer must be adamw or adam, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ConfigError(f"clip_norm must be positive or none, got {self.clip_norm}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"max_minutes must be positive or none, got {self.max_minutes}")
        if self.checkpoint_every is not None and (
            isinstance(self.checkpoint_every, bool)
            or not isinstance(self.checkpoint_every, int)
            or self.checkpoint_every < 1
        ):
            raise ConfigError(
                f"checkpoint_every must be a whole number of steps >= 1 or none, got "
                f"{self.checkpoint_every!r}"
            )
        if not self.checkpoint_seconds >= 0:
            raise ConfigError(
                f"checkpoint_seconds must be 0 or more, got {self.checkpoint_seconds}"
            )


@dataclass
class TrainState:
    """What callbacks see: counters, the latest loss, and the metrics of finished epochs."""

    epoch: int  # 1-based epoch in progress (or just finished)
    epochs: int
    step: int  # optimizer steps taken so far
    total_steps: int
    steps_per_epoch: int
    loss: float = math.nan  # running mean training loss of this epoch
    lr: float = 0.0
    tokens_per_second: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)  # last finished epoch
    best: float | None = None
    best_epoch: int | None = None
    stop: bool = False  # a callback may set this to end training after the epoch


class Callback:
    """Hooks with no-op defaults; override the ones you need."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_epoch_begin(self, state: TrainState) -> None: ...
    def on_step(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...


@dataclass(frozen=True)
class EvalContext:
    """How an objective should run evaluation: device and precision."""

    device: torch.device
    precision: Precision


class Objective(Protocol):
    """What the loop needs from a task's objective: the loss, the evaluation, what to monitor.

    (Each task's `objective.py` supplies one; the task as a whole is its `TaskSpec`.)
    """

    monitor: str  # a key of evaluate()'s result, e.g. "accuracy"
    monitor_mode: Literal["max", "min"]

    def compute_loss(self, model: nn.Module, batch: Any) -> Tensor: ...

    def evaluate(self, model: nn.Module, loader: Iterable[Any], ctx: EvalContext) -> dict: ...


@dataclass
class FitResult:
    """What training produced."""

    records: list[dict[str, Any]]
    best: float | None
    best_epoch: int | None
    stopped_early: bool
    seconds: float
    precision: str
    device: str


def _to(batch: Any, device: torch.device) -> Any:
    return batch.to(device) if hasattr(batch, "to") else batch


def _num_tokens(batch: Any) -> int:
    return int(getattr(batch, "num_tokens", 0) or len(batch))


def _improved(value: float, best: float | None, mode: str) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value > best if mode == "max" else value < best


def fit(
    model: nn.Module,
    objective: Objective,
    train_loader: Any,
    val_loader: Any,
    config: TrainConfig,
    *,
    run_dir: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
) -> FitResult:
    """Train `model` on `objective`; with `run_dir`, save metrics, best weights and checkpoints.

    Under `torchrun` with several processes, each rank trains on its shard of every step's
    batches (the loader's `batch_sampler.shard(world_size, rank)`) through PyTorch's
    `DistributedDataParallel`; validation runs once, on rank 0, over all of the validation data
    and its metrics go to every rank, so early stopping decides alike; rank 0 alone writes.

    Args:
        model: any module; the objective knows how to call it.
        objective: supplies the loss, the evaluation and the metric to monitor; one that
            carries state between steps (truncated BPTT) may expose it as tensors through
            `carried_state()` / `load_carried_state(tensors)` so a resume is exact.
        train_loader: iterable of batches (with `.to(device)`); its `batch_sampler` may have
            `set_epoch(e)` (a new plan each epoch, the same on every run), `start_at(k)` (the
            next pass begins at batch k: mid-epoch resume by index arithmetic) and
            `shard(n, r)` (data-parallel: rank r of n; the same batch count on every rank).
        val_loader: batches for `objective.evaluate` after each epoch.
        config: optimisation settings.
        run_dir: where to write metrics.jsonl, model.safetensors and checkpoints/.
        callbacks: progress bars, unfreezing schedules, custom stops.
        resume: continue from `run_dir/checkpoints/last.safetensors` (or the previous one),
            at the epoch and batch where it was written.

    Returns:
        A `FitResult`; `model` holds the best weights on return.

    Raises:
        TrainingError: the loss became NaN or infinite (names the epoch, step and value).
        Interrupted: SIGTERM arrived; a checkpoint was written first.
    """
    device = distributed.device_for(resolve_device(config.device))
    precision = resolve_precision(config.precision, device)
    world = distributed.setup(device)
    run_path = Path(run_dir) if run_dir is not None else None
    last_ckpt = run_path / Files.CHECKPOINT if run_path else None
    if resume and last_ckpt is None:
        raise ConfigError("resume needs a run directory with checkpoints/last.safetensors")

    # each rank draws its own dropout masks; rank 0 of one process is seeded as it always was
    torch.manual_seed(config.seed + world.rank)
    model.to(device)
    flatten_rnn_weights(model)
    sampler = getattr(train_loader, "batch_sampler", None)
    if world.distributed:
        if not hasattr(sampler, "shard"):
            raise ConfigError(
                f"{type(train_loader).__name__} batches cannot be split across processes "
                "(no batch_sampler.shard); train this one in a single process"
            )
        sampler.shard(world.world_size, world.rank)
    optimizer = make_optimizer(model, config, device)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.uses_grad_scaler)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ConfigError("the training data makes no batches (is the training split empty?)")
    state = TrainState(0, config.epochs, 0, steps_per_epoch * config.epochs, steps_per_epoch)
    progress = Progress(config, run_path)
    start_epoch, stale, stopped_early = 1, 0, False
    records: list[dict[str, Any]] = []
    spent_before = 0.0  # training seconds of the run before a resume (for max_minutes)
    best_weights: dict[str, Tensor] | None = None  # a copy of the best epoch's weights
    best_unsaved = False  # improved since the run folder was last written

    if resume:
        assert last_ckpt is not None
        restored = load_checkpoint(
            last_ckpt, model, optimizer, rank=world.rank, world_size=world.world_size
        )
        info = restored.info
        if info["config"] != _config_key(config):
            raise ConfigError(
                "cannot resume: training settings differ from the checkpoint's "
                f"({info['config']} vs {_config_key(config)})"
            )
        start_epoch = info["epoch"] + 1
        progress.position = int(info.get("position", 0))
        progress.totals = tuple(info.get("totals", (0.0, 0, 0)))  # type: ignore[assignment]
        state.step, state.best, state.best_epoch = info["step"], info["best"], info["best_epoch"]
        stale, records = info["stale"], info["records"]
        spent_before = float(info.get("train_seconds", 0.0))
        if info.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(info["scaler"])
        progress.pending = restored.rank_state
        if progress.position == 0:  # captured at an epoch's end, before the next one began
            progress.restore(objective, device)
        if restored.best is not None:
            best_weights, best_unsaved = restored.best, True
        flatten_rnn_weights(model)
        logger.info(
            "resuming from %s: epoch %d, batch %d of %d (step %d)",
            restored.path.name,
            start_epoch,
            progress.position,
            steps_per_epoch,
            state.step,
        )

    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info(
        "training %s parameters (%s trainable) on %s, %s, %d steps per epoch",
        f"{params:,}",
        f"{trainable:,}",
        device,
        precision.name,
        steps_per_epoch,
    )
    logger.info("%s", cadence(config))
    if world.distributed:
        logger.info(
            "data-parallel: %d processes x batch %d = effective batch %d at lr %g "
            "(the learning rate is not scaled with the batch)",
            world.world_size,
            config.batch_size,
            world.world_size * config.batch_size,
            config.lr,
        )
    for cb in callbacks:
        cb.on_train_begin(state)
    started = time.perf_counter() - spent_before
    budget = Budget(started, config.max_minutes)
    progress.saved(state.step)
    trained = distributed.Replicas(model, world, device)

    def save(epoch_done: int, position: int, totals: tuple[float, int, int] = (0.0, 0, 0)) -> None:
        """Bring the run folder up to date: best weights, records, checkpoint, together.

        `position` batches of the epoch after `epoch_done` are trained, with `totals` (loss
        sum, batches, tokens) so far; a checkpoint at an epoch's end has (0, zeros).
        """
        nonlocal best_unsaved
        carried = objective.carried_state() if hasattr(objective, "carried_state") else None
        blobs = distributed.all_gather_bytes(rank_state(carried))
        if world.is_main and run_path is not None:
            run_path.mkdir(parents=True, exist_ok=True)
            if best_unsaved and best_weights is not None:
                save_state(best_weights, run_path / Files.WEIGHTS)
            atomic_write_text(
                run_path / Files.RECORDS, "".join(json.dumps(r) + "\n" for r in records)
            )
            info = {
                "epoch": epoch_done,
                "position": position,
                "totals": list(totals),
                "step": state.step,
                "best": state.best,
                "best_epoch": state.best_epoch,
                "stale": stale,
                "records": records,
                "config": _config_key(config),
                "train_seconds": time.perf_counter() - started,
                "scaler": scaler.state_dict() if scaler.is_enabled() else {},
            }
            assert last_ckpt is not None
            save_checkpoint(last_ckpt, model, optimizer, info, best=best_weights, ranks=blobs)
        best_unsaved = False
        progress.saved(state.step)
        distributed.barrier()  # the others read model.safetensors only once it is whole

    ctx = EvalContext(device, precision)
    with sigterm_flag() as sigterm:
        for epoch in range(start_epoch, config.epochs + 1):
            state.epoch = epoch
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            if progress.position and hasattr(sampler, "start_at"):
                sampler.start_at(progress.position)
            elif progress.position:
                raise ConfigError(
                    f"cannot resume mid-epoch: {type(train_loader).__name__} has no "
                    "batch_sampler.start_at"
                )
            for cb in callbacks:
                cb.on_epoch_begin(state)
            trained.refresh()  # a callback may have frozen or thawed parameters
            train_loss = _train_epoch(
                trained.module,
                objective,
                train_loader,
                optimizer,
                scaler,
                precision,
                config,
                state,
                callbacks,
                budget,
                progress,
                sigterm,
                None if run_path is None else lambda at, totals, e=epoch: save(e - 1, at, totals),
            )
            # rank 0 alone, over the whole validation set (no example counted twice)
            metrics = distributed.on_main(lambda: objective.evaluate(model, val_loader, ctx))
            record = {
                "epoch": epoch,
                "step": state.step,
                "lr": state.lr,
                "train_loss": train_loss,
                **{f"val_{k}": v for k, v in metrics.items()},
                # training throughput of this epoch's steps (evaluation excluded), in the
                # batches' own unit: tokens (text) or windows (series), of all ranks together;
                # `rnnkit compare` reports it
                "tokens_per_second": round(state.tokens_per_second, 1),
                "seconds": round(time.perf_counter() - started, 3),
            }
            records.append(record)
            state.metrics = metrics
            value = metrics[objective.monitor]
            if _improved(value, state.best, objective.monitor_mode):
                state.best, state.best_epoch, stale = value, epoch, 0
                if run_path is not None:  # written at the next save (see below)
                    unique, _ = split_aliases(model.state_dict())  # ties re-made on load
                    best_weights = {k: v.detach().to("cpu", copy=True) for k, v in unique.items()}
                    best_unsaved = True
            else:
                stale += 1
            logger.debug("epoch %d: %s", epoch, json.dumps(record))
            for cb in callbacks:
                cb.on_epoch_end(state)
            stopped_early = config.patience is not None and stale >= config.patience
            # clocks and signals differ between ranks: act on what any of them saw
            fraction, due, interrupted = progress.agree(
                sigterm.seen, progress.due(state.step), budget.fraction()
            )
            spent = fraction is not None and fraction >= 1.0
            last = stopped_early or state.stop or spent or epoch == config.epochs
            due = due or interrupted
            if run_path is not None and (last or due or epoch == start_epoch):
                # Best weights, records and checkpoint move together, so a resume never pairs
                # new counters with old weights.
                save(epoch, 0)
            if interrupted and not last:
                raise Interrupted(epoch + 1, 0, state.step, run_path)
            if stopped_early:
                logger.info("no %s improvement for %d epochs: stopping", objective.monitor, stale)
                break
            if state.stop:
                break
            if spent:
                logger.info("time budget of %g minutes spent: stopping", config.max_minutes)
                break
    for cb in callbacks:
        cb.on_train_end(state)
    if run_path is not None and (run_path / Files.WEIGHTS).is_file():
        load_weights_file(model, run_path / Files.WEIGHTS, device=str(device))
        flatten_rnn_weights(model)
    # Rank 0 goes on to write the run folder (a forecaster rewrites model.safetensors with its
    # calibrated interval) only once every rank has read the best weights. Every rank waits,
    # whether or not it sees the file (another node may not share the folder).
    distributed.barrier()
    return FitResult(
        records,
        state.best,
        state.best_epoch,
        stopped_early,
        time.perf_counter() - started,
        precision.name,
        str(device),
    )


class Interrupted(TrainingError):
    """SIGTERM stopped training; the run folder (if any) holds a checkpoint at that step."""

    def __init__(self, epoch: int, position: int, step: int, run_dir: Path | None) -> None:
        saved = (
            "no run folder, so nothing was saved"
            if run_dir is None
            else f"a checkpoint was written in {run_dir}: continue with --resume (under torchrun "
            "--max-restarts a restart resumes by itself)"
        )
        super().__init__(
            f"stopped by SIGTERM at epoch {epoch}, batch {position} (step {step}); {saved}"
        )


def flatten_rnn_weights(model: nn.Module) -> None:
    """Put each cuDNN RNN's weights back in one contiguous block after a move or a load.

    cuDNN runs an RNN on one flat weight buffer; `.to("cuda")` and `load_state_dict` leave the
    parameters apart, and PyTorch then copies them together on every call (with a warning).
    A no-op on CPU.
    """
    if not any(p.is_cuda for p in model.parameters()):
        return
    for module in model.modules():
        if isinstance(module, nn.RNNBase):
            module.flatten_parameters()


def make_optimizer(
    model: nn.Module, config: TrainConfig, device: torch.device
) -> torch.optim.Optimizer:
    """Adam or AdamW over the model's parameters, fused into one kernel where PyTorch has one.

    The fused CPU kernel updates every tensor in one pass instead of one small kernel per
    tensor (the saving per step: docs/benchmarks.md, "Language models"). Same update rule, so
    results differ only in rounding.
    """
    opt_cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    params = list(model.parameters())
    fused = device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in params)
    return opt_cls(
        params, lr=config.lr, weight_decay=config.weight_decay, fused=True if fused else None
    )


def _config_key(config: TrainConfig) -> dict[str, Any]:
    """The settings a resumed run must share with the original (device may differ)."""
    keep = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "schedule", "seed")
    return {k: getattr(config, k) for k in keep}


def _train_epoch(
    model: nn.Module,
    objective: Objective,
    loader: Any,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    precision: Precision,
    config: TrainConfig,
    state: TrainState,
    callbacks: Sequence[Callback],
    budget: Budget,
    progress: Progress,
    sigterm: SigtermFlag,
    save: Callable[[int, tuple[float, int, int]], None] | None,
) -> float:
    """One epoch's steps from `progress.position` on; returns the epoch's mean training loss.

    Before each step the ranks agree (one small all-reduce under torchrun) on the budget's
    fraction, whether a checkpoint is due and whether SIGTERM arrived; a checkpoint written
    here (`save(position, totals)`; None without a run folder) records the batch position, so
    a resume starts at the next batch.
    """
    model.train()
    total, count, tokens = progress.totals
    position = progress.position
    progress.position, progress.totals = 0, (0.0, 0, 0)
    tick = time.perf_counter()
    measured = 0
    batches = iter(loader)  # a DataLoader draws its base seed from torch's generator here
    progress.restore(objective, next(model.parameters()).device)  # a mid-epoch resume's state
    for batch in batches:
        fraction = budget.fraction()
        due = save is not None and position > 0 and progress.due(state.step, mid_epoch=True)
        fraction, due, interrupted = progress.agree(sigterm.seen, due, fraction)
        if fraction is not None and fraction >= 1.0:
            break
        if (due or interrupted) and save is not None:
            save(position, (total, count, tokens))
        if interrupted:
            raise Interrupted(state.epoch, position, state.step, progress.run_dir)
        step = state.step
        if fraction is not None:  # the schedule runs on time: the budget is the whole run
            step = min(int(fraction * state.total_steps), state.total_steps - 1)
        factor = lr_factor(config.schedule, step, state.total_steps, config.warmup_fraction)
        for group in optimizer.param_groups:
            group["lr"] = config.lr * factor
        batch = _to(batch, next(model.parameters()).device)
        with precision.autocast():
            loss = objective.compute_loss(model, batch)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingError(
                f"loss became {value} at epoch {state.epoch}, step {state.step + 1}; the last "
                "checkpoint is intact. Try a lower --lr, keep gradient clipping on "
                "(train.clip_norm), or --precision fp32"
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if config.clip_norm is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        scaler.step(optimizer)
        scaler.update()
        state.step += 1
        position += 1
        total += value
        count += 1
        n = _num_tokens(batch)
        tokens += n
        measured += n
        state.loss = total / count
        state.lr = config.lr * factor
        state.tokens_per_second = measured / max(time.perf_counter() - tick, 1e-9)
        for cb in callbacks:
            cb.on_step(state)
    if distributed.active():  # the epoch's loss and throughput over every rank's batches
        total, count, measured = distributed.all_reduce_sum([total, count, measured])
        state.tokens_per_second = measured / max(time.perf_counter() - tick, 1e-9)
    return total / max(count, 1)
