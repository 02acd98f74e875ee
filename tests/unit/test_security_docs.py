"""docs/security.md shows the role table the code enforces, and every claim of an "authenticated
principal" elsewhere in the docs is about a server started with --auth."""

from __future__ import annotations

from pathlib import Path

from shipyard.auth.roles import PERMISSION_TABLE, permission_table_markdown

DOCS = Path(__file__).parents[2] / "docs"


def test_the_security_page_holds_exactly_the_role_table_of_the_code() -> None:
    text = (DOCS / "security.md").read_text(encoding="utf-8")
    table = permission_table_markdown()
    assert table in text, "copy shipyard.auth.roles.permission_table_markdown() into docs/security.md"
    # exactly: no extra or stale row next to the table in the page
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows == table.splitlines()[2:]
    assert len(rows) == len(PERMISSION_TABLE)


def test_no_page_still_says_that_access_control_has_not_landed() -> None:
    stale = [page.name for page in DOCS.glob("*.md")
             if "until access control lands" in page.read_text(encoding="utf-8").replace("\n", " ")
             or "until authentication lands" in page.read_text(encoding="utf-8").replace("\n", " ")]
    assert stale == []
