"""Generation: reproducible seeds, greedy at temperature 0, top-k/top-p candidate sets, one
recurrent step per token, stop strings, batches of samples."""

from __future__ import annotations

import pytest
import torch

from rnnkit.errors import ConfigError
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
from rnnkit.tasks.language_model.generate import (
    SamplingConfig,
    _TextStream,
    apply_repetition_penalty,
    choose,
    generate,
    generate_ids,
    prompt_ids,
    top_k_filter,
    top_p_filter,
)
from rnnkit.text import TextEncoder

TEXT = "ROMEO:\nBut soft, what light through yonder window breaks?\n\nJULIET:\nAy me!\n" * 3


@pytest.fixture(scope="module")
def lm() -> tuple[LanguageModel, TextEncoder]:
    encoder = TextEncoder.build([TEXT], tokenizer="char")
    torch.manual_seed(0)
    config = LanguageModelConfig(
        vocab_size=len(encoder.vocab), embedding_dim=8, hidden_size=16, num_layers=2
    )
    return LanguageModel(config).eval(), encoder


def test_same_seed_same_text_other_seed_other_text(lm) -> None:
    model, encoder = lm
    config = SamplingConfig(max_tokens=40, temperature=1.0, seed=7)
    a = generate(model, encoder, "ROMEO:", config)
    assert a == generate(model, encoder, "ROMEO:", config)
    assert a != generate(model, encoder, "ROMEO:", SamplingConfig(max_tokens=40, seed=8))
    assert len(a[0]) == 40  # a char model writes one character per token


def test_temperature_zero_is_greedy(lm) -> None:
    model, encoder = lm
    ids = prompt_ids(encoder, "JULIET:")
    expected = []
    with torch.no_grad():
        logits, state = model(torch.tensor([ids]))
        for _ in range(25):
            masked = logits[0, -1].clone()
            masked[:4] = float("-inf")  # specials are never generated
            token = int(masked.argmax())
            expected.append(token)
            logits, state = model(torch.tensor([[token]]), state)
    for seed in (0, 1):
        config = SamplingConfig(max_tokens=25, temperature=0, seed=seed, top_k=3)
        got = [int(t) for t in generate_ids(model, ids, config)]
        assert got == expected
    text = generate(model, encoder, "JULIET:", SamplingConfig(max_tokens=25, temperature=0))
    assert text[0] == encoder.decode(expected)


def test_top_k_samples_only_the_k_likeliest() -> None:
    torch.manual_seed(0)
    logits = torch.randn(64, 50)
    allowed = logits.topk(5, dim=-1).indices  # (64, 5)
    generator = torch.Generator().manual_seed(0)
    config = SamplingConfig(temperature=1.5, top_k=5)
    for _ in range(20):
        ids = choose(logits, config, generator)
        assert (allowed == ids.unsqueeze(1)).any(dim=1).all()
    assert torch.isinf(top_k_filter(logits, 5)).sum(dim=1).eq(45).all()


def test_top_p_samples_only_the_nucleus() -> None:
    probs = torch.tensor([[0.5, 0.3, 0.1, 0.06, 0.04]])
    logits = probs.log()
    kept = torch.isfinite(top_p_filter(logits, 0.75))
    assert kept.tolist() == [[True, True, False, False, False]]  # 0.5 + 0.3 >= 0.75
    assert torch.isfinite(top_p_filter(logits, 0.5)).sum() == 1  # the top token alone suffices
    assert torch.isfinite(top_p_filter(logits, 0.1)).sum() == 1  # never empty
    # a p below float32's smallest number (found by fuzzing the server) still keeps the top token
    kept = torch.isfinite(top_p_filter(logits, 5e-324))
    assert kept.tolist() == [[True, False, False, False, False]]
    ids = choose(logits.expand(4, -1), SamplingConfig(temperature=1.0, top_p=5e-324), None)
    assert ids.tolist() == [0, 0, 0, 0]
    generator = torch.Generator().manual_seed(0)
    shuffled = logits[:, [3, 0, 4, 1, 2]].expand(200, -1)  # order must not matter
    ids = choose(shuffled, SamplingConfig(temperature=1.0, top_p=0.75), generator)
    assert set(ids.tolist()) == {1, 3}


def test_repetition_penalty_lowers_seen_tokens_only() -> None:
    logits = torch.tensor([[2.0, -1.0, 3.0]])
    seen = torch.tensor([[True, True, False]])
    out = apply_repetition_penalty(logits, seen, 2.0)
    assert out.tolist() == [[1.0, -2.0, 3.0]]
    assert torch.equal(apply_repetition_penalty(logits, seen, 1.0), logits)


def test_one_recurrent_step_per_generated_token(lm) -> None:
    model, encoder = lm
    calls = []
    original = model.forward

    def counting(ids, state=None):
        calls.append(tuple(ids.shape))
        return original(ids, state)

    model.forward = counting
    try:
        prompt = prompt_ids(encoder, "ROMEO:\nBut")
        out = list(generate_ids(model, prompt, SamplingConfig(max_tokens=30, num_samples=4)))
    finally:
        del model.forward
    assert len(out) == 30 and out[0].shape == (4,)
    # the prompt once (batch 1), then one (4, 1) step for each token after the first
    assert calls == [(1, len(prompt))] + [(4, 1)] * 29


def test_batch_of_samples_differ_and_specials_never_appear(lm) -> None:
    model, encoder = lm
    config = SamplingConfig(max_tokens=50, temperature=1.2, num_samples=5, seed=3)
    ids = torch.stack(list(generate_ids(model, prompt_ids(encoder, "A"), config)), dim=1)
    assert ids.shape == (5, 50) and int(ids.min()) >= 4
    texts = generate(model, encoder, "A", config)
    assert len(texts) == 5 and len(set(texts)) > 1


def test_stop_strings_end_the_sample_and_are_held_back_while_undecided(lm) -> None:
    _, encoder = lm
    stream = _TextStream(encoder, ["ME!", "JU"])
    pieces = [stream.push(i) for i in encoder.encode("Ay ROMEO ME!rest")]
    assert "".join(pieces) == "Ay ROMEO " and stream.done
    assert all("ME!" not in p for p in pieces)
    assert stream.push(encoder.encode("x")[0]) == ""
    # an undecided prefix at the end is released by finish()
    other = _TextStream(encoder, ["ME!"])
    pieces = [other.push(i) for i in encoder.encode("soft M")]
    assert "".join(pieces) == "soft " and other.finish() == "M"


def test_stop_in_generation_truncates(lm) -> None:
    model, encoder = lm
    config = SamplingConfig(max_tokens=200, temperature=1.0, seed=0)
    free = generate(model, encoder, "R", config)[0]
    stop = free[5:7]
    cut = generate(model, encoder, "R", SamplingConfig(200, 1.0, stop=(stop,), seed=0))[0]
    assert cut == free[: free.index(stop)]


def test_streaming_pieces_join_to_the_result(lm) -> None:
    model, encoder = lm
    seen = []
    config = SamplingConfig(max_tokens=30, seed=1, num_samples=2)
    out = generate(model, encoder, "", config, on_text=lambda i, t: seen.append((i, t)))
    assert ["".join(t for i, t in seen if i == k) for k in (0, 1)] == out


def test_bad_settings_are_refused() -> None:
    for kwargs, message in [
        ({"temperature": -1}, "temperature must be >= 0"),
        ({"top_k": 0}, "top_k must be >= 1"),
        ({"top_p": 1.5}, "top_p must be in"),
        ({"repetition_penalty": 0}, "repetition_penalty must be > 0"),
        ({"num_samples": 0}, "num_samples must be >= 1"),
        ({"stop": ("",)}, "stop strings must not be empty"),
    ]:
        with pytest.raises(ConfigError, match=message):
            SamplingConfig(**kwargs)
