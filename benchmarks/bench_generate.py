"""Generation speed: tokens/s for batch 1 and batch 16, one recurrent step per token.

    python benchmarks/bench_generate.py [--run RUN] [--max-tokens 500] [--repeats 3]

With `--run`, the model of a trained language-model run folder; without it, a model of the default
`rnnkit train lm` shape (char LSTM, 2 x 256, embedding 64, 70 characters) with random weights,
which runs at the same speed. For each batch size, `rnnkit.tasks.language_model.generate`
makes `--max-tokens` tokens per sample (temperature 0.8, top-k 40) after a 20-character
prompt; the best of `--repeats` runs is reported as generated tokens/s (all samples counted)
and ms per step. Batch 1 runs twice: the NumPy step and sampler one sample takes on the CPU
(`LeanLanguageModel`), and the same tokens through the modules and torch ops (`lean=False`,
what batch 1 cost before). For contrast, the
"re-read" row re-runs the whole text so far for every token (what a generation loop without
carried state costs), for a quarter of the tokens at batch 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, table

from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
from rnnkit.tasks.language_model.generate import SamplingConfig, generate_ids

PROMPT = list(range(4, 24))  # 20 token ids


def load_model(run: str | None) -> tuple[LanguageModel, str]:
    if run:
        import rnnkit

        predictor = rnnkit.load(run)
        return predictor.model, f"run {run}"
    torch.manual_seed(0)
    model = LanguageModel(LanguageModelConfig(vocab_size=70))
    return model.eval(), "default shape, random weights"


def timed_generation(
    model: LanguageModel, batch: int, tokens: int, repeats: int, lean: bool = True
) -> float:
    config = SamplingConfig(max_tokens=tokens, temperature=0.8, top_k=40, seed=0, num_samples=batch)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ids in generate_ids(model, PROMPT, config, lean=lean):
            pass
        best = min(best, time.perf_counter() - start)
    return best


def timed_reread(model: LanguageModel, tokens: int) -> float:
    """Every token re-runs the model over the prompt plus all tokens so far (no carried state)."""
    ids = torch.tensor([PROMPT])
    start = time.perf_counter()
    with torch.inference_mode():
        for _ in range(tokens):
            logits, _ = model(ids)
            ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a language-model run folder")
    parser.add_argument("--max-tokens", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model, what = load_model(args.run)
    cfg = model.config
    print(f"machine: {machine()}")
    print(
        f"model: {what}: {cfg.cell} {cfg.num_layers}x{cfg.hidden_size}, embedding "
        f"{cfg.embedding_dim}, vocabulary {cfg.vocab_size}; prompt {len(PROMPT)} tokens, "
        f"{args.max_tokens} tokens per sample, best of {args.repeats}\n"
    )
    rows = []
    for batch, lean in ((1, True), (1, False), (16, True)):
        seconds = timed_generation(model, batch, args.max_tokens, args.repeats, lean)
        rows.append(
            [
                f"carried state, batch {batch}" + ("" if lean else ", through the modules"),
                f"{batch * args.max_tokens:,}",
                f"{seconds:.3f}",
                f"{batch * args.max_tokens / seconds:,.0f}",
                f"{1000 * seconds / args.max_tokens:.3f}",
            ]
        )
    few = max(1, args.max_tokens // 4)
    seconds = timed_reread(model, few)
    rows.append(
        [
            "re-read all text per token, batch 1",
            f"{few:,}",
            f"{seconds:.3f}",
            f"{few / seconds:,.0f}",
            f"{1000 * seconds / few:.3f}",
        ]
    )
    print(table(["generation", "tokens", "seconds", "tokens/s", "ms per step"], rows))


if __name__ == "__main__":
    main()
