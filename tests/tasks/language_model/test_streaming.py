"""Corpora read from a token file: windows from a memory map, sharded, resumed; the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.config import apply_overrides
from rnnkit.errors import ConfigError, DataError
from rnnkit.tasks.language_model import data as lm_data
from rnnkit.tasks.language_model.batches import LMWindows
from rnnkit.tasks.language_model.config import LMDataConfig
from rnnkit.tasks.language_model.data import held_out, load_streams, streamed_corpus
from rnnkit.tasks.language_model.pipeline import LanguageModelRunConfig, evaluate_run, train_lm


def batches(windows: LMWindows) -> list[tuple[list, list, bool]]:
    return [(b.inputs.tolist(), b.targets.tolist(), b.first) for b in windows]


def memmap_of(values: np.ndarray, path: Path, dtype=np.uint16) -> np.memmap:
    values.astype(dtype).tofile(path)
    return np.memmap(path, dtype=dtype, mode="r", shape=(len(values),))


def test_a_memmap_gives_the_windows_of_the_array(tmp_path: Path) -> None:
    ids = np.random.default_rng(0).integers(0, 500, 10_001)
    mm = memmap_of(ids, tmp_path / "ids.bin")
    for shift in (False, True):
        b = LMWindows(mm[1:], 4, 16, shift_per_epoch=shift, seed=3)
        c = LMWindows(ids[1:], 4, 16, shift_per_epoch=shift, seed=3)
        for epoch in (1, 2):
            for w in (b, c):
                w.set_epoch(epoch)
            assert b.reader._file is not None  # read with pread, not through the mapping
            assert batches(b) == batches(c)
        assert all(batch.inputs.dtype == torch.long for batch in b)
    assert batches(LMWindows(ids, 4, 16)) == batches(LMWindows(torch.as_tensor(ids), 4, 16))


@pytest.mark.parametrize("offset_first", [True, False])
def test_two_shards_are_the_rows_of_one_batch_twice_the_size(offset_first: bool) -> None:
    ids = np.random.default_rng(1).integers(0, 50, 5_003)
    whole = LMWindows(ids, 6, 7, shift_per_epoch=True, seed=2)
    shards = [LMWindows(ids, 3, 7, shift_per_epoch=True, seed=2) for _ in range(2)]
    for epoch in (1, 4):
        whole.set_epoch(epoch)
        for rank, shard in enumerate(shards):
            if offset_first:
                shard.set_epoch(epoch)
                shard.shard(2, rank)
            else:
                shard.shard(2, rank)
                shard.set_epoch(epoch)
        assert whole.offset > 0 or epoch == 1
        assert len(shards[0]) == len(shards[1]) == len(whole)
        for w, s0, s1 in zip(whole, *shards, strict=True):
            assert torch.equal(torch.cat([s0.inputs, s1.inputs]), w.inputs)
            assert torch.equal(torch.cat([s0.targets, s1.targets]), w.targets)
            assert s0.first == s1.first == w.first


def test_shard_refuses_bad_ranks_and_too_little_text() -> None:
    windows = LMWindows(np.arange(100), 4, 5)
    with pytest.raises(ConfigError, match="0 <= rank < num_replicas"):
        windows.shard(2, 2)
    with pytest.raises(ConfigError, match="cannot fill 80 rows"):
        windows.shard(20, 0)
    assert (windows.num_replicas, windows.rank) == (1, 0)  # left as it was
    assert len(batches(windows)) == len(windows)


def test_start_at_yields_the_tail_of_a_full_pass_once() -> None:
    ids = np.random.default_rng(2).integers(0, 50, 3_000)
    windows = LMWindows(ids, 4, 9, shift_per_epoch=True, seed=5)
    windows.set_epoch(3)
    full = batches(windows)
    for k in (0, 1, 17, len(windows) - 1, len(windows)):
        windows.start_at(k)
        tail = batches(windows)
        assert tail == full[k:]  # so `first` is True only when the tail starts at window 0
        assert batches(windows) == full  # only the next pass is affected
    windows.shard(2, 1)
    windows.start_at(5)
    assert batches(windows)[0][2] is False
    for bad in (-1, len(windows) + 1):
        with pytest.raises(ConfigError, match="outside this epoch's windows"):
            windows.start_at(bad)


# -- the pipeline --------------------------------------------------------------------------------

LINES = [
    "But soft, what light through yonder window breaks?",
    "It is the east, and Juliet is the sun.",
    "O Romeo, Romeo, wherefore art thou Romeo?",
    "Deny thy father and refuse thy name.",
]


def write_corpus(path: Path, lines: int = 6_000) -> Path:
    rng = np.random.default_rng(0)
    path.write_text("\n".join(LINES[i] for i in rng.integers(0, 4, lines)) + "\n")
    return path


def config_for(data: Path, **more: str) -> LanguageModelRunConfig:
    overrides = {
        "data.data": str(data),
        "data.streaming": "on",
        "data.bptt": "16",
        "data.eval_batch_size": "2",
        "data.max_eval_tokens": "2000",
        "model.embedding_dim": "8",
        "model.hidden_size": "16",
        "model.num_layers": "1",
        "train.epochs": "1",
        "train.max_minutes": "none",
        "train.batch_size": "8",
        "train.device": "cpu",
        "sample.max_tokens": "20",
        **more,
    }
    return apply_overrides(LanguageModelRunConfig(), [f"{k}={v}" for k, v in overrides.items()])


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_trigger(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_corpus(tmp_path / "text.txt", 100)
    assert streamed_corpus(LMDataConfig(data=str(data))) is None  # auto: small
    assert streamed_corpus(LMDataConfig(data=str(data), streaming="on")) is not None
    monkeypatch.setattr(lm_data, "STREAMING_BYTES", 100)
    assert streamed_corpus(LMDataConfig(data=str(data))) is not None  # auto: big
    assert streamed_corpus(LMDataConfig(data=str(data), streaming="off")) is None
    assert streamed_corpus(LMDataConfig(data="shakespeare")) is None  # a registry name
    with pytest.raises(ConfigError, match=r"data\.streaming 'on' reads one \.txt file"):
        streamed_corpus(LMDataConfig(data="shakespeare", streaming="on"))
    (tmp_path / "t.csv").write_text("text,label\na,b\n")
    assert streamed_corpus(LMDataConfig(data=str(tmp_path / "t.csv"))) is None
    with pytest.raises(DataError, match=r"expected a \.txt file"):
        streamed_corpus(LMDataConfig(data=str(tmp_path / "t.csv"), streaming="on"))
    with pytest.raises(ConfigError, match=r"data\.streaming must be"):
        LMDataConfig(streaming="yes")  # type: ignore[arg-type]


def test_streams_split_tokens_contiguously_and_cap_evaluation(tmp_path: Path, cache) -> None:
    data = write_corpus(tmp_path / "text.txt")
    cfg = config_for(data, **{"data.test": "0.1"}).data
    streams = load_streams(cfg)
    record = streams.record["token_file"]
    tokens = record["tokens"]
    assert tokens == len(data.read_text())  # char tokens
    n_val = round(tokens * 0.1)
    assert record["train"] == [0, tokens - 2 * n_val]
    assert record["validation"] == [tokens - 2 * n_val, tokens - 2 * n_val + 2000]
    assert record["test"] == [tokens - n_val, tokens - n_val + 2000]
    assert isinstance(streams.train, np.memmap) and len(streams.validation) == 2000
    text = data.read_text()
    whole = streams.encoder.encode_batch_arrays([text]).ids
    np.testing.assert_array_equal(streams.test, whole[tokens - n_val : tokens - n_val + 2000])
    # the in-memory path on the same file: the same vocabulary (the train share of the bytes)
    memory = load_streams(LMDataConfig(data=str(data), streaming="off", test=0.1))
    assert memory.encoder == streams.encoder and memory.record == {}


def test_a_streamed_run_trains_loads_and_evaluates_its_held_out_tokens(
    tmp_path: Path, cache: Path
) -> None:
    data = write_corpus(tmp_path / "text.txt")
    run = train_lm(config_for(data), tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    record = config["token_file"]
    assert record["validation"][1] - record["validation"][0] == 2000
    loaded = rnnkit.load(tmp_path / "run")
    assert isinstance(loaded.generate("Romeo", max_tokens=10, seed=0)[0], str)
    part, described = held_out(tmp_path / "run", config)
    assert len(part) == 2000 and "first 2,000 tokens" in described
    metrics = evaluate_run(tmp_path / "run")
    assert metrics["tokens"] == 2000
    assert metrics["loss"] == pytest.approx(run.metrics["loss"], abs=1e-5)
    # without the cached token file, the corpus is tokenised again (and checked unchanged)
    for path in (cache / "tokens").iterdir():
        path.unlink()
    assert evaluate_run(tmp_path / "run")["loss"] == pytest.approx(metrics["loss"], abs=1e-6)
    data.write_text("changed\n" * 100)
    for path in (cache / "tokens").iterdir():
        path.unlink()
    with pytest.raises(DataError, match="the corpus changed since training"):
        evaluate_run(tmp_path / "run")


def test_a_streamed_run_resumes_from_the_cached_tokens(tmp_path: Path, cache: Path) -> None:
    data = write_corpus(tmp_path / "text.txt", 2_000)
    train_lm(config_for(data), tmp_path / "run")
    before = {p.name: p.stat().st_mtime_ns for p in (cache / "tokens").iterdir()}
    resumed = train_lm(config_for(data), tmp_path / "run", resume=True)
    assert resumed is not None and len(resumed.fit.records) == 1
    assert {p.name: p.stat().st_mtime_ns for p in (cache / "tokens").iterdir()} == before
