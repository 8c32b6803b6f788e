"""Text generation from a recurrent language model: one recurrent step per generated token.

    prompt ids ─► model(prompt) once ─► state, logits ─► pick a token ─► model(token, state) ─► ...

The prompt primes the state in one fused forward pass; after that each generated token costs one
recurrent step on a (N, 1) batch, with the state held here, never on the model. A token is picked
from the last logits by, in this order (as HF `transformers` does):

1. repetition penalty (Keskar et al., 2019): logits of tokens already in the prompt or the
   sample are divided by the penalty when positive, multiplied when negative;
2. temperature: logits / T; T = 0 means greedy (argmax, no randomness);
3. top-k: keep the k most likely tokens;
4. top-p, "nucleus" (Holtzman et al., 2020): keep the fewest most likely tokens whose
   probability sums to at least p;
5. a draw from what is left, with a `torch.Generator` seeded by `seed` (reproducible).

Special tokens (`<pad> <unk> <bos> <eos>`) are never generated. Text is streamed as it becomes
final: a piece that could be the start of a stop string, or an incomplete UTF-8 byte sequence of a
byte-level BPE token, is held back until the next tokens decide it.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.config import MAX_TOKENS, check_range
from rnnkit.errors import ConfigError
from rnnkit.models.encoder import State
from rnnkit.models.language_model import LanguageModel
from rnnkit.models.lean import LeanLanguageModel, LeanState
from rnnkit.text import TextEncoder

logger = logging.getLogger(__name__)

SPECIAL_IDS = (0, 1, 2, 3)  # <pad> <unk> <bos> <eos>


#: samples generated together (one batch).
MAX_SAMPLES = 10_000


@dataclass(frozen=True)
class SamplingConfig:
    """How to pick tokens.

    Attributes:
        max_tokens: tokens to generate per sample (fewer if a stop string appears).
        temperature: 0.8 sharpens the distribution a little: fewer misspellings than 1.0 with
            still varied text; 0 is greedy decoding.
        top_k: keep only the k most likely tokens; None keeps all.
        top_p: keep the smallest set of most likely tokens with probability >= p; None keeps
            all.
        repetition_penalty: > 1 discourages tokens already seen; 1.0 is off (characters
            repeat by nature, so it is off by default).
        stop: end a sample when its text contains one of these strings (the stop string is not
            included in the output).
        seed: seeds the sampling; None draws from fresh randomness.
        num_samples: samples generated together as one batch.
    """

    max_tokens: int = 200
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    num_samples: int = 1

    def __post_init__(self) -> None:
        if self.max_tokens < 0:
            raise ConfigError(f"max_tokens must be >= 0, got {self.max_tokens}")
        if not self.temperature >= 0:
            raise ConfigError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top_k must be >= 1 or none, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1] or none, got {self.top_p}")
        if not self.repetition_penalty > 0:
            raise ConfigError(
                f"repetition_penalty must be > 0 (1 = off), got {self.repetition_penalty}"
            )
        if self.num_samples < 1:
            raise ConfigError(f"num_samples must be >= 1, got {self.num_samples}")
        # samples run as one batch: 10,000 rows of state is already far past any use of them
        check_range("num_samples", self.num_samples, 1, MAX_SAMPLES, "samples run as one batch")
        check_range("max_tokens", self.max_tokens, 0, MAX_TOKENS, "tokens per sample")
        check_range("top_k", self.top_k, 1, 2**31 - 1, "a count of tokens", optional=True)
        check_range("seed", self.seed, 0, 2**32 - 1, "NumPy's and torch's seeds", optional=True)
        if any(not s for s in self.stop):
            raise ConfigError("stop strings must not be empty")


# -- choosing tokens ----------------------------------------------------------------------------


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the `k` largest logits of each row, -inf elsewhere: (N, V) -> (N, V)."""
    if k >= logits.size(-1):
        return logits
    kth = logits.topk(k, dim=-1).values[..., -1:]  # (N, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Keep each row's smallest set of most likely tokens with probability >= `p`: (N, V).

    The most likely token is always kept, so a row never ends up empty.
    """
    if p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # (N, V)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above
    drop_sorted = mass_before >= p  # already enough mass without this token
    # Keep the top token whatever `p` is: a `p` below float32's smallest number compares as 0,
    # and the first token's `mass_before` may round to a hair above 0.
    drop_sorted[..., 0] = False
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def apply_repetition_penalty(logits: Tensor, seen: Tensor, penalty: float) -> Tensor:
    """Make tokens already seen less likely (Keskar et al., 2019).

    Args:
        logits: (N, V).
        seen: (N, V) bool, True for tokens in the prompt or already generated.
        penalty: > 1 penalises, 1 leaves the logits as they are.

    Returns:
        (N, V): seen logits divided by `penalty` if positive, multiplied by it if negative.
    """
    if penalty == 1.0:
        return logits
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def choose(
    logits: Tensor, config: SamplingConfig, generator: torch.Generator, seen: Tensor | None = None
) -> Tensor:
    """The next token of each row: (N, V) logits -> (N,) ids, by the steps in the module doc."""
    # float64, the row's largest logit subtracted before dividing, and +inf clamped: a valid but
    # tiny temperature or repetition penalty (5e-324 > 0) is 0 in float32 and sends logits to
    # inf, whose softmax is NaN. This way the largest logit stays 0 and the others go to at most
    # -inf, which samples the argmax (softmax itself is unchanged by the shift).
    logits = logits.double()
    if seen is not None:
        logits = apply_repetition_penalty(logits, seen, config.repetition_penalty)
        logits = logits.clamp(max=torch.finfo(logits.dtype).max)
    if config.temperature == 0:
        return logits.argmax(dim=-1)
    logits = (logits - logits.amax(dim=-1, keepdim=True)) / config.temperature
    if config.top_k is not None:
        logits = top_k_filter(logits, config.top_k)
    if config.top_p is not None:
        logits = top_p_filter(logits, config.top_p)
    probs = logits.softmax(dim=-1)  # (N, V)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


# -- the token loop ------------------------------------------------------------------------------


def _expand_state(state: State, n: int) -> State:
    """A batch-1 state (layers, 1, H) repeated for n samples: (layers, n, H)."""
    if isinstance(state, tuple):
        return (state[0].expand(-1, n, -1).contiguous(), state[1].expand(-1, n, -1).contiguous())
    return state.expand(-1, n, -1).contiguous()


def lean_model(model: nn.Module) -> LeanLanguageModel | None:
    """The NumPy step of `model` for one sample on the CPU, made once per set of weights.

    None for anything but a `LanguageModel` on the CPU. Kept per model while its parameters
    are the same tensors at the same version (an optimizer step or `load_state_dict` bumps
    the version, so a model trained further gets a new one).
    """
    if not isinstance(model, LanguageModel):
        return None
    params = list(model.parameters())
    if any(p.device.type != "cpu" for p in params):
        return None
    key = tuple((p.data_ptr(), p._version) for p in params)
    cached = _LEAN.get(model)
    if cached is None or cached[0] != key:
        cached = (key, LeanLanguageModel(model))
        _LEAN[model] = cached
    return cached[1]


_LEAN: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, LeanLanguageModel]] = (
    weakref.WeakKeyDictionary()
)


def generate_ids(
    model: nn.Module, prompt_ids: Sequence[int], config: SamplingConfig, *, lean: bool = True
) -> Iterator[Tensor]:
    """Yield the next token of every sample, step by step.

    `model(ids (N, T), state) -> (logits (N, T, V), state)`, like `LanguageModel`. The prompt runs
    once (batch 1; its state is then copied to the N samples); each further token costs one
    recurrent step, taken only when the caller asks for the next token, so stopping early (or
    after `max_tokens`) wastes no step.

    Args:
        model: the language model (put in eval mode here).
        prompt_ids: at least one token id.
        config: sampling settings; `num_samples` sets N.
        lean: one sample on the CPU steps through `LeanLanguageModel` (NumPy; same logits to
            float32 rounding, same draws); False keeps the modules, the reference.

    Yields:
        (N,) int64 ids on the model's device, `config.max_tokens` times.

    Raises:
        ConfigError: an empty prompt.
    """
    if len(prompt_ids) == 0:
        raise ConfigError("the prompt must have at least one token to start from")
    device = next(model.parameters()).device
    n = config.num_samples
    model.eval()
    with torch.inference_mode():
        prompt = torch.as_tensor(list(prompt_ids), dtype=torch.long, device=device).view(1, -1)
        logits, state = model(prompt, None)  # (1, P, V): prime the state with the prompt
    yield from continue_ids(
        model,
        logits[:, -1].expand(n, -1),
        _expand_state(state, n),
        config,
        seen=prompt.view(-1).tolist(),
        lean=lean,
    )


def continue_ids(
    model: nn.Module,
    logits: Tensor,
    state: State,
    config: SamplingConfig,
    *,
    seen: Sequence[int] = (),
    lean: bool = True,
) -> Iterator[Tensor]:
    """The tokens after a primed state: pick from `logits`, step, pick, ...

    Args:
        model: the language model, in eval mode.
        logits: (N, V) the next-token logits the state was left with.
        state: (layers, N, H) tensors, PyTorch's layout.
        config: sampling settings (its `num_samples` is N).
        seen: token ids already in the text, for the repetition penalty.
        lean: as `generate_ids`'s.

    Yields:
        (N,) int64 ids, `config.max_tokens` times.
    """
    device = logits.device
    generator = torch.Generator(device=device)
    if config.seed is None:
        generator.seed()
    else:
        generator.manual_seed(config.seed)
    n, vocab = logits.shape
    stepper = lean_model(model) if lean and n == 1 else None
    with torch.inference_mode():
        if stepper is not None and config.top_p is None and config.repetition_penalty == 1.0:
            first = logits[0].float().numpy()
            yield from _generate_one(stepper, stepper.state(state), first, config, generator)
            return
        lean_state = stepper.state(state) if stepper is not None else None
        banned = torch.tensor([i for i in SPECIAL_IDS if i < vocab], device=device)
        seen_mask = None
        if config.repetition_penalty != 1.0:
            seen_mask = torch.zeros(n, vocab, dtype=torch.bool, device=device)
            seen_mask[:, torch.as_tensor(list(seen), dtype=torch.long, device=device)] = True
        ids: Tensor | None = None
        for _ in range(config.max_tokens):
            if ids is not None and stepper is not None:  # one sample: the NumPy step
                logits = torch.from_numpy(stepper.step(lean_state, int(ids))).view(1, -1)
            elif ids is not None:  # one recurrent step on the tokens just picked
                step_logits, state = model(ids.view(n, 1), state)  # (N, 1, V)
                logits = step_logits[:, -1]  # (N, V)
            logits = logits.float().index_fill(-1, banned, float("-inf"))
            ids = choose(logits, config, generator, seen_mask)  # (N,)
            if seen_mask is not None:
                seen_mask[torch.arange(n, device=device), ids] = True
            yield ids


def _generate_one(
    stepper: LeanLanguageModel,
    state: LeanState,
    logits: np.ndarray,
    config: SamplingConfig,
    generator: torch.Generator,
) -> Iterator[Tensor]:
    """`generate_ids` for one sample on the CPU with temperature and top-k only, in NumPy.

    Written by hand because at one sample the torch ops of `choose` cost more than a small
    model's step. The draw is the one `torch.multinomial(probs, 1)` makes: argmax(p / q) with q
    ~ Exp(1) drawn from the same generator into a float64 tensor of the same size (its CPU
    kernel for one sample, so a seed gives the same tokens; tested against the tensor path).
    """
    vocab = logits.size
    banned = np.array([i for i in SPECIAL_IDS if i < vocab], dtype=np.intp)  # (a list: 2x slower)
    draws = torch.empty(1, vocab, dtype=torch.float64)
    q = draws.numpy()[0]
    k, token = config.top_k, 0
    for i in range(config.max_tokens):
        if i:
            logits = stepper.step(state, token)
        x = logits.astype(np.float64)
        x[banned] = -np.inf
        if config.temperature == 0:
            token = int(x.argmax())
        else:
            x -= x.max()
            x /= config.temperature
            if k is not None and k < vocab:
                x[x < np.partition(x, vocab - k)[vocab - k]] = -np.inf
            np.exp(x, out=x)
            x /= x.sum()
            draws.exponential_(1, generator=generator)
            x /= q
            token = int(x.argmax())
        yield torch.tensor([token])


# -- text ---------------------------------------------------------------------------------------


class _TextStream:
    """Turns one sample's ids into final text pieces, honouring stop strings."""

    def __init__(self, encoder: TextEncoder, stop: Sequence[str]) -> None:
        self.encoder = encoder
        self.stop = list(stop)
        # Word-level tokenizers decode to space-joined words; char and bpe decode exactly.
        self.sep = "" if encoder.tokenizer.name in ("char", "bpe") else " "
        self.pending: list[int] = []  # ids not yet decoded into `held` (partial UTF-8)
        self.held = ""  # decoded text not yet emitted (could start a stop string)
        self.started = False
        self.text = ""  # everything emitted
        self.done = False

    def push(self, token: int) -> str:
        """Add a token; return the text that became final (possibly '')."""
        if self.done:
            return ""
        self.pending.append(token)
        piece = self.encoder.decode(self.pending)
        if piece.endswith("\ufffd") and len(self.pending) < 8:
            return ""  # an incomplete UTF-8 sequence of byte-level BPE: wait for its end
        self.pending = []
        if piece:
            self.held += (self.sep if self.started else "") + piece
            self.started = True
        for s in self.stop:
            at = self.held.find(s)
            if at >= 0:
                self.held, self.done = self.held[:at], True
        keep = 0 if self.done else self._stop_prefix_length()
        out, self.held = self.held[: len(self.held) - keep], self.held[len(self.held) - keep :]
        self.text += out
        return out

    def finish(self) -> str:
        """The text still held back, now final (the sample ended without a stop string)."""
        out = "" if self.done else self.held
        if not self.done and self.pending:
            out += self.encoder.decode(self.pending)
        self.held, self.pending = "", []
        self.text += out
        return out

    def _stop_prefix_length(self) -> int:
        """The longest end of `held` that is the start of a stop string."""
        best = 0
        for s in self.stop:
            for n in range(min(len(s) - 1, len(self.held)), best, -1):
                if self.held.endswith(s[:n]):
                    best = n
                    break
        return best


def prompt_ids(encoder: TextEncoder, prompt: str) -> list[int]:
    """The prompt's ids; an empty prompt starts from a line break (or `<bos>` if it has none)."""
    ids = encoder.encode(prompt) if prompt else encoder.encode("\n")
    return ids or [encoder.bos_id]


def stream(
    model: nn.Module, encoder: TextEncoder, prompt: str, config: SamplingConfig
) -> Iterator[tuple[int, str]]:
    """Yield `(sample_index, text)` pieces as they become final; see `generate_ids`.

    Joining the pieces of sample i gives its continuation of `prompt` (prompt not included).
    """
    streams = [_TextStream(encoder, config.stop) for _ in range(config.num_samples)]
    tokens = generate_ids(model, prompt_ids(encoder, prompt), config)
    try:
        for ids in tokens:
            for i, token in enumerate(ids.tolist()):
                piece = streams[i].push(token)
                if piece:
                    yield i, piece
            if all(s.done for s in streams):
                break
    finally:
        tokens.close()  # no further recurrent step
    for i, s in enumerate(streams):
        piece = s.finish()
        if piece:
            yield i, piece


def generate(
    model: nn.Module,
    encoder: TextEncoder,
    prompt: str,
    config: SamplingConfig | None = None,
    on_text: Callable[[int, str], None] | None = None,
) -> list[str]:
    """Generate `config.num_samples` continuations of `prompt`.

    Args:
        model: a language model, `model(ids, state) -> (logits, state)`.
        encoder: the model's `TextEncoder`.
        prompt: text that primes the state ("" starts from a line break).
        config: sampling settings (defaults: `SamplingConfig()`).
        on_text: called with `(sample_index, text)` for each piece as soon as it is final, e.g.
            to print tokens as they are produced.

    Returns:
        One continuation per sample, without the prompt and without the stop string.
    """
    config = config or SamplingConfig()
    out = [""] * config.num_samples
    for i, piece in stream(model, encoder, prompt, config):
        out[i] += piece
        if on_text is not None:
            on_text(i, piece)
    return out
