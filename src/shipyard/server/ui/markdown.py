"""Model cards and descriptions, Markdown to HTML that is safe to put in a page.

markdown-it-py (CommonMark) with raw HTML turned off: any ``<script>`` or ``<img onerror>`` in
the text is escaped and shown as text, and its link validator drops ``javascript:``,
``vbscript:``, ``file:`` and ``data:`` (except images) URLs. Tables are on: generated cards use them.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from markupsafe import Markup


@cache
def _parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


def render_markdown(text: str) -> Markup:
    """``text`` rendered; safe to insert unescaped (raw HTML in it is escaped)."""
    return Markup(_parser().render(text or ""))
