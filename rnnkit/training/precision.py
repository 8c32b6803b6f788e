"""Device and numeric precision: which autocast to use, decided by probing, not by guessing.

`auto` picks bf16 autocast on a CPU whose oneDNN can run a bf16 LSTM, fp16 autocast with a
gradient scaler on CUDA, and fp32 elsewhere. The CPU probe matters: on CPUs without AVX-512 BF16
(e.g. AVX2-only cloud VMs) oneDNN has no bf16 LSTM primitive and raises at the first step; there
an explicit `bf16` still works, with the encoder running LSTM kernels in fp32.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from rnnkit.errors import ConfigError

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda, then mps, then cpu; an explicit device ("cpu", "cuda", "cuda:N", "mps")
    must exist on this machine.

    Raises:
        ConfigError: an unknown device, or one this torch build or machine lacks (named, with
            the devices that are there), instead of torch's assertion from deep inside.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    have = ["cpu"]
    if torch.cuda.is_available():
        have += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        have.append("mps")
    kind, _, index = str(name).partition(":")
    if kind not in DEVICES[1:] or (index and not index.isdigit()):
        raise ConfigError(
            f"--device must be one of {', '.join(DEVICES)} (or cuda:N), got {name!r}; this "
            f"machine has {', '.join(have)}"
        )
    if str(name) not in have:
        why = "" if kind != "cuda" or torch.version.cuda else " (this torch is built without CUDA)"
        raise ConfigError(
            f"--device {name}: not available on this machine{why}; use one of {', '.join(have)}"
        )
    return torch.device(name)


@functools.cache
def cpu_supports_bf16_lstm() -> bool:
    """Whether a bf16-autocast LSTM forward and backward runs on this CPU (probed once)."""
    try:
        lstm = torch.nn.LSTM(8, 8, batch_first=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = lstm(torch.randn(2, 3, 8))
        out.float().sum().backward()
        return True
    except RuntimeError:
        return False


@dataclass(frozen=True)
class Precision:
    """A resolved precision: the autocast dtype (None for fp32) and whether to scale gradients."""

    name: str
    device_type: str
    dtype: torch.dtype | None

    @property
    def uses_grad_scaler(self) -> bool:
        # fp16 has a narrow exponent range: small gradients underflow without scaling. bf16 has
        # fp32's range and needs no scaler.
        return self.dtype == torch.float16

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context for forward passes (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def resolve_precision(name: str, device: torch.device) -> Precision:
    """Turn `auto|fp32|bf16|fp16` into a `Precision` that works on `device`."""
    if name not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    kind = device.type
    if name == "auto":
        if kind == "cuda":
            name = "fp16"
        elif kind == "cpu" and cpu_supports_bf16_lstm():
            name = "bf16"
        else:
            name = "fp32"
    if name == "fp32":
        return Precision("fp32", kind, None)
    if name == "fp16":
        if kind != "cuda":
            raise ConfigError(f"--precision fp16 needs a CUDA device; on {kind} use bf16 or fp32")
        return Precision("fp16", kind, torch.float16)
    if kind == "cpu" and not cpu_supports_bf16_lstm():
        logger.warning(
            "bf16 on a CPU without AVX-512 BF16: LSTM kernels run in fp32, the rest in bf16 "
            "(emulated, likely slower than fp32)"
        )
    return Precision("bf16", kind, torch.bfloat16)


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Switch to eval mode and no_grad for the block, restoring the previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)
