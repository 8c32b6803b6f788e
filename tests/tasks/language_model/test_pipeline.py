"""Language modelling end to end: train -> run folder -> load -> generate / evaluate; the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import rnnkit
from rnnkit.cli import main
from rnnkit.config import apply_overrides
from rnnkit.errors import ConfigError
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
from rnnkit.tasks.language_model.batches import LMWindows
from rnnkit.tasks.language_model.objective import LanguageModelObjective
from rnnkit.tasks.language_model.pipeline import LanguageModelRunConfig, evaluate_run, train_lm
from rnnkit.training import TrainConfig, fit

VERSE = (
    "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is "
    "the sun.\n\nJULIET:\nO Romeo, Romeo, wherefore art thou Romeo?\n\n"
)


def write_corpus(path: Path, repeats: int = 40) -> Path:
    path.write_text(VERSE * repeats, encoding="utf-8")
    return path


def tiny_config(data: Path, **more: str) -> LanguageModelRunConfig:
    overrides = [
        f"data.data={data}",
        "data.bptt=24",
        "data.eval_batch_size=2",
        "model.embedding_dim=8",
        "model.hidden_size=32",
        "model.num_layers=1",
        "train.epochs=4",
        "train.max_minutes=none",
        "train.batch_size=4",
        "train.lr=0.01",
        "train.device=cpu",
        "sample.max_tokens=40",
        # the shakespeare default (0.1) only slows a 4-epoch run on 40 repeats of one verse;
        # the classifier that starts from this LM needs its features learnt
        "model.dropout=0.0",
        "model.rnn_dropout=0.0",
        *(f"{k}={v}" for k, v in more.items()),
    ]
    return apply_overrides(LanguageModelRunConfig(), overrides)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    data = write_corpus(root / "verse.txt")
    return data, train_lm(tiny_config(data), root / "run")


def test_run_folder_holds_everything_needed(trained) -> None:
    _, run = trained
    names = {p.name for p in run.run_dir.iterdir()}
    assert {
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "metrics.jsonl",
        "test_metrics.json",
        "sample.txt",
        "report.md",
        "loss.png",
    } <= names
    config = json.loads((run.run_dir / "config.json").read_text())
    assert config["task"] == "language-model"
    records = [
        json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    assert records[-1]["val_loss"] < records[0]["val_loss"]  # it learned something
    assert run.metrics["loss"] < 2.0 and run.metrics["data"] == "validation"
    assert math.isclose(run.metrics["perplexity"], math.exp(run.metrics["loss"]))
    assert math.isclose(run.metrics["bits_per_char"], run.metrics["loss"] / math.log(2))
    assert len(run.sample) == 40 and "Sample" in (run.run_dir / "report.md").read_text()


def test_load_generates_and_evaluates_like_the_trained_model(trained) -> None:
    _, run = trained
    predictor = rnnkit.load(run.run_dir)
    assert predictor.task == "language-model"
    greedy = predictor.generate("ROMEO:", max_tokens=30, temperature=0)
    assert greedy == run.predictor.generate("ROMEO:", max_tokens=30, temperature=0)
    samples = predictor.generate("JULIET:", max_tokens=20, seed=0, num_samples=3, stop="\n\n")
    assert len(samples) == 3 and all("\n\n" not in s for s in samples)
    metrics = evaluate_run(run.run_dir)
    assert math.isclose(metrics["loss"], run.metrics["loss"], rel_tol=1e-5)


def test_cli_evaluate_json_and_generate(trained, capsys) -> None:
    data, run = trained
    assert main(["evaluate", str(run.run_dir), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["task"] == "language-model"
    assert {"loss", "perplexity", "bits_per_char"} <= set(metrics)
    assert main(["evaluate", str(run.run_dir), "--data", str(data)]) == 0
    assert "bits per char" in capsys.readouterr().out
    args = ["generate", str(run.run_dir), "--prompt", "ROMEO:", "--max-tokens", "30"]
    assert main([*args, "--temperature", "0"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("ROMEO:") and len(first) == len("ROMEO:") + 30 + 1
    assert main([*args, "--temperature", "0"]) == 0
    assert capsys.readouterr().out == first
    assert main([*args, "--seed", "3", "--num-samples", "2", "--json", "--top-p", "0.9"]) == 0
    lines = capsys.readouterr().out.splitlines()  # JSON Lines: one object per sample
    assert [json.loads(line)["sample"] for line in lines] == [0, 1]


def test_cli_train_lm_and_resume_refusal(tmp_path, capsys) -> None:
    data = write_corpus(tmp_path / "verse.txt", repeats=10)
    out = tmp_path / "run"
    argv = ["train", "lm", "--data", str(data), "--out", str(out), "--quiet", "--epochs", "1"]
    argv += ["--hidden-size", "16", "--num-layers", "1", "--batch-size", "2", "--bptt", "16"]
    argv += ["--set", "sample.max_tokens=10", "--set", "train.max_minutes=none"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run"] == str(out)
    assert main(argv) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0  # same options: continues (here: nothing left to do)
    assert main([*argv, "--resume", "--bptt", "8"]) == 2
    assert "the options differ" in capsys.readouterr().err


def test_generate_refuses_other_runs_and_bad_options(trained, capsys) -> None:
    _, run = trained
    assert main(["generate", str(run.run_dir), "--top-p", "2"]) == 2
    assert "top_p must be in (0, 1]" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="tie_weights needs embedding_dim == hidden_size"):
        tiny_config(Path("x.txt"), **{"model.tie_weights": "true"})


def test_carried_state_resets_only_at_the_first_window() -> None:
    torch.manual_seed(0)
    # no dropout: the two tasks' losses must come from the same function of the weights
    config = LanguageModelConfig(
        vocab_size=7, embedding_dim=4, hidden_size=5, dropout=0.0, rnn_dropout=0.0
    )
    model = LanguageModel(config)
    task = LanguageModelObjective(carry_state=True)
    batches = list(LMWindows(torch.randint(0, 7, (200,)), batch_size=2, bptt=10))
    task.compute_loss(model, batches[0])
    carried = task.state
    assert not carried[0].requires_grad  # detached: gradients stop at the window boundary
    loss = task.compute_loss(model, batches[1])
    loss.backward()  # no "backward through the graph a second time" error
    fresh = LanguageModelObjective(carry_state=False)
    fresh.compute_loss(model, batches[0])
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(
            model(batches[1].inputs)[0].flatten(0, 1), batches[1].targets.flatten()
        )
    assert torch.isclose(fresh.compute_loss(model, batches[1]).detach(), expected)


def test_max_minutes_stops_training_at_the_budget(tmp_path) -> None:
    torch.manual_seed(0)
    model = LanguageModel(LanguageModelConfig(vocab_size=7, embedding_dim=4, hidden_size=5))
    loader = LMWindows(torch.randint(0, 7, (4000,)), batch_size=2, bptt=10)
    config = TrainConfig(epochs=1000, max_minutes=0.01, device="cpu", patience=None)
    result = fit(
        model, LanguageModelObjective(), loader, LMWindows(torch.arange(50) % 7, 2, 10), config
    )
    assert len(result.records) < 1000 and result.seconds < 30
    with pytest.raises(ConfigError, match="max_minutes must be positive"):
        TrainConfig(max_minutes=0)


@pytest.mark.slow
@pytest.mark.network
def test_shakespeare_char_model_trains_briefly(tmp_path) -> None:
    config = apply_overrides(
        LanguageModelRunConfig(),
        [
            "model.hidden_size=32",
            "model.num_layers=1",
            "train.max_minutes=0.05",
            "train.device=cpu",
            "data.eval_batch_size=64",
            "sample.max_tokens=20",
        ],
    )
    run = train_lm(config, tmp_path / "run")
    assert run.metrics["data"] == "validation" and run.metrics["loss"] < 4.0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["vocab_size"] > 60  # letters, digits, punctuation, specials


def write_reviews(path: Path, n: int = 80) -> Path:
    lines = ["review,stars"]
    for i in range(n):
        lines.append("a wonderful film,pos" if i % 2 == 0 else "a dull and awful film,neg")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_classifier_starts_from_the_language_model(trained, tmp_path) -> None:
    from rnnkit.tasks.classification.pipeline import ClassificationRunConfig, train_classifier

    _, lm = trained
    config = apply_overrides(
        ClassificationRunConfig(),
        [
            f"data.data={write_reviews(tmp_path / 'reviews.csv')}",
            "data.text_column=review",
            "data.label_column=stars",
            "data.validation=0.2",
            "data.test=0.2",
            f"transfer.init_from={lm.run_dir}",
            "transfer.gradual_unfreezing=true",
            "train.epochs=3",
            "train.batch_size=16",
            "train.device=cpu",
            "train.patience=none",
        ],
    )
    run = train_classifier(config, tmp_path / "clf")
    saved = json.loads((run.run_dir / "config.json").read_text())["model"]
    assert saved["hidden_size"] == 32 and saved["bidirectional"] is False  # the LM's shape
    assert (run.run_dir / "tokenizer.json").read_text() == (
        lm.run_dir / "tokenizer.json"
    ).read_text()
    assert run.test_metrics["accuracy"] >= 0.9


def test_lm_weights_load_with_shape_checks_and_thaw_from_the_top(trained) -> None:
    from safetensors.torch import load_file

    from rnnkit.errors import DataError
    from rnnkit.models.classifier import ClassifierConfig, TextClassifier
    from rnnkit.tasks.classification.transfer import (
        GradualUnfreezing,
        layer_groups,
        load_lm_weights,
    )
    from rnnkit.training import TrainState

    _, lm = trained
    vocab = lm.predictor.model.config.vocab_size
    shape = {"vocab_size": vocab, "embedding_dim": 8, "hidden_size": 32, "bidirectional": False}
    model = TextClassifier(ClassifierConfig(**shape, num_layers=1))
    copied = load_lm_weights(model, lm.run_dir)
    weights = load_file(lm.run_dir / "model.safetensors")
    assert "encoder.layers.0.0.weight_hh_l0" in copied and not any("decoder" in k for k in copied)
    for name in copied:
        if name != "embedding.weight" and not name.startswith("embed."):
            assert torch.equal(model.state_dict()[name], weights[name])
    assert model.embedding.weight[0].abs().sum() == 0  # the pad row stays zero
    groups = layer_groups(model)  # [encoder layer 0, embedding]
    thaw = GradualUnfreezing(groups)
    for epoch, expected in [(1, [False, False]), (2, [True, False]), (3, [True, True])]:
        thaw.on_epoch_begin(TrainState(epoch, 3, 0, 10, 5))
        assert [g[0].requires_grad for g in groups] == expected
    assert model.head.weight.requires_grad
    wrong = TextClassifier(ClassifierConfig(vocab_size=vocab, embedding_dim=8, hidden_size=16))
    with pytest.raises(DataError, match=r"has shape \(128,\) in the language model but \(64,\)"):
        load_lm_weights(wrong, lm.run_dir)
