"""The web page at `/` in a real browser, against a real `rnnkit serve` process.

Three tiny runs (one per task) are trained once for the module and served by a real
`python -m rnnkit serve RUN... --port N` on 127.0.0.1 (`launch`, tests/serve/conftest.py);
headless chromium (`browser`, tests/conftest.py) opens the page and uses it as a person would: one
card per model, a text classified, a forecast drawn from an uploaded CSV, generated text arriving
piece by piece, live streams answering each observation, and a token pasted when asked for.

Text from the server is shown as text: an error that echoes markup from the request stays text
on the page. The language model learns its one verse by heart (so the screenshot shows words)
and is wide enough (hidden size 384) that 1,500 tokens take about a second on a CPU: long enough
to watch them arrive.

To refresh the screenshot in the docs:

    RNNKIT_PAGE_SCREENSHOT=docs/serve-screenshot.png pytest tests/serve/test_page.py
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rnnkit

GOOD = ["a gorgeous, witty film", "loved every minute", "a triumph", "funny and warm"]
BAD = ["the plot is a mess", "dull and far too long", "a waste of time", "the jokes fall flat"]
LABELS = ("fresh", "rotten")
VERSE = "To be, or not to be, that is the question.\n" * 40
HORIZON = 6
TOKEN = "page-test-token"
WAIT = 30  # seconds for one interaction (a request and its drawing)


def monthly(n: int = 96, scale: float = 1.0, seed: int = 0) -> pd.Series:
    """A monthly series with a yearly season and some noise (so the metrics are not all 0)."""
    rng = np.random.default_rng(seed)
    months = pd.date_range("2000-01", periods=n, freq="MS")
    values = 100 + np.arange(n) * 0.3 + 10 * np.sin(np.arange(n) * np.pi / 6)
    return pd.Series(scale * (values + rng.normal(0, 1.5, n)), index=months)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    """One tiny run per task, trained from data in memory (a few seconds in all)."""
    root = tmp_path_factory.mktemp("page")
    texts, labels = GOOD * 5 + BAD * 5, [LABELS[0]] * 20 + [LABELS[1]] * 20
    # unidirectional, so that it can carry a stream; a high rate, so that it tells the two kinds
    # of review apart in a second
    classifier = {"model.num_layers": 1, "model.bidirectional": False, "data.min_freq": 1}
    classifier["train.lr"] = 1e-2
    reviews = rnnkit.train(
        "classification",
        (texts, labels),
        root / "reviews",
        classifier,
        embeddings=None,
        hidden_size=32,
        epochs=20,
        device="cpu",
    )
    airline = rnnkit.train(
        "forecaster",
        {"north": monthly(), "south": monthly(scale=2.0, seed=1)},
        root / "airline",
        {"window.min_epoch_windows": 64},
        horizon=HORIZON,
        input_length=24,
        ensemble=1,
        hidden_size=8,
        epochs=2,
        device="cpu",
    )
    bard = rnnkit.train(
        "lm",
        VERSE,
        root / "bard",
        {"data.bptt": 32, "model.num_layers": 2, "model.embedding_dim": 16},
        batch_size=8,
        hidden_size=384,
        epochs=8,
        device="cpu",
    )
    return [reviews.path, airline.path, bard.path]


@dataclass
class Served:
    url: str
    models: list[dict]  # its GET /v1/models


@pytest.fixture(scope="module")
def server(runs, launch) -> Served:
    """`rnnkit serve` of the three runs (`launch`: tests/serve/conftest.py)."""
    process = launch(runs)
    return Served(process.url, process.client.get("/v1/models").json())


@pytest.fixture(scope="module")
def guarded(runs, launch, tmp_path_factory) -> Served:
    """A server that wants a token (the classifier alone: quick to load)."""
    token = tmp_path_factory.mktemp("guarded") / "token"
    token.write_text(TOKEN + "\n")
    process = launch(runs[:1], "--token-file", str(token), token=TOKEN)
    return Served(process.url, process.client.get("/v1/models").json())


# --- driving the page -----------------------------------------------------------------------


def wait_for(browser, condition, what: str, timeout: float = WAIT):
    """The first truthy `condition(browser)`, or a failure naming `what`, the errors the page
    shows and those in the browser's console (a script that failed to load or run)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, timeout, poll_frequency=0.05).until(condition)
    except TimeoutException:
        errors = browser.execute_script(
            "return Array.from(document.querySelectorAll('.error'))"
            ".filter(e => !e.hidden).map(e => e.textContent)"
        )
        console = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        pytest.fail(
            f"timed out waiting for {what}; errors on the page: {errors}; console: {console}"
        )


def open_page(browser, server: Served) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    wait_for(
        browser,
        lambda b: len(b.find_elements(By.CSS_SELECTOR, "article.card")) == len(server.models),
        "a card per model",
    )


def card(browser, verb: str):
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, f'article.card[data-endpoint="{verb}"]')


def classify(browser, text: str) -> str:
    from selenium.webdriver.common.by import By

    form = card(browser, "classify")
    box = form.find_element(By.NAME, "text")
    box.clear()
    box.send_keys(text)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    found = wait_for(
        browser, lambda b: form.find_elements(By.CSS_SELECTOR, '[data-role="label"]'), "a label"
    )
    return found[0].text


def forecast(browser, csv: Path) -> None:
    from selenium.webdriver.common.by import By

    form = card(browser, "forecast")
    form.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(csv))
    last = csv.read_text().strip().splitlines()[-1]
    box = form.find_element(By.NAME, "csv")
    wait_for(browser, lambda b: box.get_property("value").strip().endswith(last), "the CSV read")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(
        browser,
        lambda b: form.find_elements(By.CSS_SELECTOR, '[data-role="chart"] svg path.forecast'),
        "the forecast chart",
    )


def generate(browser, max_tokens: int) -> list[tuple[int, str]]:
    """Generate with streaming on; the (text length, state) seen at each poll until done."""
    from selenium.webdriver.common.by import By

    form = card(browser, "generate")
    box = form.find_element(By.NAME, "max_tokens")
    box.clear()
    box.send_keys(str(max_tokens))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    poll = (
        "const c = document.querySelector('article.card[data-endpoint=\"generate\"]');"
        "return [c.querySelector('[data-role=\"generated\"] .generated')?.textContent.length"
        " ?? 0, c.querySelector('[data-role=\"status\"]').dataset.state || ''];"
    )
    polls: list[tuple[int, str]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        length, state = browser.execute_script(poll)
        polls.append((length, state))
        if state in ("done", "failed", "stopped"):
            return polls
        time.sleep(0.01)
    pytest.fail(f"generation did not end in 120 s; polls: {polls[-5:]}")


def use_stream(browser, verb: str, observations: int) -> list[str]:
    """Open a stream on the model, send `observations` of the page's examples; the log lines."""
    from selenium.webdriver.common.by import By

    form = card(browser, verb)
    form.find_element(By.CSS_SELECTOR, "details.streams summary").click()
    form.find_element(By.CSS_SELECTOR, '[data-role="new-stream"]').click()
    info = form.find_element(By.CSS_SELECTOR, '[data-role="stream-info"]')
    wait_for(browser, lambda b: "at seq 0" in info.text, "a new stream")
    send = form.find_element(By.CSS_SELECTOR, "details.streams button[type=submit]")
    for seq in range(1, observations + 1):
        wait_for(browser, lambda b: send.is_enabled(), "the send button")
        send.click()
        wait_for(browser, lambda b, s=seq: f"at seq {s}" in info.text, f"the answer to seq {seq}")
    items = form.find_elements(By.CSS_SELECTOR, '[data-role="stream-log"] li')
    return [item.text for item in items]


WIDTH = 1440  # the width of the docs' screenshot


def set_viewport(browser, height: int) -> None:
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


def screenshot(browser, path: Path) -> None:
    """The whole page, as tall as its content."""
    set_viewport(browser, int(browser.execute_script("return document.body.scrollHeight")))
    path.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(path))


def series_csv(folder: Path) -> Path:
    path = folder / "history.csv"
    series = monthly(60, seed=2)
    rows = [f"{t:%Y-%m-%d},{v:.3f}" for t, v in series.items()]
    path.write_text("time,value\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


# --- the tests ------------------------------------------------------------------------------


def test_page_shows_a_card_per_model_with_its_facts(server, browser) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, server)
    cards = browser.find_elements(By.CSS_SELECTOR, "article.card")
    assert [c.get_attribute("data-model") for c in cards] == [m["name"] for m in server.models]
    verbs = sorted(c.get_attribute("data-endpoint") for c in cards)
    assert verbs == ["classify", "forecast", "generate"]
    for each, model in zip(cards, server.models, strict=True):
        head = each.find_element(By.CSS_SELECTOR, ".card-head").text.split("\n")
        assert head[:2] == [model["name"], model["task"]] and "streams" in head
        facts = each.find_element(By.CSS_SELECTOR, "dl.facts").text.split("\n")
        assert facts[:2] == ["data", model["data"]] and facts[2:5:2] == ["parameters", "size"]
        assert facts[5].endswith(("KB", "MB")), facts
        shown = [m.text for m in each.find_elements(By.CSS_SELECTOR, ".metric-name")]
        assert shown and set(shown) <= set(model["metrics"]), (shown, model["metrics"])
    assert browser.find_element(By.ID, "summary").text == f"{len(server.models)} models served"


def test_classify_shows_the_label_and_its_probabilities(server, browser) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, server)
    label = classify(browser, "a gorgeous, witty film: I loved every minute")
    assert label in LABELS
    form = card(browser, "classify")
    bars = form.find_elements(By.CSS_SELECTOR, ".bars .bar-label")
    assert sorted(bar.text for bar in bars) == sorted(LABELS)
    percents = [
        float(v.text.rstrip("%")) for v in form.find_elements(By.CSS_SELECTOR, ".bar-value")
    ]
    assert percents == sorted(percents, reverse=True) and abs(sum(percents) - 100) < 0.5


def test_forecast_of_an_uploaded_csv_draws_history_band_and_forecast(
    server, browser, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, server)
    forecast(browser, series_csv(tmp_path))
    plot = card(browser, "forecast").find_element(By.CSS_SELECTOR, '[data-role="chart"] svg')
    for part in ("path.history", "path.forecast", "path.band"):
        assert plot.find_element(By.CSS_SELECTOR, part).get_attribute("d"), part
    assert len(plot.find_elements(By.CSS_SELECTOR, "circle.dot")) == HORIZON


def test_an_error_shows_the_servers_detail_as_text(server, browser) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, server)
    form = card(browser, "forecast")
    box = form.find_element(By.NAME, "csv")
    box.clear()
    box.send_keys("time,value\n<img src=x onerror=alert(1)>,1\n")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    error = wait_for(
        browser,
        lambda b: [e for e in form.find_elements(By.CSS_SELECTOR, ".error") if e.text],
        "the error",
    )[0]
    assert "<img src=x onerror=alert(1)>" in error.text  # the server's detail, verbatim
    assert not browser.find_elements(By.CSS_SELECTOR, "main img")  # and not as markup


def test_generated_text_arrives_before_the_generation_ends(server, browser) -> None:
    open_page(browser, server)
    polls = generate(browser, max_tokens=1500)
    assert polls[-1][1] == "done", polls[-5:]
    before_done = [length for length, state in polls if state != "done"]
    growing = sorted({length for length in before_done if length > 0})
    # the text grew across at least two polls before the done marker appeared
    assert len(growing) >= 3, f"lengths seen while generating: {growing}"
    assert polls[-1][0] >= growing[-1]


@pytest.mark.parametrize("verb", ["classify", "forecast", "generate"])
def test_a_live_stream_answers_each_observation(server, browser, verb: str) -> None:
    from selenium.webdriver.common.by import By

    open_page(browser, server)
    log = use_stream(browser, verb, observations=3)
    seqs = [int(line.split()[1]) for line in log]
    # newest first; a forecaster warmed up on the form's history answers at creation (seq 0)
    assert seqs == ([3, 2, 1, 0] if verb == "forecast" else [3, 2, 1]), log
    if verb == "classify":
        assert all(any(label in line for label in LABELS) for line in log), log
    elif verb == "forecast":
        assert all(f"{HORIZON} steps ahead" in line for line in log), log
        chart = card(browser, verb).find_element(By.CSS_SELECTOR, '[data-role="stream-chart"]')
        assert chart.find_element(By.CSS_SELECTOR, "svg path.forecast").get_attribute("d")
    else:
        assert all(line.split()[2] == "next" and "→" in line for line in log), log


def test_a_token_is_asked_for_and_then_sent(guarded, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get(guarded.url + "/")
    form = browser.find_element(By.ID, "token-form")
    wait_for(browser, lambda b: form.is_displayed(), "the token field")
    error = browser.find_element(By.ID, "page-error")
    assert "token" in error.text.lower(), error.text
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "article.card"), "the cards")
    assert classify(browser, "a triumph") in LABELS  # the token goes with every request


def test_screenshot_of_the_page_in_use(server, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    set_viewport(browser, 900)  # before drawing: charts are drawn at their box's width
    open_page(browser, server)
    classify(browser, "a gorgeous, witty film: I loved every minute")
    forecast(browser, series_csv(tmp_path))
    use_stream(browser, "forecast", observations=4)
    use_stream(browser, "classify", observations=3)
    assert generate(browser, max_tokens=300)[-1][1] == "done"
    assert not [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".error") if e.text]
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    shot = Path(os.environ.get("RNNKIT_PAGE_SCREENSHOT") or tmp_path / "serve.png")
    screenshot(browser, shot)
    assert shot.stat().st_size > 30_000  # a drawn page, not a blank one
