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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import Tensor, nn

from rnnkit.errors import ConfigError, RnnkitError
from rnnkit.io import atomic_write_text
from rnnkit.model_file import split_aliases
from rnnkit.run_folder import Files
from rnnkit.training.checkpoint import (
    load_checkpoint,
    load_weights_file,
    save_checkpoint,
    save_state,
)
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
            after every epoch.
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

    Args:
        model: any module; the objective knows how to call it.
        objective: supplies the loss, the evaluation and the metric to monitor.
        train_loader: iterable of batches (with `.to(device)`); if its `batch_sampler` has
            `set_epoch`, it is called each epoch so shuffling differs per epoch but not per run.
        val_loader: batches for `objective.evaluate` after each epoch.
        config: optimisation settings.
        run_dir: where to write metrics.jsonl, model.safetensors and checkpoints/.
        callbacks: progress bars, unfreezing schedules, custom stops.
        resume: continue from `run_dir/checkpoints/last.safetensors`.

    Returns:
        A `FitResult`; `model` holds the best weights on return.

    Raises:
        TrainingError: the loss became NaN or infinite (names the epoch, step and value).
    """
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    run_path = Path(run_dir) if run_dir is not None else None
    last_ckpt = run_path / Files.CHECKPOINT if run_path else None
    if resume and last_ckpt is None:
        raise ConfigError("resume needs a run directory with checkpoints/last.safetensors")

    torch.manual_seed(config.seed)
    model.to(device)
    optimizer = make_optimizer(model, config, device)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.uses_grad_scaler)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ConfigError("the training data makes no batches (is the training split empty?)")
    state = TrainState(0, config.epochs, 0, steps_per_epoch * config.epochs, steps_per_epoch)
    records: list[dict[str, Any]] = []
    start_epoch, stale, stopped_early = 1, 0, False
    spent_before = 0.0  # training seconds of the run before a resume (for max_minutes)

    if resume:
        assert last_ckpt is not None
        info = load_checkpoint(last_ckpt, model, optimizer)
        if info["config"] != _config_key(config):
            raise ConfigError(
                "cannot resume: training settings differ from the checkpoint's "
                f"({info['config']} vs {_config_key(config)})"
            )
        start_epoch = info["epoch"] + 1
        state.step, state.best, state.best_epoch = info["step"], info["best"], info["best_epoch"]
        stale, records = info["stale"], info["records"]
        spent_before = float(info.get("train_seconds", 0.0))
        logger.info("resuming after epoch %d (step %d)", info["epoch"], state.step)

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
    for cb in callbacks:
        cb.on_train_begin(state)
    started = time.perf_counter() - spent_before
    budget = Budget(started, config.max_minutes)
    saved_at = time.perf_counter()  # when the run folder was last brought up to date
    best_weights: dict[str, Tensor] | None = None  # improved weights not yet written
    for epoch in range(start_epoch, config.epochs + 1):
        state.epoch = epoch
        sampler = getattr(train_loader, "batch_sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        for cb in callbacks:
            cb.on_epoch_begin(state)
        train_loss = _train_epoch(
            model,
            objective,
            train_loader,
            optimizer,
            scaler,
            precision,
            config,
            state,
            callbacks,
            budget,
        )
        ctx = EvalContext(device, precision)
        metrics = objective.evaluate(model, val_loader, ctx)
        record = {
            "epoch": epoch,
            "step": state.step,
            "lr": state.lr,
            "train_loss": train_loss,
            **{f"val_{k}": v for k, v in metrics.items()},
            # training throughput of this epoch's steps (evaluation excluded), in the batches'
            # own unit: tokens (text) or windows (series); `rnnkit compare` reports it
            "tokens_per_second": round(state.tokens_per_second, 1),
            "seconds": round(time.perf_counter() - started, 3),
        }
        records.append(record)
        state.metrics = metrics
        value = metrics[objective.monitor]
        if _improved(value, state.best, objective.monitor_mode):
            state.best, state.best_epoch, stale = value, epoch, 0
            if run_path is not None:  # kept in memory until the next save (see below)
                unique, _ = split_aliases(model.state_dict())  # ties re-made on load
                best_weights = {k: v.detach().to("cpu", copy=True) for k, v in unique.items()}
        else:
            stale += 1
        logger.debug("epoch %d: %s", epoch, json.dumps(record))
        for cb in callbacks:
            cb.on_epoch_end(state)
        stopped_early = config.patience is not None and stale >= config.patience
        last = stopped_early or state.stop or budget.spent() or epoch == config.epochs
        due = time.perf_counter() - saved_at >= config.checkpoint_seconds
        if run_path is not None and (last or due or epoch == start_epoch):
            # Best weights, records and checkpoint move together, so a resume never pairs
            # new counters with old weights.
            run_path.mkdir(parents=True, exist_ok=True)
            if best_weights is not None:
                save_state(best_weights, run_path / Files.WEIGHTS)
                best_weights = None
            atomic_write_text(
                run_path / Files.RECORDS, "".join(json.dumps(r) + "\n" for r in records)
            )
            info = {
                "epoch": epoch,
                "step": state.step,
                "best": state.best,
                "best_epoch": state.best_epoch,
                "stale": stale,
                "records": records,
                "config": _config_key(config),
                "train_seconds": time.perf_counter() - started,
            }
            assert last_ckpt is not None
            save_checkpoint(last_ckpt, model, optimizer, info)
            saved_at = time.perf_counter()
        if stopped_early:
            logger.info("no %s improvement for %d epochs: stopping", objective.monitor, stale)
            break
        if state.stop:
            break
        if budget.spent():
            logger.info("time budget of %g minutes spent: stopping", config.max_minutes)
            break
    for cb in callbacks:
        cb.on_train_end(state)
    if run_path is not None and (run_path / Files.WEIGHTS).is_file():
        load_weights_file(model, run_path / Files.WEIGHTS, device=str(device))
    return FitResult(
        records,
        state.best,
        state.best_epoch,
        stopped_early,
        time.perf_counter() - started,
        precision.name,
        str(device),
    )


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


@dataclass(frozen=True)
class Budget:
    """A wall-clock budget: `fraction()` of it used so far, and whether it is `spent()`."""

    started: float  # time.perf_counter() when training (of this run, resumes included) began
    minutes: float | None

    def fraction(self) -> float | None:
        if self.minutes is None:
            return None
        return (time.perf_counter() - self.started) / (60.0 * self.minutes)

    def spent(self) -> bool:
        fraction = self.fraction()
        return fraction is not None and fraction >= 1.0


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
) -> float:
    model.train()
    total, count, tokens = 0.0, 0, 0
    tick = time.perf_counter()
    for batch in loader:
        step = state.step
        fraction = budget.fraction()
        if fraction is not None:  # the schedule runs on time: the budget is the whole run
            if fraction >= 1.0:
                break
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
        total += value
        count += 1
        tokens += _num_tokens(batch)
        state.loss = total / count
        state.lr = config.lr * factor
        state.tokens_per_second = tokens / max(time.perf_counter() - tick, 1e-9)
        for cb in callbacks:
            cb.on_step(state)
    return total / max(count, 1)
