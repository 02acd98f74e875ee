"""Gates that keep the package's shape: no import cycles, no private names borrowed across
modules, no module past the size a reader can hold in mind.

The import graph is read from the source (``ast``), not from ``sys.modules``, so an import
inside a function counts as much as one at the top: a cycle broken only by a function-level
import is still a cycle. Imports under ``if TYPE_CHECKING:`` are left out (annotations only),
and so is lazy attribute access on a package (``importlib.import_module`` by name), which is how
``import shipyard`` stays light without a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
MAX_LINES = 600
# Modules allowed past MAX_LINES, each with the reason and the issue that will split it.
LONG_MODULES: dict[str, str] = {}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "shipyard").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _imports(name: str, path: Path) -> Iterator[tuple[str, str, int]]:
    """``(module, imported name, line)`` for every import of a shipyard module in ``path``,
    at any depth, except under ``if TYPE_CHECKING:``. ``imported name`` is ``""`` for ``import x``."""
    package = _package_of(name, path)

    def visit(node: ast.AST) -> Iterator[tuple[str, str, int]]:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                yield from visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, "", node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                yield base, alias.name, node.lineno
        for child in ast.iter_child_nodes(node):
            yield from visit(child)

    yield from visit(ast.parse(path.read_text(encoding="utf-8")))


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for module, imported, _ in _imports(name, path):
            target = f"{module}.{imported}" if f"{module}.{imported}" in MODULES else module
            if target in MODULES and target != name:
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles (function-level imports count): " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_no_private_names_imported_across_modules() -> None:
    """What two modules share gets a public name in the module that owns it."""
    borrowed = [f"{MODULES[name].relative_to(SRC)}:{line} imports {imported} from {module}"
                for name, path in MODULES.items()
                for module, imported, line in _imports(name, path)
                if module.startswith("shipyard") and imported.startswith("_") and not imported.startswith("__")
                and module != name]
    assert not borrowed, "\n".join(borrowed)


def test_long_module_allowances_are_still_needed() -> None:
    for name in LONG_MODULES:  # none today: tracking.client became a facade over the services (#14)
        assert name in MODULES, f"{name} is gone: drop it from LONG_MODULES"
        lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
        assert lines > MAX_LINES, f"{name} has {lines} lines now: drop it from LONG_MODULES"


def test_modules_stay_small() -> None:
    long = {name: n for name, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES and name not in LONG_MODULES}
    assert not long, f"modules over {MAX_LINES} lines (split them, or list them in LONG_MODULES with a reason): {long}"


# Domain code takes a Store, an ArtifactStore and the principal (or a service built from them, or a
# Client where the docs pass one); only edges (the SDK's facades, the CLI, the server) reach for the
# fluent SDK's client or build a Client (#14). Modules join this list as they move.
DOMAIN_MODULES = ("shipyard.deploy.bundle", "shipyard.lineage.explain", "shipyard.lineage.graph",
                  "shipyard.models.card", "shipyard.models.evaluate", "shipyard.models.gates",
                  "shipyard.monitoring.challenge", "shipyard.monitoring.retrain", "shipyard.predictions.reader",
                  "shipyard.reproduce.plan", "shipyard.reproduce.runner", "shipyard.reproduce.workspace",
                  "shipyard.serving.deployment", "shipyard.serving.deployment_app", "shipyard.serving.guard",
                  "shipyard.serving.models", "shipyard.tracking.datasets", "shipyard.tracking.gc",
                  "shipyard.tracking.service", "shipyard.pipelines.records", "shipyard.pipelines.outputs")
_EDGES = ("shipyard.tracking.fluent", "shipyard.tracking.client")


@pytest.mark.parametrize("name", DOMAIN_MODULES)
def test_domain_modules_do_not_import_the_sdk_client(name: str) -> None:
    reached = {f"{module}.{imported}" if f"{module}.{imported}" in MODULES else module
               for module, imported, _ in _imports(name, MODULES[name])}
    assert not reached & set(_EDGES), f"{name} imports {sorted(reached & set(_EDGES))}"
