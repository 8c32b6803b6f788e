"""Parsers' own quirks, on tiny inline inputs (the real files are tested in test_registry.py)."""

from __future__ import annotations

from rnnkit.data.parsers import markdown_play_to_text

PLAY = """# Hamlet

## ACT I

### SCENE I. Elsinore. A platform before the castle.

_FRANCISCO at his post. Enter to him BERNARDO_

**BERNARDO**{BR}
Who's there?

**FRANCISCO**{BR}
Nay, answer me: stand, and unfold yourself.{BR}
_\\[Aside]_{BR}



**BERNARDO**{BR}
Long live the king!
""".replace("{BR}", "  ")  # markdown hard line breaks: two trailing spaces


def test_markdown_play_becomes_tinyshakespeare_layout() -> None:
    assert markdown_play_to_text(PLAY) == (
        "Hamlet\n\nACT I\n\nSCENE I. Elsinore. A platform before the castle.\n\n"
        "FRANCISCO at his post. Enter to him BERNARDO\n\n"
        "BERNARDO:\nWho's there?\n\n"
        "FRANCISCO:\nNay, answer me: stand, and unfold yourself.\n[Aside]\n\n"
        "BERNARDO:\nLong live the king!\n"
    )
