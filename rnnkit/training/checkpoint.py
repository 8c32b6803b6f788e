"""Training checkpoints as one safetensors file: tensors plus JSON metadata, written atomically.

Format `rnnkit-checkpoint/2`: model weights, optimizer moments, the gradient scaler and each
rank's random states (torch, CUDA, NumPy, Python, plus any state the objective carries, such as
a language model's hidden state between windows) are tensors; the epoch, the batch position
inside it, the step, optimizer hyper-parameters and early-stopping bookkeeping ride in the
safetensors header's metadata. One file means the parts can never be half-updated: a crash
leaves the previous checkpoint whole, and the one before the last is kept as
`previous.safetensors`, the fallback when the last is truncated or corrupt. `/1` files (epoch
boundaries, torch RNG alone) still load. No pickle: `torch.save`/`torch.load` are not used.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load, save

from rnnkit.errors import DataError
from rnnkit.io import atomic_write_bytes
from rnnkit.model_file import load_tensors, split_aliases

FORMAT = "rnnkit-checkpoint/2"
READS = ("rnnkit-checkpoint/1", FORMAT)  # /1: epoch boundaries only, torch RNG alone

logger = logging.getLogger(__name__)


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
    """`save_weights` for a state dict (e.g. a snapshot of the best epoch's weights).

    The header's metadata records a sha256 of every tensor (`model_file.with_checksums`), which
    `model_file.load_tensors` verifies.
    """
    from rnnkit.model_file import with_checksums

    unique, _ = split_aliases(state)
    tensors = _contiguous(unique)
    atomic_write_bytes(path, save(tensors, metadata=with_checksums(tensors, metadata)))


def load_weights_file(model: torch.nn.Module, path: str | Path, device: str = "cpu") -> None:
    """Load a file written by `save_weights` (validated by `rnnkit.model_file`) into `model`."""
    model.load_state_dict(load_tensors(path, model.state_dict(), device))


def previous_path(path: str | Path) -> Path:
    """Where the checkpoint before `path` is kept (`checkpoints/previous.safetensors`)."""
    path = Path(path)
    return path.with_name("previous" + path.suffix)


def rank_state(carried: Mapping[str, torch.Tensor] | None = None) -> bytes:
    """This process's private state as safetensors bytes: every RNG, and the objective's state.

    Python's and NumPy's generators ride in the metadata as JSON; torch's (and each CUDA
    device's) as uint8 tensors; `carried` is the objective's state between steps (the hidden
    state that truncated BPTT carries into the next window), stored under `carried.<name>`.
    """
    tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    for name, value in (carried or {}).items():
        tensors[f"carried.{name}"] = value
    version, internal, gauss_next = random.getstate()
    meta = {
        "python": json.dumps([version, list(internal), gauss_next]),
        "numpy": json.dumps([kind, int(pos), int(has_gauss), float(gauss)]),
    }
    return save(_contiguous(tensors), metadata=meta)


def restore_rank_state(blob: bytes) -> dict[str, torch.Tensor]:
    """Set every RNG from `rank_state`'s bytes; returns the objective's carried tensors."""
    tensors = load(blob)
    meta = _metadata_of(blob)
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    kind, pos, has_gauss, gauss = json.loads(meta["numpy"])
    keys = tensors["rng.numpy"].numpy().astype(np.uint32)
    np.random.set_state((kind, keys, pos, has_gauss, gauss))
    version, internal, gauss_next = json.loads(meta["python"])
    random.setstate((version, tuple(internal), gauss_next))
    return {k[len("carried.") :]: v for k, v in tensors.items() if k.startswith("carried.")}


def _metadata_of(blob: bytes) -> dict[str, str]:
    """The `__metadata__` of safetensors bytes (the header is 8 bytes of length, then JSON)."""
    size = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8 : 8 + size]).get("__metadata__") or {}


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    info: dict[str, Any],
    *,
    best: Mapping[str, torch.Tensor] | None = None,
    ranks: Sequence[bytes] | None = None,
) -> None:
    """Write model, optimizer, best weights and each rank's state plus `info` to `path`.

    The file is written atomically; the one it replaces is kept as `previous.safetensors`, so a
    damaged latest checkpoint (a disk that lied about fsync, a copy cut short) still leaves one
    to resume from (`load_checkpoint` falls back to it with a warning).

    Args:
        path: `checkpoints/last.safetensors` of the run.
        model, optimizer: their state as of the save.
        info: counters and bookkeeping (JSON-able).
        best: the best weights so far (each tied tensor once), so a resumed run is whole
            even when it falls back to the previous checkpoint.
        ranks: each data-parallel rank's `rank_state()`, in rank order (default: this
            process's alone).
    """
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for index, state in opt["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = value
            else:  # e.g. a float `step` in some optimizers
                tensors[f"optim.{index}.{key}"] = torch.tensor(value)
    if best is not None:
        unique, _ = split_aliases(best)
        tensors.update({f"best.{k}": v for k, v in unique.items()})
    blobs = list(ranks) if ranks is not None else [rank_state()]
    for r, blob in enumerate(blobs):
        tensors[f"rank.{r}"] = torch.frombuffer(bytearray(blob), dtype=torch.uint8)
    meta = {
        "format": FORMAT,
        "info": json.dumps(info),
        "param_groups": json.dumps(opt["param_groups"]),
        "world_size": str(len(blobs)),
    }
    data = save(_contiguous(tensors), metadata=meta)
    path = Path(path)
    if path.is_file():  # keep the last good one as `previous` until the new one is whole
        _keep_as_previous(path)
    atomic_write_bytes(path, data)


def _keep_as_previous(path: Path) -> None:
    """Make `previous.safetensors` the same file as `path`, with `path` never missing.

    A hard link, so a kill at any instant leaves `last` readable (the new one renamed over it
    atomically, or the old one still there); where the file system has no hard links, a rename,
    after which `last` is missing for the instant before the new one lands and resume reads
    `previous`.
    """
    previous = previous_path(path)
    previous.unlink(missing_ok=True)
    try:
        os.link(path, previous)
    except OSError:
        os.replace(path, previous)


@dataclass
class Restored:
    """What `load_checkpoint` read besides the model and optimizer it filled."""

    info: dict[str, Any]
    best: dict[str, torch.Tensor] | None  # the best weights so far (None in old checkpoints)
    rank_state: bytes | None  # this rank's `rank_state()`, for `restore_rank_state`
    path: Path  # the file it came from (last, or previous after a fallback)


def load_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    rank: int = 0,
    world_size: int = 1,
) -> Restored:
    """Restore model and optimizer from `path` (or the previous one); return the rest.

    This rank's RNG and carried state come back as `Restored.rank_state` bytes: the caller
    restores them with `restore_rank_state` at the moment they were captured (after the
    epoch's loader iterator was made, for a checkpoint inside an epoch: making a
    `DataLoader` iterator draws from torch's generator).

    A latest checkpoint that cannot be read (truncated, damaged) falls back to
    `previous.safetensors` with a warning naming what was wrong.

    Raises:
        DataError: no checkpoint, none readable, or one that does not fit this model or this
            number of ranks.
    """
    path = Path(path)
    candidates = [p for p in (path, previous_path(path)) if p.is_file()]
    if not candidates:
        raise DataError("no checkpoint to resume from (train once without --resume)", path=path)
    failures = []
    for candidate in candidates:
        try:
            meta, tensors = _read(candidate)
        except DataError as exc:
            failures.append(str(exc))
            logger.warning("%s; trying the checkpoint before it", exc)
            continue
        return _restore(candidate, meta, tensors, model, optimizer, rank, world_size)
    raise DataError("no readable checkpoint: " + "; ".join(failures), path=path)


def _read(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iter
    except Exception as exc:  # safetensors raises its own error types for a damaged file
        raise DataError(f"not a readable checkpoint: {exc}", path=path) from exc
    if meta.get("format") not in READS:
        raise DataError(f"not an rnnkit checkpoint (format {meta.get('format')!r})", path=path)
    try:
        json.loads(meta["info"])
        json.loads(meta["param_groups"])
    except (KeyError, ValueError) as exc:
        raise DataError(f"damaged checkpoint metadata: {exc}", path=path) from exc
    return meta, tensors


def _restore(
    path: Path,
    meta: dict[str, str],
    tensors: dict[str, torch.Tensor],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rank: int,
    world_size: int,
) -> Restored:
    saved_world = int(meta.get("world_size", "1"))
    if saved_world != world_size:
        raise DataError(
            f"the checkpoint was written by {saved_world} process(es), this run has "
            f"{world_size}: resume with --nproc-per-node x --nnodes = {saved_world} (an exact "
            "resume needs each rank's own random state)",
            path=path,
        )
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
    best = {k[len("best.") :]: v for k, v in tensors.items() if k.startswith("best.")} or None
    blob = None
    if f"rank.{rank}" in tensors:  # restored by the caller, when the moment is right
        blob = bytes(tensors[f"rank.{rank}"].numpy())
    else:  # rnnkit-checkpoint/1: torch's generator alone, at an epoch boundary
        torch.set_rng_state(tensors["rng.torch"])
    return Restored(json.loads(meta["info"]), best, blob, path)
