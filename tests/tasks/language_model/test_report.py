"""The language model's report pieces: its baseline (unigram characters) and its sample."""

from __future__ import annotations

import math

import pytest

from rnnkit.reports.html import render_blocks
from rnnkit.reports.markdown import render_blocks as markdown_blocks
from rnnkit.tasks.language_model.report import sample_section, unigram_nats_per_char


def test_unigram_baseline_is_the_character_cross_entropy() -> None:
    # a and b equally frequent; add-one smoothing keeps them at 1/2 each: ln 2 nats per char.
    assert unigram_nats_per_char("abab", "ba") == pytest.approx(math.log(2))
    # an unseen character costs a finite amount: (0 + 1) / (3 + 2)
    assert unigram_nats_per_char("aaa", "c") == pytest.approx(math.log(5))
    with pytest.raises(ValueError, match="the evaluated text is empty"):
        unigram_nats_per_char("abc", "")


def test_the_sample_is_written_once_and_shown_as_is_in_both_formats(tmp_path) -> None:
    section = sample_section("JULIET:\n<O Romeo>", 0.8)
    assert section.heading == "Sample (temperature 0.8)"
    markdown = "\n".join(markdown_blocks([section], tmp_path, level=2))
    assert markdown.startswith("## Sample (temperature 0.8)\n\n```\nJULIET:\n<O Romeo>\n```")
    assert "<pre>JULIET:\n&lt;O Romeo&gt;</pre>" in render_blocks([section], tmp_path)
