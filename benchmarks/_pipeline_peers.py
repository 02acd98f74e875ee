"""The peers of the pipelines benchmark: how each is installed, configured and run.

Each peer lives in its own virtualenv under ``.bench/`` (``<name>-venv``), created with pip from PyPI on first use
with this venv's scikit-learn version (the same model code on every side); its flow is ``_pipeline_peers_<name>.py``,
which calls the same functions as Shipyard's (``_pipeline_work.py``). Every peer keeps its store in the temporary
folder it is given and runs with its usage analytics off. A peer that cannot be installed or run is reported with
the reason, not left out.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import tracking as t

HERE = Path(__file__).resolve().parent
NO_TELEMETRY = {"DO_NOT_TRACK": "1"}


class PeerError(RuntimeError):
    """A peer could not be installed or run; the message is the reason the table shows."""


def _zenml_env(home: Path) -> dict[str, str]:
    return {"ZENML_CONFIG_PATH": str(home / "zenml-config"), "ZENML_ANALYTICS_OPT_IN": "false",
            "ZENML_ENABLE_REPO_INIT_WARNINGS": "false"}


def _metaflow_env(home: Path) -> dict[str, str]:
    return {"METAFLOW_DEFAULT_DATASTORE": "local", "METAFLOW_DEFAULT_METADATA": "local",
            "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(home), "METAFLOW_HOME": str(home / "metaflow-config"),
            "USERNAME": "bench"}


def _prefect_env(home: Path) -> dict[str, str]:
    # No PREFECT_API_URL: Prefect 3 runs the flow against an ephemeral local server on a SQLite database in
    # PREFECT_HOME; persisted results (the cache) go to the local storage path.
    return {"PREFECT_HOME": str(home / "prefect"), "PREFECT_LOCAL_STORAGE_PATH": str(home / "prefect" / "storage"),
            "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_API_URL": "",
            # its default, 20 s, is too short for the server's start on a loaded 2-core machine
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}


def _kedro_env(home: Path) -> dict[str, str]:
    return {"KEDRO_DISABLE_TELEMETRY": "true"}


@dataclass(frozen=True)
class Peer:
    name: str  # as shown in the table
    package: str  # the PyPI distribution, also the module the install is checked with
    runs: tuple[tuple[str, tuple[str, ...]], ...]  # (kind, arguments after the flow file): "cold" first
    settings: Callable[[Path], dict[str, str]]
    setup: tuple[str, ...] = ()  # a command run once per fresh store before the cold run (untimed)
    cached_runs: int = 6  # how many steps the second run must reuse
    extra: str = ""  # the pip extra its local use needs
    needs: tuple[str, ...] = ()  # modules that extra brings, imported to check the install

    @property
    def requirement(self) -> str:
        return f"{self.package}[{self.extra}]" if self.extra else self.package

    @property
    def venv(self) -> Path:
        return t.BENCH_DIR / f"{self.package}-venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def script(self) -> Path:
        return HERE / f"_pipeline_peers_{self.package}.py"

    def env(self, home: Path) -> dict[str, str]:
        return t.clean_env(**NO_TELEMETRY, **self.settings(home))


PEERS = (
    # `zenml init` makes the folder ZenML's source root; the store itself is created by the cold run, as
    # Shipyard's is. A local store (SQLite) needs the `local` extra.
    Peer("ZenML", "zenml", (("cold", ()), ("cached", ())), _zenml_env, extra="local", needs=("sqlalchemy",),
         setup=("-c", "from zenml.cli import cli; cli(['init'])")),
    Peer("Metaflow", "metaflow", (("cold", ("run",)), ("resume", ("resume", "end"))), _metaflow_env, cached_runs=5),
    Peer("Prefect", "prefect", (("cold", ()), ("cached", ())), _prefect_env),
    Peer("Kedro", "kedro", (("cold", ()),), _kedro_env),
)


def ensure_venv(peer: Peer, log: Callable[[str], None]) -> str:
    """The version of ``peer`` installed in its venv, installing it from PyPI first when it is not there.
    Raises ``PeerError`` with the reason when it cannot be installed or imported."""
    ready = peer.venv / ".bench-ready"
    if ready.exists():
        return ready.read_text().strip()
    modules = ", ".join((peer.package, *peer.needs, "sklearn", "pandas", "pyarrow"))
    probe = [str(peer.python), "-c", f"import {modules}; "
             f"from importlib.metadata import version; print(version({peer.package!r}))"]
    found = subprocess.run(probe, capture_output=True, text=True, check=False) if peer.python.exists() else None
    if found is None or found.returncode:
        t.LOG_DIR.mkdir(parents=True, exist_ok=True)
        logfile = t.LOG_DIR / f"{peer.package}-venv.log"
        log(f"installing {peer.name} from PyPI into {peer.venv} (first run only; log: {logfile})")
        try:
            if not peer.python.exists():
                t.run_logged([sys.executable, "-m", "venv", peer.venv], logfile)
            t.run_logged([peer.python, "-m", "pip", "install", "--upgrade", "pip"], logfile)
            sklearn = f"scikit-learn=={version('scikit-learn')}"
            t.run_logged([peer.python, "-m", "pip", "install", peer.requirement, sklearn, "pandas", "pyarrow"], logfile)
        except t.BenchError as exc:
            raise PeerError(f"pip could not install {peer.package}: {exc}") from None
        found = subprocess.run(probe, capture_output=True, text=True, check=False)
        if found.returncode:
            raise PeerError(f"{peer.package} does not import: {_last_line(found.stderr)}")
    ready.write_text(found.stdout.strip())
    return ready.read_text().strip()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def setup(peer: Peer, home: Path) -> None:
    if peer.setup:
        done = subprocess.run([str(peer.python), *peer.setup], cwd=home, env=peer.env(home), capture_output=True,
                              text=True, check=False)
        if done.returncode:
            raise PeerError(f"`{' '.join(peer.setup)}` failed: {_last_line(done.stdout + done.stderr)}")


def command(peer: Peer, arguments: tuple[str, ...]) -> list[str]:
    return [str(peer.python), peer.script.name, *arguments]


def check(peer: Peer, kind: str, output: str) -> None:
    """Raise ``PeerError`` unless the run reused what it should: nothing when cold, every step when cached, the
    steps before the last one on Metaflow's resume."""
    if peer.package == "metaflow":
        reused = output.count("Cloning previously run task")
    else:
        found = re.findall(r"^cached=(\d+)$", output, re.MULTILINE)
        if not found:
            raise PeerError(f"the {kind} run printed no count of cached steps: {_last_line(output)}")
        reused = int(found[-1])
    expected = 0 if kind == "cold" else peer.cached_runs
    if reused != expected:
        raise PeerError(f"the {kind} run reused {reused} steps, expected {expected}")


def peer_cwd(peer: Peer, home: Path) -> Path:
    """The folder a peer runs in, holding its flow and the work it calls: a project of its own (ZenML refuses a
    pipeline whose file is outside the folder `zenml init` made its source root)."""
    folder = home / "work"
    folder.mkdir(parents=True, exist_ok=True)
    for source in (peer.script, HERE / "_pipeline_work.py"):
        shutil.copy2(source, folder / source.name)
    return folder


__all__ = ["PEERS", "Peer", "PeerError", "check", "command", "ensure_venv", "peer_cwd", "setup"]
