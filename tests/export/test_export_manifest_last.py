"""`export.json` is written last: an export killed (or failing) part-way never looks complete."""

from __future__ import annotations

import json

import pytest

import rnnkit.export.bundle as bundle
from rnnkit.export import ParityError, export_torchscript


class Killed(BaseException):
    """Stands for a kill -9 in the middle of the parity check (nothing after it runs)."""


def test_export_killed_during_parity_leaves_no_manifest(tiny_run, tmp_path, monkeypatch) -> None:
    run = tiny_run("forecasting", "gru")
    out = tmp_path / "ts"
    export_torchscript(run, out)  # a complete export first: its manifest must not survive
    assert json.loads((out / "export.json").read_text())["format"] == "torchscript"

    def killed(*args, **kwargs):
        assert (out / "model.pt").is_file()  # the model is written; the check has started
        raise Killed

    monkeypatch.setattr(bundle, "check_parity", killed)
    with pytest.raises(Killed):
        export_torchscript(run, out)
    assert (out / "model.pt").is_file()
    assert not (out / "export.json").exists()


def test_export_failing_parity_leaves_no_manifest(tiny_run, tmp_path, monkeypatch) -> None:
    run = tiny_run("classification", "gru")
    out = tmp_path / "ts"
    real = bundle.check_parity
    monkeypatch.setattr(
        bundle, "check_parity", lambda *a, **k: real(*a, **{**k, "tolerance": -1.0})
    )
    with pytest.raises(ParityError):
        export_torchscript(run, out)
    assert (out / "parity.json").is_file()  # the report is kept to be read
    assert not (out / "export.json").exists()
