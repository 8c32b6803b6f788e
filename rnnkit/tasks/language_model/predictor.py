"""`LanguageModelPredictor`: what `rnnkit.load()` returns for a language-model run."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from rnnkit import run_folder
from rnnkit.config import from_dict
from rnnkit.errors import ConfigError, DataError
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
from rnnkit.run_folder import Files
from rnnkit.tasks.language_model.config import TASK, LanguageModelRunConfig
from rnnkit.tasks.language_model.generate import SamplingConfig, generate, stream
from rnnkit.tasks.language_model.objective import LanguageModelObjective, encode_stream
from rnnkit.text import TextEncoder
from rnnkit.training import EvalContext
from rnnkit.training.precision import resolve_device, resolve_precision


class LanguageModelPredictor:
    """A trained language model ready to write: `generate(prompt, ...)`, `stream(...)`.

    Args:
        model: the `LanguageModel`.
        encoder: its `TextEncoder`.
        chars_per_token: of the training validation text, for bits per character.
        device: where to run.
    """

    task = TASK

    def __init__(
        self,
        model: LanguageModel,
        encoder: TextEncoder,
        chars_per_token: float = 1.0,
        device: str = "cpu",
    ) -> None:
        self.model = model.to(device).eval()
        self.encoder = encoder
        self.chars_per_token = chars_per_token
        self.device = torch.device(device)

    @classmethod
    def from_run(
        cls, run_dir: Path, config: dict[str, Any], device: str = "cpu"
    ) -> LanguageModelPredictor:
        resolve_device(device)  # one line for a device this machine lacks
        path = run_dir / Files.CONFIG
        try:
            model_cfg = from_dict(LanguageModelConfig, config["model"])
            run_cfg = from_dict(LanguageModelRunConfig, config["config"])
        except KeyError as exc:
            raise DataError(f"missing key {exc}", path=path) from None
        except ConfigError as exc:
            raise DataError(str(exc), path=path) from None
        chars_per_token = config.get("chars_per_token", 1.0)
        number = isinstance(chars_per_token, int | float) and not isinstance(chars_per_token, bool)
        if not (number and math.isfinite(chars_per_token) and chars_per_token > 0):
            raise DataError(
                f"expected a positive number, got {str(chars_per_token)[:80]}",
                path=path,
                column="chars_per_token",
            )
        encoder = run_folder.load_text_encoder(
            run_dir, model_cfg.vocab_size, run_cfg.data.tokenizer
        )
        model = LanguageModel(model_cfg)
        run_folder.load_weights(model, run_dir)
        return cls(model, encoder, float(chars_per_token), device)

    def _sampling(self, config: SamplingConfig | None, options: dict[str, Any]) -> SamplingConfig:
        if "stop" in options and isinstance(options["stop"], str):
            options["stop"] = (options["stop"],)
        elif "stop" in options:
            options["stop"] = tuple(options["stop"])
        return replace(config or SamplingConfig(), **options)

    def generate(
        self,
        prompt: str = "",
        config: SamplingConfig | None = None,
        on_text: Callable[[int, str], None] | None = None,
        **options: Any,
    ) -> list[str]:
        """Continuations of `prompt`; `options` override `config` (e.g. `temperature=0`)."""
        return generate(self.model, self.encoder, prompt, self._sampling(config, options), on_text)

    def stream(
        self, prompt: str = "", config: SamplingConfig | None = None, **options: Any
    ) -> Iterator[tuple[int, str]]:
        """`(sample_index, text)` pieces as they are produced; see `generate.stream`."""
        return stream(self.model, self.encoder, prompt, self._sampling(config, options))

    def evaluate_text(self, text: str, bptt: int = 128, batch_size: int = 16) -> dict[str, float]:
        """Loss, perplexity and bits per character of the model on `text`."""
        ids = encode_stream(self.encoder, text)
        if len(ids) < 2:
            raise DataError(f"too little text to evaluate ({len(ids)} tokens)")
        task = LanguageModelObjective(True, len(text) / len(ids), bptt, batch_size)
        ctx = EvalContext(self.device, resolve_precision("fp32", self.device))
        return task.evaluate(self.model, task.windows(ids), ctx)
