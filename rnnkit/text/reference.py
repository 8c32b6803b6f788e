"""A plain-Python reference of torchtext's `basic_english` tokenizer.

Not used for tokenising (see `tokenizers.BasicEnglishTokenizer`, which is batched and several
times faster); kept as the definition our fast tokenizer is tested against and as the baseline
in `benchmarks/bench_text.py`. The rules restate torchtext's `_basic_english_normalize`:
lower-case, then these regex substitutions in order, then `str.split()`.
"""

from __future__ import annotations

import re

TORCHTEXT_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(pattern), replacement)
    for pattern, replacement in [
        (r"\'", " '  "),
        (r"\"", ""),
        (r"\.", " . "),
        (r"<br \/>", " "),
        (r",", " , "),
        (r"\(", " ( "),
        (r"\)", " ) "),
        (r"\!", " ! "),
        (r"\?", " ? "),
        (r"\;", " "),
        (r"\:", " "),
        (r"\s+", " "),
    ]
]


def torchtext_basic_english(line: str) -> list[str]:
    """Tokens of `line` exactly as torchtext's `get_tokenizer("basic_english")` gives them."""
    line = line.lower()
    for pattern, replacement in TORCHTEXT_RULES:
        line = pattern.sub(replacement, line)
    return line.split()
