"""Classification metrics against examples worked out by hand (fractions in the comments)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.tasks.classification.metrics import (
    accuracy,
    classification_metrics,
    confusion_matrix,
    expected_calibration_error,
    macro_f1,
)

# Binary: confusion [[3, 1], [2, 4]] (rows = true).
BIN_TRUE = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
BIN_PRED = [0, 0, 0, 1, 1, 1, 1, 0, 0, 1]

# Three classes: confusion [[1, 1, 0], [0, 2, 1], [1, 1, 2]].
TRI_TRUE = [0, 0, 1, 1, 1, 2, 2, 2, 2]
TRI_PRED = [0, 1, 1, 1, 2, 2, 2, 0, 1]


def test_binary_hand_computed() -> None:
    m = classification_metrics(BIN_TRUE, BIN_PRED, ["neg", "pos"])
    assert m["confusion"] == [[3, 1], [2, 4]]
    assert m["accuracy"] == pytest.approx(7 / 10)
    neg, pos = m["per_class"]["neg"], m["per_class"]["pos"]
    # neg: TP 3, predicted 5, support 4.  pos: TP 4, predicted 5, support 6.
    assert neg["precision"] == pytest.approx(3 / 5)
    assert neg["recall"] == pytest.approx(3 / 4)
    assert neg["f1"] == pytest.approx(2 / 3)  # 2 * 0.6 * 0.75 / 1.35
    assert neg["support"] == 4
    assert pos["precision"] == pytest.approx(4 / 5)
    assert pos["recall"] == pytest.approx(2 / 3)
    assert pos["f1"] == pytest.approx(8 / 11)  # 2 * 0.8 * (2/3) / (0.8 + 2/3)
    assert pos["support"] == 6
    assert m["macro_f1"] == pytest.approx((2 / 3 + 8 / 11) / 2)  # 23/33
    assert m["classes"] == ["neg", "pos"]
    assert m["n"] == 10


def test_three_class_hand_computed() -> None:
    m = classification_metrics(TRI_TRUE, TRI_PRED, ["a", "b", "c"])
    assert m["confusion"] == [[1, 1, 0], [0, 2, 1], [1, 1, 2]]
    assert m["accuracy"] == pytest.approx(5 / 9)
    # predicted per class (column sums) 2, 4, 3; support (row sums) 2, 3, 4.
    expected = {
        "a": (1 / 2, 1 / 2, 1 / 2, 2),
        "b": (2 / 4, 2 / 3, 4 / 7, 3),  # F1 = 2TP / (predicted + support) = 4 / 7
        "c": (2 / 3, 2 / 4, 4 / 7, 4),
    }
    for name, (p, r, f, s) in expected.items():
        got = m["per_class"][name]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((p, r, f)), name
        assert got["support"] == s
    assert m["macro_f1"] == pytest.approx(23 / 42)  # (1/2 + 4/7 + 4/7) / 3
    assert macro_f1(TRI_TRUE, TRI_PRED, 3) == pytest.approx(23 / 42)
    assert accuracy(TRI_TRUE, TRI_PRED) == pytest.approx(5 / 9)
    assert confusion_matrix(TRI_TRUE, TRI_PRED, 3) == m["confusion"]


def test_class_never_predicted_has_zero_precision() -> None:
    m = classification_metrics([0, 1, 2, 2], [0, 1, 1, 1], ["a", "b", "c"])
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert m["per_class"]["b"]["precision"] == pytest.approx(1 / 3)
    assert m["per_class"]["b"]["f1"] == pytest.approx(1 / 2)
    assert m["macro_f1"] == pytest.approx((1 + 1 / 2 + 0) / 3)


def test_class_without_support_counts_in_macro_average() -> None:
    # "c" is predicted once but never true: recall 0 by convention, precision 0 (no hit).
    m = classification_metrics([0, 0, 1, 1], [0, 2, 1, 1], ["a", "b", "c"])
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    # A class absent from both truth and predictions still counts, with F1 0.
    assert macro_f1([0, 1], [0, 1], 3) == pytest.approx(2 / 3)


def test_perfect_predictions() -> None:
    y = [0, 1, 2, 1, 0]
    m = classification_metrics(y, y, ["a", "b", "c"])
    assert m["accuracy"] == 1.0
    assert m["macro_f1"] == 1.0
    assert all(c["precision"] == c["recall"] == c["f1"] == 1.0 for c in m["per_class"].values())
    assert m["confusion"] == [[2, 0, 0], [0, 2, 0], [0, 0, 1]]


def test_all_wrong_predictions() -> None:
    m = classification_metrics([0, 0, 1, 1], [1, 1, 0, 0], ["a", "b"])
    assert m["accuracy"] == 0.0
    assert m["macro_f1"] == 0.0
    assert m["confusion"] == [[0, 2], [2, 0]]


def test_results_are_plain_python_and_json_able() -> None:
    m = classification_metrics(
        np.array(TRI_TRUE, dtype=np.int32), np.array(TRI_PRED), ["a", "b", "c"]
    )
    json.dumps(m)  # numpy scalars would raise here
    assert type(m["accuracy"]) is float and type(m["n"]) is int
    assert type(m["confusion"][0][0]) is int
    assert type(m["per_class"]["a"]["support"]) is int
    assert type(accuracy([0], [0])) is float


def test_whole_number_floats_are_accepted() -> None:
    assert accuracy(np.array([0.0, 1.0]), [0, 1]) == 1.0


def test_expected_calibration_error_hand_computed() -> None:
    probs = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]]
    y = [0, 1, 1, 1]  # confidences 0.9, 0.8, 0.7, 0.6; correct 1, 0, 1, 1
    # Ten bins: each sample alone in its bin -> (0.1 + 0.8 + 0.3 + 0.4) / 4.
    assert expected_calibration_error(probs, y) == pytest.approx(0.4)
    # One bin: accuracy 3/4 vs mean confidence 3.0/4 -> 0.
    assert expected_calibration_error(probs, y, bins=1) == pytest.approx(0.0)
    m = classification_metrics(y, np.argmax(probs, axis=1), ["a", "b"], probs=probs)
    assert m["ece"] == pytest.approx(0.4)
    assert "ece" not in classification_metrics(y, y, ["a", "b"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: accuracy([0, 1, 1], [0, 1]), r"y_true and y_pred differ in length: 3 vs 2"),
        (lambda: accuracy([], []), r"empty"),
        (
            lambda: classification_metrics([0, 1], [0, 5], ["a", "b"]),
            r"y_pred\[1\] = 5 is out of range: expected a class index in 0\.\.1 \(2 classes\)",
        ),
        (
            lambda: classification_metrics([-1, 1], [0, 1], ["a", "b"]),
            r"y_true\[0\] = -1 is out of range",
        ),
        (lambda: accuracy([0, 0.5], [0, 1]), r"y_true\[1\] = 0\.5 is not a whole-number"),
        (lambda: accuracy(["a", "b"], [0, 1]), r"y_true must hold integer class indices"),
        (lambda: accuracy([[0, 1]], [[0, 1]]), r"y_true must be a 1-D array.*\(1, 2\)"),
        (
            lambda: classification_metrics([0], [0], ["a", "b", "a"]),
            r"classes\[2\] = 'a' repeats",
        ),
        (lambda: classification_metrics([0], [0], []), r"classes is empty"),
        (lambda: macro_f1([0], [0], 0), r"num_classes must be at least 1"),
        (
            lambda: expected_calibration_error([[2.0, -1.0]], [0]),
            r"probs row 0 has a negative",
        ),
        (
            lambda: expected_calibration_error([[0.5, 0.5], [2.0, 3.0]], [0, 1]),
            r"probs row 1 sums to 5, expected 1: pass softmax probabilities, not logits",
        ),
        (
            lambda: expected_calibration_error([[0.5, 0.5]], [0, 1]),
            r"probs and y_true differ in length: 1 vs 2",
        ),
        (
            lambda: expected_calibration_error([[0.5, 0.5]], [2]),
            r"y_true\[0\] = 2 is out of range.*probs has 2 columns",
        ),
        (lambda: expected_calibration_error([[1.0]], [0], bins=0), r"bins must be a positive"),
        (
            lambda: classification_metrics([0], [0], ["a", "b"], probs=[[0.2, 0.3, 0.5]]),
            r"probs has 3 columns but there are 2 classes",
        ),
    ],
)
def test_bad_input_messages(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
