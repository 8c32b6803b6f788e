"""A language-model teacher's next-token distributions over the training text, computed once.

With `distill.top_k = k`, the teacher reads the whole training stream once before the student
starts, and each position keeps the teacher's k most likely next tokens with their
log-probabilities at the distillation temperature:

    stream ─► teacher, rows of contiguous text, state carried ─► (N, k) log-probs + (N, k) ids
    student batch (B, T) from stream positions p ─► the (B, T, k) rows p .. p + T - 1

Why: a live teacher runs its forward beside every student step, and a teacher worth distilling
is larger than its student, so under a time budget the distilled student reads far fewer
characters than the same student alone (docs/benchmarks.md, "Distillation"). Read once, the
teacher costs one forward pass over the text, and a distilled step costs a table lookup more
than a step without a teacher. Each position also sees the teacher's context from its row's
start (thousands of characters) rather than from the student's window boundaries.

Written here, not borrowed: no library stores a recurrent teacher's per-position outputs for
truncated-BPTT windows. Memory is N x k x (2 + 2 or 4) bytes (shakespeare, k 16: ~65 MB); a
corpus streamed from a token file is refused with the key to change.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from rnnkit.errors import ConfigError
from rnnkit.training.precision import eval_mode

logger = logging.getLogger(__name__)

#: the most memory a stored teacher may take, in bytes
MAX_BYTES = 4 * 2**30


@dataclass(frozen=True)
class StoredTeacher:
    """The teacher's top-k next-token log-probabilities at every position of a stream.

    Attributes:
        log_probs: (N, k) float16; row i is the teacher's distribution after reading ids[: i + 1]
            (the prediction of ids[i + 1]), at the distillation temperature.
        indices: (N, k) the token ids of those log-probabilities (int16 or int32).
    """

    log_probs: np.ndarray
    indices: np.ndarray

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    def lookup(
        self, positions: Tensor, steps: int, device: torch.device | str
    ) -> tuple[Tensor, Tensor]:
        """The (B, T, k) log-probabilities and ids of windows starting at stream `positions`.

        Args:
            positions: (B,) the stream position of each row's first input.
            steps: T, the window's length.
            device: where the student's logits are.
        """
        rows = positions.numpy()[:, None] + np.arange(steps)
        log_probs = torch.from_numpy(self.log_probs[rows])
        indices = torch.from_numpy(self.indices[rows].astype(np.int64, copy=False))
        return log_probs.to(device), indices.to(device)


def store_teacher(
    model: nn.Module,
    ids: np.ndarray,
    k: int,
    temperature: float,
    *,
    rows: int = 64,
    window: int = 256,
) -> StoredTeacher:
    """Run `model` once over `ids` and keep each position's k most likely next tokens.

    The stream is cut into `rows` contiguous rows read side by side in windows of `window`
    steps, the state carried from window to window (as evaluation reads text): every position
    but a row's first few sees its row's whole preceding text.

    Args:
        model: the teacher, `model(ids (B, T), state) -> (logits (B, T, V), state)`, on the CPU.
        ids: (N,) the training stream, in memory.
        k: candidates per position (at most the vocabulary).
        temperature: the distillation temperature the log-probabilities are taken at.
        rows: rows read in parallel.
        window: steps per forward call.

    Raises:
        ConfigError: the stream is a token file (not in memory) or the table would pass
            `MAX_BYTES`.
    """
    if isinstance(ids, np.memmap):
        raise ConfigError(
            "distill.top_k stores the teacher's outputs for every position in memory; this "
            "corpus is streamed from a token file: set distill.top_k=0 (the teacher beside "
            "each step)"
        )
    n = len(ids)
    vocab = int(model.config.vocab_size)
    k = min(k, vocab)
    index_dtype = np.int16 if vocab <= np.iinfo(np.int16).max else np.int32
    need = n * k * (2 + np.dtype(index_dtype).itemsize)
    if need > MAX_BYTES:
        raise ConfigError(
            f"distill.top_k={k} over {n:,} tokens needs {need / 2**30:.1f} GiB (at most "
            f"{MAX_BYTES / 2**30:.0f}); use a smaller distill.top_k or 0 (the teacher beside "
            "each step)"
        )
    started = time.perf_counter()
    rows = max(1, min(rows, n // window))
    length = -(-n // rows)
    grid = np.zeros(rows * length, dtype=np.int64)  # the last row's tail is padding, dropped
    grid[:n] = ids
    grid_t = torch.from_numpy(grid).view(rows, length)
    log_probs = np.empty((rows, length, k), dtype=np.float16)
    indices = np.empty((rows, length, k), dtype=index_dtype)
    state = None
    # about a minute per million characters of a 2 x 256 LSTM on one core: shown on a terminal
    bar = tqdm(
        total=n, unit="tok", unit_scale=True, desc="distill: reading the teacher", disable=None
    )
    with bar, eval_mode(model):
        for start in range(0, length, window):
            logits, state = model(grid_t[:, start : start + window], state)
            top, top_ids = F.log_softmax(logits.float() / temperature, dim=-1).topk(k, dim=-1)
            steps = top.size(1)
            log_probs[:, start : start + steps] = top.numpy()
            indices[:, start : start + steps] = top_ids.numpy()
            bar.update(min(n, rows * (start + steps)) - bar.n)
    stored = StoredTeacher(log_probs.reshape(-1, k)[:n], indices.reshape(-1, k)[:n])
    logger.info(
        "distill: the teacher read %s tokens once (top %d of %d per position, %.0f MB) in %.1f s",
        f"{n:,}",
        k,
        vocab,
        need / 2**20,
        time.perf_counter() - started,
    )
    return stored
