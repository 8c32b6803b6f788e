"""Keras 3 (torch backend): a BiLSTM over GloVe 50d, on rnnkit's classification splits.

    KERAS_BACKEND=torch benchmarks/peers/.venvs/keras/bin/python \\
        benchmarks/peers/keras_classifier.py --data rotten-tomatoes [--epochs 20] \\
        [--max-minutes 10] [--fine-tune] [--splits runs/peers/splits]

Protocol: the exported train/validation/test splits of `rnnkit train classifier --data D`
(stratified, split seed 0); trained on train, the best epoch by validation accuracy (rnnkit's
default monitor) restored, scored once on test: accuracy and macro-F1 (`protocol.py`).

The model, the Keras way (keras.io "Using pre-trained word embeddings" and "Bidirectional LSTM
on IMDB"):

- `TextVectorization(max_tokens=20000)` adapted on the training texts (lower-case, punctuation
  stripped, whitespace split: Keras' defaults); every text padded to the longest text of its split
  (nothing truncated, as rnnkit truncates nothing), zeros masked (`mask_zero=True`).
- `Embedding` initialised from GloVe 6B 50d (the exported vectors, the same rnnkit uses) for the
  words GloVe has, zeros otherwise, frozen as in the guide (`--fine-tune` trains it).
- `Bidirectional(LSTM(128))` -> `Dense(classes, softmax)`; Adam 1e-3, batch 128 (the guide's),
  sparse categorical cross-entropy; `EarlyStopping(val_accuracy, patience=3,
  restore_best_weights=True)` (rnnkit's patience is 3 too), at most `--epochs` epochs and
  `--max-minutes` of training.

On a CPU, Keras' torch backend runs `LSTM` as a Python loop of torch ops over the time steps
(its fused kernel is the cuDNN one, CUDA only): that is part of what the wall time measures.
TextVectorization runs its string ops in TensorFlow on every backend, which is why the keras
environment carries tensorflow-cpu; the network trains and predicts in torch. Wall time counts
vectorizing, building the embedding matrix, training and predicting the test split.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from protocol import (
    RESULTS,
    SPLITS,
    Stopwatch,
    classification_metrics,
    read_classification,
    read_glove,
    versions,
    write_result,
)

MAX_TOKENS = 20_000  # the Keras guide's vocabulary cap
PATIENCE = 3


def build_model(embedding: np.ndarray, classes: int, fine_tune: bool) -> Any:
    """Embedding (GloVe) -> Bidirectional(LSTM(128)) -> Dense(softmax), compiled."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(
        embedding.shape[0],
        embedding.shape[1],
        embeddings_initializer=keras.initializers.Constant(embedding),
        trainable=fine_tune,
        mask_zero=True,
    )(inputs)
    x = layers.Bidirectional(layers.LSTM(128))(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def time_budget(minutes: float) -> Any:
    """A Keras callback that stops training after the epoch in which `minutes` ran out."""
    import keras

    class TimeBudget(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if time.perf_counter() - self.start > 60 * minutes:
                self.model.stop_training = True

    return TimeBudget()


def run(args: argparse.Namespace) -> dict[str, Any]:
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    data = read_classification(args.splits, args.data)
    if args.limit:  # smoke runs: the first N texts of each split
        data |= {p: (t[: args.limit], y[: args.limit]) for p, (t, y) in list(data.items())[1:]}
    classes = len(data["classes"])
    watch = Stopwatch()
    with watch("vectorize"):
        vectorizer = layers.TextVectorization(max_tokens=MAX_TOKENS)
        vectorizer.adapt(np.array(data["train"][0], dtype=object))
        vocab = vectorizer.get_vocabulary()  # 0: padding, 1: [UNK]

        def ids(part: str) -> np.ndarray:
            texts = np.array(data[part][0], dtype=object)
            return keras.ops.convert_to_numpy(vectorizer(texts)).astype("int32")

        x = {part: ids(part) for part in ("train", "validation", "test")}
        y = {part: data[part][1] for part in x}
        words, vectors = read_glove(args.splits)
        index = {w: i for i, w in enumerate(words)}
        embedding = np.zeros((len(vocab), vectors.shape[1]), dtype="float32")
        hits = 0
        for i, word in enumerate(vocab[2:], start=2):
            row = index.get(word)
            if row is not None:
                embedding[i] = vectors[row]
                hits += 1
    with watch("train"):
        model = build_model(embedding, classes, args.fine_tune)
        history = model.fit(
            x["train"],
            y["train"],
            batch_size=args.batch_size,
            epochs=args.epochs,
            validation_data=(x["validation"], y["validation"]),
            callbacks=[
                keras.callbacks.EarlyStopping(
                    "val_accuracy", patience=PATIENCE, restore_best_weights=True, mode="max"
                ),
                time_budget(args.max_minutes),
            ],
            verbose=2,
        )
    with watch("predict"):
        predicted = model.predict(x["test"], batch_size=256, verbose=0).argmax(axis=1)
    metrics = classification_metrics(y["test"], predicted, classes)
    val_acc = history.history.get("val_accuracy", [])
    row = {
        "name": "Keras 3 (torch) BiLSTM + GloVe",
        **metrics,
        "seconds": watch.total,
        "phases": watch.seconds,
        "epochs": len(val_acc),
        "best_val_accuracy": max(val_acc) if val_acc else None,
    }
    print(f"{row['name']}: accuracy {metrics['accuracy']:.4f}, {watch.total:.0f} s", flush=True)
    import torch

    return {
        "task": "classification",
        "data": args.data,
        "tool": "keras",
        "rows": [row],
        "settings": {
            "max_tokens": MAX_TOKENS,
            "vocabulary": len(vocab),
            "glove_hits": hits,
            "padded_length": {part: int(v.shape[1]) for part, v in x.items()},
            "embedding": "GloVe 6B 50d, " + ("fine-tuned" if args.fine_tune else "frozen"),
            "model": "Bidirectional(LSTM(128)) -> Dense(softmax)",
            "optimizer": f"Adam 1e-3, batch {args.batch_size}",
            "epochs": args.epochs,
            "max_minutes": args.max_minutes,
            "limit": args.limit,
            "early_stopping": f"val_accuracy, patience {PATIENCE}, best weights restored",
            "threads": torch.get_num_threads(),
            "backend": keras.backend.backend(),
        },
        "versions": versions("keras", "torch", "tensorflow-cpu", "numpy"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, choices=["rotten-tomatoes", "clothing-reviews"])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--max-minutes", type=float, default=10.0, help="training budget")
    parser.add_argument("--batch-size", type=int, default=128, help="the Keras guide's")
    parser.add_argument("--fine-tune", action="store_true", help="train the GloVe embedding too")
    parser.add_argument("--limit", type=int, help="first N texts of each split (smoke runs)")
    parser.add_argument("--splits", type=Path, default=SPLITS)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--name", help="result file name (default keras-<data>)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    record = run(args)
    record["script_seconds"] = time.perf_counter() - started
    write_result(args.results, args.name or f"keras-{args.data}", record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
