"""Data-parallel training under `torchrun`: who this process is, the process group, collectives.

`torchrun --nproc-per-node N -m rnnkit train ...` starts N copies of the same command and sets
`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`/`MASTER_PORT` and
`TORCHELASTIC_RESTART_COUNT` in each; this module reads them, so a plain `rnnkit train` (none
set) is one process exactly as before. The engine (`engine.fit`) wraps the model in PyTorch's
`DistributedDataParallel` over gloo (CPU) or NCCL (CUDA); what is ours is only what DDP leaves
to its user:

- every rank's loader yields the same number of batches by construction (each sampler's
  `shard(num_replicas, rank)`), so no rank waits in an all-reduce that another never joins;
- one small all-reduce per step agrees on what must be agreed (the time-driven schedule's
  position, a checkpoint due, a SIGTERM seen by any rank): ranks never decide apart;
- byte collectives (`all_gather_bytes`, `broadcast_bytes`) carry each rank's RNG state to the
  checkpoint and rank 0's metrics to the others as tensors, never as pickled objects
  (`torch.distributed`'s `*_object` collectives pickle, so they are not used).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from rnnkit.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel ranks (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the run folder and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer") from None


def world() -> World:
    """This process's rank and world size, from torchrun's environment (none: one process)."""
    size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    if size < 1 or not 0 <= rank < size:
        raise ConfigError(f"RANK={rank} WORLD_SIZE={size}: expected 0 <= RANK < WORLD_SIZE")
    return World(rank, size, _env_int("LOCAL_RANK", rank))


def is_main_process() -> bool:
    """True unless this is a data-parallel rank other than 0 (which must not write files)."""
    return world().is_main


def restart_count() -> int:
    """How many times torchrun (`--max-restarts`) has restarted this job's workers."""
    return _env_int("TORCHELASTIC_RESTART_COUNT", 0)


def setup(device: torch.device) -> World:
    """Join the process group when launched by torchrun with several ranks; return the world.

    gloo for CPU tensors, NCCL for CUDA ones (each rank on its `LOCAL_RANK` GPU). Idempotent.
    """
    w = world()
    if not w.distributed or dist.is_initialized():
        return w
    if not dist.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed; run one process")
    if device.type == "cuda":
        torch.cuda.set_device(w.local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    # torchrun's agent keeps one store for every restart of the workers, and the process group's
    # keys in it carry no attempt number: after `--max-restarts` restarts a worker a rank can read
    # the address its dead predecessor published and wait on it forever. A prefix per attempt
    # keeps each attempt's keys apart (what torch's env:// rendezvous leaves out).
    store, rank, size = next(dist.rendezvous("env://", w.rank, w.world_size))
    store = dist.PrefixStore(f"rnnkit/attempt-{restart_count()}", store)
    dist.init_process_group(backend, store=store, rank=rank, world_size=size)
    logger.info("rank %d of %d joined the %s process group", w.rank, w.world_size, backend)
    return w


def device_for(device: torch.device) -> torch.device:
    """Each rank's own GPU under torchrun (`cuda` -> `cuda:LOCAL_RANK`); CPU is shared."""
    if device.type == "cuda" and device.index is None and world().distributed:
        return torch.device("cuda", world().local_rank)
    return device


def shutdown() -> None:
    """Leave the process group (no-op when not in one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    """True inside an initialised process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _comm_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if _nccl() else torch.device("cpu")


def _nccl() -> bool:
    return dist.get_backend() == "nccl"


def all_reduce_max(values: list[float]) -> list[float]:
    """The element-wise maximum of `values` over the ranks (the values themselves alone)."""
    return _all_reduce(values, dist.ReduceOp.MAX)


def all_reduce_sum(values: list[float]) -> list[float]:
    """The element-wise sum of `values` over the ranks (the values themselves alone)."""
    return _all_reduce(values, dist.ReduceOp.SUM)


def _all_reduce(values: list[float], op: Any) -> list[float]:
    if not active():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t, op=op)
    return t.tolist()


def all_gather_bytes(data: bytes) -> list[bytes]:
    """Every rank's `data`, in rank order (each rank may send a different length)."""
    if not active():
        return [data]
    device = _comm_device()
    size = torch.tensor([len(data)], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    longest = max(int(s) for s in sizes)
    mine = torch.zeros(longest, dtype=torch.uint8, device=device)
    if data:  # torch.frombuffer refuses an empty buffer
        mine[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device)
    out = [torch.empty(longest, dtype=torch.uint8, device=device) for _ in sizes]
    dist.all_gather(out, mine)
    return [bytes(t[: int(n)].cpu().numpy()) for t, n in zip(out, sizes, strict=True)]


def broadcast_bytes(data: bytes) -> bytes:
    """Rank 0's `data` on every rank (what the others pass is ignored)."""
    if not active():
        return data
    device = _comm_device()
    size = torch.tensor([len(data)], dtype=torch.long, device=device)
    dist.broadcast(size, 0)
    buf = torch.zeros(int(size), dtype=torch.uint8, device=device)
    if dist.get_rank() == 0 and data:  # torch.frombuffer refuses an empty buffer
        buf[:] = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device)
    dist.broadcast(buf, 0)
    return bytes(buf.cpu().numpy())


def on_main(compute: Callable[[], Any]) -> Any:
    """`compute()` run on rank 0 alone, its JSON-able result given to every rank.

    What only rank 0 should do once (validation over the whole set, so no example is counted
    twice and the numbers are those of one process) while the others wait for its answer.
    """
    if not active():
        return compute()
    payload = json.dumps(compute()).encode() if is_main_process() else b""
    return json.loads(broadcast_bytes(payload))


class Replicas:
    """The module the training steps call: the model itself, or its DDP wrapper under torchrun.

    DDP registers the parameters that require a gradient when it is built; a callback that
    thaws layers (gradual unfreezing) changes that set, so `refresh` rebuilds the wrapper then.
    """

    def __init__(self, model: torch.nn.Module, world: World, device: torch.device) -> None:
        self.model, self.world, self.device = model, world, device
        self.module: torch.nn.Module = model
        self._trainable: tuple[bool, ...] | None = None

    def refresh(self) -> None:
        """Wrap the model again if the set of trainable parameters changed (or not yet)."""
        if not self.world.distributed:
            return
        trainable = tuple(p.requires_grad for p in self.model.parameters())
        if trainable == self._trainable:
            return
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        self.module = DistributedDataParallel(
            self.model,
            device_ids=ids,
            # no buffer changes while training (the forecaster's interval scale is set after),
            # so no broadcast of them before every forward: one collective per step fewer
            broadcast_buffers=False,
            # gradients live in the all-reduce buckets: no copy in and out of them each step
            gradient_as_bucket_view=True,
        )
        self._trainable = trainable


def barrier() -> None:
    """Wait for every rank (no-op alone)."""
    if active():
        dist.barrier()
