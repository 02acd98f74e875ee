"""Docs coverage is a test: the REST reference matches the server, every CLI command is documented."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_api_docs", ROOT / "scripts" / "gen_api_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rest_reference_is_current() -> None:
    assert _load_generator().main(["--check"]) == 0, "run: .venv/bin/python scripts/gen_api_docs.py"


def _commands(group, prefix: str = "shipyard") -> list[str]:
    import click

    found = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            found += _commands(command, path)
        else:
            found.append(path)
    return found


def test_every_cli_command_is_documented() -> None:
    import typer.main

    from shipyard.cli import app

    docs = "\n".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    missing = []
    for command in _commands(typer.main.get_command(app)):
        group_and_name = command.split()
        if f"{' '.join(group_and_name[1:])}" not in docs:
            missing.append(command)
    assert missing == [], f"commands missing from docs/: {missing}"


@pytest.mark.parametrize("page", ["tracking.md", "configuration.md", "performance.md", "api.md", "server.md",
                                  "models.md"])
def test_readme_links_every_page(page: str) -> None:
    assert f"docs/{page}" in (ROOT / "README.md").read_text()
