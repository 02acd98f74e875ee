"""CI cannot go green by skipping: missing tools fail under any truthy ``CI``, and ``.ci/run`` checks its
services before it runs ``make test`` and passes its failures on."""

from __future__ import annotations

import ast
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.conftest as shared
from tests.ci import in_ci, require
from tests.support import free_port

ROOT = Path(__file__).parents[2]
TESTS = ROOT / "tests"
CI_RUN = ROOT / ".ci" / "run"
BASH = shutil.which("bash") or "/bin/bash"


@pytest.mark.parametrize("value", ["true", "TRUE", "True", "1", "yes", "YES", "on", " true "])
def test_every_truthy_ci_value_counts(value: str) -> None:
    assert in_ci({"CI": value})


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "nope"])
def test_other_ci_values_do_not(value: str) -> None:
    assert not in_ci({"CI": value})
    assert not in_ci({})


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_a_missing_module_fails_under_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match=r"could not import 'shipyard_no_such_module'.*CI is set"):
        require("shipyard_no_such_module")


def test_a_missing_module_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="could not import 'shipyard_no_such_module'"):
        require("shipyard_no_such_module")
    assert require("json").dumps([1]) == "[1]"


def _offences(path: Path, root: Path = ROOT) -> list[str]:
    """Calls to ``importorskip`` and reads of the ``CI`` variable in one test file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name == "importorskip":
                found.append(f"{where}: importorskip (use tests.ci.require)")
            first = node.args[0] if node.args else None
            if name in ("get", "getenv") and isinstance(first, ast.Constant) and first.value == "CI":
                found.append(f"{where}: reads CI (use tests.ci.in_ci)")
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and node.slice.value == "CI":
            found.append(f"{where}: reads CI (use tests.ci.in_ci)")
    return found


def test_no_test_skips_a_missing_module_or_reads_ci_on_its_own() -> None:
    offences = [o for path in sorted(TESTS.rglob("*.py")) if path != TESTS / "ci.py" for o in _offences(path)]
    assert offences == []


def test_the_guard_sees_what_it_forbids(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text('import os\nimport pytest\nmlflow = pytest.importorskip("mlflow")\n'
                      'if os.environ.get("CI", "").lower() == "true":\n    pass\nx = os.environ["CI"]\n')
    assert sorted(_offences(sample, tmp_path)) == ["test_sample.py:3: importorskip (use tests.ci.require)",
                                           "test_sample.py:4: reads CI (use tests.ci.in_ci)",
                                           "test_sample.py:6: reads CI (use tests.ci.in_ci)"]


def test_postgres_fixture_fails_under_ci_when_no_server_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared, "POSTGRES_ADMIN_URI", f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="no PostgreSQL server answers"), \
            shared.fresh_postgres_database():
        pass
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL server answers"), \
            shared.fresh_postgres_database():
        pass


# -- .ci/run ----------------------------------------------------------------------------------------


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _fake(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!{BASH}\n{body}\n")
    path.chmod(0o755)


def _ci_run(tmp_path: Path, *, make_exit: int = 0, pg_isready_exit: int | None = 0,
            env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], str | None]:
    """Run ``.ci/run`` with a fake ``make`` (and a fake ``pg_isready``, or none at all); returns the
    process and what ``make`` was called with (None when it was not)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "make.log"
    bin_dir.mkdir(parents=True)
    _fake(bin_dir, "make", f'echo "$PWD|$*|CI=$CI" > {log}\nexit {make_exit}')
    if pg_isready_exit is not None:
        _fake(bin_dir, "pg_isready", f'echo "$*" > {tmp_path / "pg.log"}\nexit {pg_isready_exit}')
    # all .ci/run needs besides bash builtins (a real interpreter: python3 may be a shell shim), and no
    # system pg_isready
    os.symlink(shutil.which("dirname") or "/usr/bin/dirname", bin_dir / "dirname")
    os.symlink(os.path.realpath(sys.executable), bin_dir / "python3")
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "SHIPYARD_TEST_POSTGRES")}
    done = subprocess.run([BASH, str(CI_RUN)], env={**base, "PATH": str(bin_dir), **(env or {})},
                          capture_output=True, text=True, timeout=60, check=False)
    return done, log.read_text().strip() if log.exists() else None


def test_ci_run_fails_early_when_postgres_does_not_answer(tmp_path: Path) -> None:
    done, make = _ci_run(tmp_path, pg_isready_exit=2)
    assert done.returncode == 3
    assert "PostgreSQL does not answer at 127.0.0.1:5432 (checked with pg_isready)" in done.stderr
    assert make is None
    assert (tmp_path / "pg.log").read_text().split() == ["-q", "-h", "127.0.0.1", "-p", "5432", "-t", "5"]


def test_ci_run_runs_make_test_under_ci(tmp_path: Path) -> None:
    done, make = _ci_run(tmp_path)
    assert done.returncode == 0, done.stderr
    assert make == f"{ROOT}|test|CI=true"
    assert "PostgreSQL answers at 127.0.0.1:5432" in done.stdout


def test_ci_run_keeps_a_ci_value_it_is_given(tmp_path: Path) -> None:
    _, make = _ci_run(tmp_path, env={"CI": "1"})
    assert make == f"{ROOT}|test|CI=1"


@pytest.mark.parametrize("code", [2, 5])
def test_a_failing_test_run_fails_ci(tmp_path: Path, code: int) -> None:
    # make turns pytest's exit 5 (no tests collected) into its own 2; either way CI must not pass.
    done, make = _ci_run(tmp_path, make_exit=code)
    assert make is not None
    assert done.returncode == code
    assert f"make test exited {code}" in done.stderr


def test_without_pg_isready_a_socket_check_decides(tmp_path: Path, listening_port: int) -> None:
    up, make = _ci_run(tmp_path / "up", pg_isready_exit=None,
                       env={"SHIPYARD_TEST_POSTGRES": f"postgresql://postgres@127.0.0.1:{listening_port}/db"})
    assert up.returncode == 0, up.stderr
    assert make is not None
    port = free_port()
    down, make = _ci_run(tmp_path / "down", pg_isready_exit=None,
                         env={"SHIPYARD_TEST_POSTGRES": f"postgresql://postgres@127.0.0.1:{port}/db"})
    assert down.returncode == 3
    assert f"PostgreSQL does not answer at 127.0.0.1:{port} (checked with a TCP connection)" in down.stderr
    assert make is None
