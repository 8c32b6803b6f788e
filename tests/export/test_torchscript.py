"""TorchScript export: every task x cell loads with torch.jit.load in a process without rnnkit."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import rnnkit
from rnnkit.export import build_graph, example_inputs, export_torchscript
from rnnkit.export.parity import eager_outputs

from .conftest import CELLS, TASKS

RUN_JIT = """
import sys; sys.modules['rnnkit'] = None
import json
import numpy as np
import torch
for job in json.loads(sys.argv[1]):
    manifest = json.load(open(job["manifest"]))
    model = torch.jit.load(job["model"])
    with np.load(job["inputs"]) as f:
        args = [torch.from_numpy(f[t["name"]]) for t in manifest["inputs"]]
    with torch.no_grad():
        out = model(*args)
    out = out if isinstance(out, tuple) else (out,)
    names = [t["name"] for t in manifest["outputs"]]
    np.savez(job["outputs"], **{n: t.numpy() for n, t in zip(names, out)})
"""


@pytest.mark.parametrize("task", TASKS)
def test_export_writes_model_sidecars_and_passing_parity(tiny_run, tmp_path, task) -> None:
    run = tiny_run(task, "gru")
    result = export_torchscript(run, tmp_path / "ts")
    assert result.path.name == "model.pt" and result.path.is_file()
    manifest = json.loads((tmp_path / "ts" / "export.json").read_text())
    assert manifest["format"] == "torchscript" and manifest["task"] == task
    assert result.parity.passed and result.parity.tolerance == 1e-4
    assert json.loads((tmp_path / "ts" / "parity.json").read_text())["passed"]


def test_default_out_is_inside_the_run(tiny_run) -> None:
    run = tiny_run("language-model", "rnn")
    result = export_torchscript(run)
    assert result.path == run / "export" / "torchscript" / "model.pt"


def test_round_trips_with_torch_jit_load_without_rnnkit(tiny_run, tmp_path) -> None:
    jobs, expected = [], {}
    for task in TASKS:
        for cell in CELLS:
            run = tiny_run(task, cell)
            out = tmp_path / f"{task}-{cell}"
            result = export_torchscript(run, out)
            predictor = rnnkit.load(run)
            inputs = example_inputs(predictor, batch_size=4, seq_len=31, seed=3)
            np.savez(out / "inputs.npz", **inputs)
            _, spec = build_graph(predictor)
            expected[task, cell] = eager_outputs(predictor, spec, inputs)
            jobs.append(
                {
                    "model": str(result.path),
                    "manifest": str(out / "export.json"),
                    "inputs": str(out / "inputs.npz"),
                    "outputs": str(out / "outputs.npz"),
                }
            )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", RUN_JIT, json.dumps(jobs)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    for (task, cell), reference in expected.items():
        with np.load(tmp_path / f"{task}-{cell}" / "outputs.npz") as got:
            assert set(got.files) == set(reference)
            for name, want in reference.items():
                np.testing.assert_allclose(got[name], want, atol=1e-4, err_msg=f"{task} {cell}")
