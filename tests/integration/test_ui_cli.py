"""``shipyard ui``: serves the UI on the local store; refuses a server URI with one line."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from shipyard.cli import app
from tests.support import clean_environment, free_port, shipyard_command


def test_ui_serves_the_local_store_without_opening_a_browser(tmp_path: Path) -> None:
    import shipyard

    uri = f"sqlite:///{tmp_path / 'shipyard.db'}"
    client = shipyard.Client(tracking_uri=uri)
    client.create_experiment("from-the-cli")
    client.close()
    port = free_port()
    # BROWSER: webbrowser would run `false`, never a window
    env = clean_environment({"SHIPYARD_TRACKING_URI": uri, "BROWSER": "false"})
    process = subprocess.Popen(shipyard_command("ui", "--port", str(port), "--no-browser"), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        page = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", follow_redirects=True, timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert page is not None, "the UI never answered"
        assert page.status_code == 200
        assert "from-the-cli" in page.text
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert f"Shipyard UI on http://127.0.0.1:{port}/" in output


def test_ui_against_a_server_says_where_its_ui_is() -> None:
    result = CliRunner().invoke(app, ["--tracking-uri", "http://shipyard.internal:5000", "ui", "--no-browser"])
    assert result.exit_code == 2
    assert "http://shipyard.internal:5000/" in result.output
    assert "Traceback" not in result.output
