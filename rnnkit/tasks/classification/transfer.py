"""Start a text classifier from a trained language model (ULMFiT; Howard & Ruder, 2018).

`rnnkit train classification --init-from RUN` takes, from a language-model run folder:

- its tokenizer and vocabulary (the classifier reads text exactly as the LM did),
- its embedding and recurrent encoder weights, shape-checked tensor by tensor,
- hence its architecture: cell, embedding size, hidden size, layers, one direction.

The LM's output layer (next-token decoder) is dropped; the classifier's pooling and head start
from scratch. With `gradual_unfreezing`, the pretrained layers start frozen and thaw one per epoch
from the top (ULMFiT's schedule): epoch 1 trains only the head, epoch 2 also the top recurrent
layer, ..., and the embedding last, so the new head cannot wreck what the LM learned before it
gives useful gradients.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

from rnnkit import model_file, run_folder
from rnnkit.errors import ConfigError, DataError
from rnnkit.run_folder import Files
from rnnkit.text import TextEncoder
from rnnkit.training import Callback, TrainState

logger = logging.getLogger(__name__)

LM_TASK = "language-model"
_TAKEN = ("embedding.", "embed.embedding.", "encoder.")  # module prefixes shared with the LM


@dataclass(frozen=True)
class TransferConfig:
    """Pre-training for the classifier.

    Attributes:
        init_from: a language-model run folder to start from; None trains from scratch (or
            from word vectors, see `embeddings`).
        gradual_unfreezing: thaw the pretrained layers one per epoch from the top (ULMFiT);
            False fine-tunes everything from the first step.
    """

    init_from: str | None = None
    gradual_unfreezing: bool = False


def lm_run(path: str | Path) -> tuple[dict[str, Any], TextEncoder]:
    """The config and `TextEncoder` of a language-model run folder, checked to be one."""
    config = run_folder.read_config_file(path)
    if config["task"] != LM_TASK:
        raise ConfigError(
            f"--init-from {path} is a {config['task']} run; it must be a language model "
            "(rnnkit train language-model ...)"
        )
    tokenizer = Path(path) / Files.TOKENIZER
    if not tokenizer.is_file():
        raise DataError(f"{Files.TOKENIZER} is missing", path=path)
    return config, TextEncoder.load(tokenizer)


def classifier_shape(model_cfg: Any, lm_config: dict[str, Any]) -> Any:
    """`model_cfg` (a `ClassifierConfig`) with the LM's cell, sizes and one direction."""
    lm = lm_config["model"]
    taken = {
        "cell": lm["cell"],
        "embedding_dim": lm["embedding_dim"],
        "hidden_size": lm["hidden_size"],
        "num_layers": lm["num_layers"],
        "bidirectional": False,  # the LM read left to right only
        "norm": lm.get("norm", "none"),  # its norms' weights come with the encoder's
    }
    changed = {k: v for k, v in taken.items() if getattr(model_cfg, k) != v}
    if changed:
        logger.info(
            "from the language model: %s", ", ".join(f"{k}={v}" for k, v in changed.items())
        )
    return replace(model_cfg, **taken)


def load_lm_weights(model: nn.Module, path: str | Path) -> list[str]:
    """Copy the LM's embedding and encoder tensors into `model` (a `TextClassifier`).

    Returns:
        The names of the tensors copied.

    Raises:
        DataError: the LM's weights file is missing or a tensor's shape differs from the model's.
    """
    weights = Path(path) / Files.WEIGHTS
    if not weights.is_file():
        raise DataError(f"{Files.WEIGHTS} is missing (was training interrupted?)", path=path)
    model_file.read_header(weights)  # a pickle or damaged header is refused before any read
    own = model.state_dict()
    copied = []
    with safe_open(str(weights), framework="pt", device="cpu") as f:
        for name in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
            if not name.startswith(_TAKEN):
                continue
            tensor = f.get_tensor(name)
            model_file.check_finite({name: tensor}, weights)
            if name not in own:
                raise DataError(f"the classifier has no tensor {name!r}", path=weights)
            if tensor.shape != own[name].shape:
                raise DataError(
                    f"{name} has shape {tuple(tensor.shape)} in the language model but "
                    f"{tuple(own[name].shape)} in the classifier",
                    path=weights,
                )
            with torch.no_grad():
                own[name].copy_(tensor)
            copied.append(name)
    embedding = getattr(model, "embedding", None)
    if isinstance(embedding, nn.Embedding) and embedding.padding_idx is not None:
        with torch.no_grad():
            embedding.weight[embedding.padding_idx].zero_()  # the classifier's pad row stays 0
    logger.info("started from %s: %d tensors (embedding and encoder)", path, len(copied))
    return copied


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """The pretrained parameters, top first: encoder layers from the last down, then embedding.

    A layer's group holds its output norm's weights too (`RecurrentEncoder.layer_parameters`).
    """
    encoder = model.encoder
    groups = [encoder.layer_parameters(i) for i in reversed(range(len(encoder.layers)))]
    return [*groups, [model.embedding.weight]]


class GradualUnfreezing(Callback):
    """ULMFiT's schedule: at epoch e (1-based), the top e-1 pretrained groups are trainable.

    Args:
        groups: parameter groups from the top (`layer_groups(model)`); the head is not among
            them and always trains.
    """

    def __init__(self, groups: list[list[nn.Parameter]]) -> None:
        self.groups = groups

    def on_epoch_begin(self, state: TrainState) -> None:
        thawed = max(0, state.epoch - 1)
        for i, group in enumerate(self.groups):
            for param in group:
                param.requires_grad_(i < thawed)
        logger.info(
            "epoch %d: %d of %d pretrained groups trainable",
            state.epoch,
            min(thawed, len(self.groups)),
            len(self.groups),
        )
