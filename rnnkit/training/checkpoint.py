"""Training checkpoints as one safetensors file: tensors plus JSON metadata, written atomically.

Model weights, optimizer moments and the torch RNG state are tensors; the epoch, step, optimizer
hyper-parameters and early-stopping bookkeeping ride in the safetensors header's metadata. One
file means the pair can never be half-updated: a crash leaves the previous checkpoint whole.
No pickle: `torch.save`/`torch.load` are not used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save

from rnnkit.errors import DataError
from rnnkit.io import atomic_write_bytes
from rnnkit.model_file import load_tensors, split_aliases

FORMAT = "rnnkit-checkpoint/1"


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or strided storage; clone-on-need keeps it exact.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def save_weights(model: torch.nn.Module, path: str | Path, metadata: dict[str, str] | None = None):
    """Write `model.state_dict()` to a safetensors file atomically, each tied tensor once.

    Read it back with `load_weights_file`, which restores the tied names.
    """
    save_state(model.state_dict(), path, metadata)


def save_state(
    state: Mapping[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None
) -> None:
    """`save_weights` for a state dict (e.g. a snapshot of the best epoch's weights)."""
    unique, _ = split_aliases(state)
    atomic_write_bytes(path, save(_contiguous(unique), metadata=metadata))


def load_weights_file(model: torch.nn.Module, path: str | Path, device: str = "cpu") -> None:
    """Load a file written by `save_weights` (validated by `rnnkit.model_file`) into `model`."""
    model.load_state_dict(load_tensors(path, model.state_dict(), device))


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    info: dict[str, Any],
) -> None:
    """Write model, optimizer and RNG state plus `info` (JSON-able) to `path` atomically."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for index, state in opt["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = value
            else:  # e.g. a float `step` in some optimizers
                tensors[f"optim.{index}.{key}"] = torch.tensor(value)
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {
        "format": FORMAT,
        "info": json.dumps(info),
        "param_groups": json.dumps(opt["param_groups"]),
    }
    atomic_write_bytes(path, save(_contiguous(tensors), metadata=meta))


def load_checkpoint(
    path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Restore model, optimizer and RNG state from `path`; returns the saved `info`."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no checkpoint to resume from (train once without --resume)", path=path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iter
    except Exception as exc:  # safetensors raises its own error types for a damaged header
        raise DataError(f"not a readable checkpoint: {exc}", path=path) from exc
    if meta.get("format") != FORMAT:
        raise DataError(f"not an rnnkit checkpoint (format {meta.get('format')!r})", path=path)
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(model_state, strict=False)
    if missing or unexpected:
        raise DataError(
            f"checkpoint does not fit this model: missing {missing}, unexpected {unexpected}",
            path=path,
        )
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    torch.set_rng_state(tensors["rng.torch"])
    return json.loads(meta["info"])
