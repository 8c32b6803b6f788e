"""The quickstart's report.html in a real browser: Debian's headless chromium via selenium.

Checks what a reader sees: every <img> decoded (complete, naturalWidth > 0) and the summary
table present with one row per metric; saves a screenshot. The `browser` fixture
(tests/conftest.py) passes the driver path explicitly, so Selenium Manager never downloads a
browser or driver.

`make browser` (a step of `make test`) installs chromium and chromium-driver when missing; without
them this test fails with that instruction rather than skipping.

To screenshot another report (the docs' copy comes from the real `make demo` run):

    RNNKIT_BROWSER_REPORT=runs/quickstart/report.html \
    RNNKIT_BROWSER_SCREENSHOT=docs/report-screenshot.png pytest tests/apps/test_browser.py
"""

from __future__ import annotations

import os
from pathlib import Path


def test_quickstart_report_renders_every_image_and_the_summary(
    tiny_quickstart, browser, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    report = Path(os.environ.get("RNNKIT_BROWSER_REPORT") or tiny_quickstart.report).resolve()
    browser.get(report.as_uri())
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth]);"
    )
    assert len(images) >= 4, images
    broken = [alt for alt, complete, width in images if not (complete and width > 0)]
    assert not broken, f"images that did not load: {broken}"

    rows = browser.find_elements(By.CSS_SELECTOR, "#summary table tbody tr")
    if "RNNKIT_BROWSER_REPORT" not in os.environ:
        assert len(rows) == len(tiny_quickstart.rows)
    assert rows and "stage" in browser.find_element(By.CSS_SELECTOR, "#summary thead").text

    shot = Path(os.environ.get("RNNKIT_BROWSER_SCREENSHOT") or tmp_path / "report.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
