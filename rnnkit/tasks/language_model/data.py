"""A run's text: sources joined, cut into contiguous parts; the held-out part reopened."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rnnkit.config import from_dict
from rnnkit.data import TextClassificationDataset, TextCorpus, load_dataset
from rnnkit.errors import ConfigError, DataError
from rnnkit.io import atomic_write_text
from rnnkit.tasks.language_model.config import LanguageModelRunConfig, LMDataConfig
from rnnkit.tasks.spec import HeldOut


@dataclass
class LMText:
    """The text of a run's sources, cut into contiguous parts."""

    train: str
    validation: str
    test: str
    sources: list[str]


def _sources(data: str) -> list[str]:
    if Path(data).expanduser().exists() or "+" not in data:
        return [data]
    return [part.strip() for part in data.split("+") if part.strip()]


def load_text(config: LMDataConfig) -> LMText:
    """The training, validation and test text of `config.data` (see `LMDataConfig.data`)."""
    parts: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    sources = []
    for name in _sources(config.data):
        is_path = Path(name).expanduser().exists()
        dataset = load_dataset(name)
        sources.append(dataset.source or name if is_path else name)
        if isinstance(dataset, TextCorpus):
            split = dataset.split(validation=config.validation, test=config.test)
            parts["train"].append(split.train)
            parts["validation"].append(split.validation)
            parts["test"].append(split.test)
        elif isinstance(dataset, TextClassificationDataset):
            split = dataset.split(seed=config.split_seed)  # the classifier's own split
            parts["train"].append("\n".join(split.train.texts))
            parts["validation"].append("\n".join(split.validation.texts))
        else:
            raise ConfigError(
                f"--data {name} is a {dataset.task} dataset; a language model needs text "
                "(a corpus, .txt files, or labelled texts)"
            )
    text = LMText(*("\n\n".join(p for p in parts[k] if p) for k in parts), sources=sources)
    if not text.train or not text.validation:
        raise DataError(
            f"too little text for a training and a validation part ({len(text.train)} and "
            f"{len(text.validation)} characters); give more text or change data.validation",
            path=config.data,
        )
    return text


def share(data: LMDataConfig, which: str) -> str:
    return f"{data.test:.0%}" if which == "test" else f"{data.validation:.0%}"


def held_out(run_dir: Path, config: dict[str, Any]) -> HeldOut:
    """The run's test text (its validation text when the test share is 0)."""
    cfg = from_dict(LanguageModelRunConfig, config["config"]).data
    text = load_text(cfg)
    part, which = (text.test, "test") if text.test else (text.validation, "validation")
    return HeldOut(part, f"{cfg.data} ({which} part, last {share(cfg, which)})")


#: the file `write_data` writes into a run's data folder
DATA_FILE = "text.txt"


def write_data(data: Any, folder: Path, config: LanguageModelRunConfig) -> LanguageModelRunConfig:
    """Text in memory, written as `folder/text.txt` for `rnnkit.train`.

    Args:
        data: the text (a string), or documents (a list of strings), which are joined by a
            blank line as `TextCorpus` joins documents.
        folder: where the file goes (the run's `data/` folder).
        config: the run config.

    Returns:
        `config` with `data.data` the file's absolute path.

    Raises:
        ConfigError: data of another type.
        DataError: no text.
    """
    if isinstance(data, (list, tuple)) and all(isinstance(doc, str) for doc in data):
        data = "\n\n".join(data)
    if not isinstance(data, str):
        raise ConfigError(
            "language-model data is a registry dataset name, a path, a string of text or a "
            f"list of strings; got {type(data).__name__}"
        )
    if not data.strip():
        raise DataError("the text is empty; a language model needs text to learn from")
    path = Path(folder) / DATA_FILE
    atomic_write_text(path, data)
    return replace(config, data=replace(config.data, data=str(path.resolve())))
