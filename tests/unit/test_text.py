"""shipyard.text: the one label shortener the UI pages and the drift report share."""

from __future__ import annotations

import pytest

from shipyard.text import shorten


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("", 5, ""),
    ("abcde", 5, "abcde"),
    ("abcdef", 5, "abcd…"),
    ("évaluation-longue", 4, "éva…"),
], ids=["empty", "fits", "cut", "non-ascii"])
def test_shorten_keeps_at_most_limit_characters(text: str, limit: int, expected: str) -> None:
    assert shorten(text, limit) == expected
    assert len(shorten(text, limit)) <= limit
