"""The forecaster's training task: windows from a zero state, or streams with the state carried.

`train_members` trains a seed ensemble and merges it (`rnnkit.tasks.forecasting.ensemble`).

`ForecastingObjective` is what `fit` calls. A `WindowBatch` (`rnnkit.tasks.forecasting.windows`) is
scored at its last step from a zero state; a `StreamBatch` (`rnnkit.tasks.forecasting.streams`)
after every step, starting from the state the previous window of the same streams ended in,
detached so gradients stop at the window boundary (truncated BPTT, as the language model trains).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit import run_folder
from rnnkit.io import atomic_write_json, atomic_write_text
from rnnkit.layout import Files
from rnnkit.models.encoder import State, detach_state
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.tasks.forecasting.streams import StreamBatch
from rnnkit.training import Callback, EvalContext, FitResult, TrainConfig, fit
from rnnkit.training.distill import Teacher, carried_tensors, split_carried
from rnnkit.training.distributed import is_main_process
from rnnkit.training.precision import eval_mode

logger = logging.getLogger(__name__)


def forward_batch(model: Forecaster, batch: Any, state: State | None = None):
    """(params (N, H, K, P), target (N, H, K), final state) of the batch's scored origins."""
    if isinstance(batch, StreamBatch):
        params, state = model(
            batch.x, batch.future, batch.base, None if batch.first else state, all_steps=True
        )
        return params[batch.valid], batch.target[batch.valid], state
    params, state = model(batch.x, batch.future, batch.base)
    return params, batch.target, state


class ForecastingObjective:
    """The model's own loss (pinball / Gaussian NLL / L1); validation loss monitored.

    Holds the running state between `compute_loss` calls for stream batches.

    Args:
        teacher: when distilling, a forecaster with the same inputs and outputs whose raw
            outputs (the point forecast, quantiles or distribution parameters at every horizon,
            in the scaled space) the student matches in mean squared error, mixed with its own
            loss on the truth. It carries its own stream state, as the student does.
    """

    monitor = "loss"
    monitor_mode: Literal["max", "min"] = "min"

    def __init__(self, teacher: Teacher | None = None) -> None:
        self.teacher = teacher
        self.state: State | None = None
        self.teacher_state: State | None = None

    def carried_state(self) -> dict[str, Tensor]:
        """The stream state carried into the next window (the teacher's too), for a checkpoint."""
        return carried_tensors(self.state, self.teacher_state)

    def load_carried_state(self, tensors: dict[str, Tensor]) -> None:
        self.state, self.teacher_state = split_carried(tensors)

    def compute_loss(self, model: torch.nn.Module, batch: Any) -> Tensor:
        params, target, state = forward_batch(model, batch, self.state)  # type: ignore[arg-type]
        self.state = detach_state(state)
        teacher_params = None
        if self.teacher is not None and self.teacher.alpha > 0.0:
            with torch.no_grad():
                teacher_params, _, self.teacher_state = forward_batch(
                    self.teacher.beside(model),  # type: ignore[arg-type]
                    batch,
                    self.teacher_state,
                )
        if target.numel() == 0:  # a window of ragged stream ends only: nothing to score
            return params.sum() * 0.0
        forecaster = getattr(model, "module", model)  # under torchrun, DDP wraps the model
        loss = forecaster.loss(params.float(), target)
        if teacher_params is None:
            return loss
        return self.teacher.mix(  # type: ignore[union-attr]
            loss, lambda: F.mse_loss(params.float(), teacher_params.float())
        )

    def evaluate(self, model: torch.nn.Module, loader: Any, ctx: EvalContext) -> dict[str, float]:
        total, mae, count = 0.0, 0.0, 0
        with eval_mode(model):
            for params, target in predictions(model, loader, ctx.device, ctx.precision):  # type: ignore[arg-type]
                n = len(target)
                if n == 0:
                    continue
                total += float(model.loss(params, target)) * n
                mae += float((model.forecast(params).point - target).abs().mean()) * n
                count += n
        return {"loss": total / max(count, 1), "mae_scaled": mae / max(count, 1)}


@torch.no_grad()
def predictions(
    model: Forecaster, loader: Iterable[Any], device: torch.device, precision: Any = None
) -> Iterator[tuple[Tensor, Tensor]]:
    """(params, target) of every scored origin of `loader`, batch by batch, state carried."""
    state = None
    for batch in loader:
        batch = batch.to(device)
        if precision is None:
            params, target, state = forward_batch(model, batch, state)
        else:
            with precision.autocast():
                params, target, state = forward_batch(model, batch, state)
        yield params.float(), target


@torch.no_grad()
def calibrate_intervals(model: Forecaster, loader: Iterable[Any]) -> list[float] | None:
    """Fit the model's interval widening on the validation origins (None: no intervals)."""
    if model.config.likelihood == "none":
        return None
    device = next(model.parameters()).device
    parts: dict[str, list[Tensor]] = {"point": [], "lower": [], "upper": [], "target": []}
    with eval_mode(model):
        for params, target in predictions(model, loader, device):
            fc = model.forecast(params, calibrated=False)
            for key, value in (("point", fc.point), ("lower", fc.lower), ("upper", fc.upper)):
                parts[key].append(value)
            parts["target"].append(target)
    joined = {k: torch.cat(v) for k, v in parts.items()}
    scale = model.calibrate(joined["point"], joined["lower"], joined["upper"], joined["target"])
    return [round(float(v), 3) for v in scale]


def member_seed(seed: int, member: int) -> int:
    """Seed of ensemble member `member`: the run's own for the first, far apart for the rest.

    Member 0 of a run is the single model the same seed would train, and members of runs with
    neighbouring seeds never coincide (seed 0's second member is 1000, not seed 1's first).
    """
    return seed if member == 0 else seed + 1000 * member


def train_members(
    model_cfg: ForecasterConfig,
    members: int,
    make_train_loader: Callable[[int], Any],
    val_loader: Any,
    config: TrainConfig,
    run_dir: Path,
    *,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
    teacher: Teacher | None = None,
) -> tuple[Forecaster, FitResult]:
    """Train `members` forecasters with their own seeds and merge them into one.

    Member j trains in `run_dir/members/j/` (its metrics, best weights and checkpoint, so a
    resumed run retrains only unfinished members; `result.json` marks a finished one). The
    returned `FitResult` holds every member's epoch records, each tagged with `member`, with
    `seconds` counted from the first member's start.

    Args:
        model_cfg: one member's configuration.
        members: how many to train (>= 2).
        make_train_loader: seed -> the training loader shuffled by that seed.
        val_loader: validation batches (the same for every member).
        config: training settings; each member replaces `seed` with `member_seed` and takes
            1/members of `max_minutes`.
        run_dir: the run folder.
        callbacks: passed to every member's `fit`.
        resume: continue unfinished members from their checkpoints.
        teacher: when distilling, the teacher every member learns from.

    Returns:
        (the merged model, with its interval not yet calibrated; the combined result).
    """
    from rnnkit.tasks.forecasting.ensemble import merge_forecasters

    trained, records, offset, seconds = [], [], 0.0, 0.0
    best_epochs = []
    for j in range(members):
        folder = run_dir / "members" / str(j)
        seed = member_seed(config.seed, j)
        # a wall-clock budget is the whole run's: each member gets its share
        budget = None if config.max_minutes is None else config.max_minutes / members
        member_config = replace(config, seed=seed, max_minutes=budget)
        torch.manual_seed(seed)
        model = Forecaster(model_cfg)
        done = folder / "result.json"
        if resume and done.is_file():
            run_folder.load_weights(model, folder)
            result = FitResult(**json.loads(done.read_text(encoding="utf-8")))
        else:
            result = fit(
                model,
                ForecastingObjective(teacher),
                make_train_loader(seed),
                val_loader,
                member_config,
                run_dir=folder,
                callbacks=callbacks,
                resume=resume and run_folder.has_checkpoint(folder),
            )
            if is_main_process():
                atomic_write_json(done, asdict(result))
        logger.info("ensemble member %d/%d: best epoch %s", j + 1, members, result.best_epoch)
        trained.append(model.eval())
        records += [
            {**r, "member": j, "seconds": round(offset + r["seconds"], 3)} for r in result.records
        ]
        offset += result.records[-1]["seconds"] if result.records else 0.0
        seconds += result.seconds
        best_epochs.append(result.best_epoch)
    if is_main_process():
        atomic_write_text(run_dir / Files.RECORDS, "".join(json.dumps(r) + "\n" for r in records))
    merged = merge_forecasters(trained)
    last = result
    return merged, FitResult(
        records,
        last.best,
        best_epochs[0],
        last.stopped_early,
        seconds,
        last.precision,
        last.device,
    )
