"""The DAG a pipeline's function builds: calls of steps, the values wired between them, and how to draw it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.pipelines.steps import Step

__all__ = ["Call", "Graph", "Ref"]


@dataclass(frozen=True, slots=True)
class Ref:
    """An argument that is output ``output`` of call ``call``."""

    call: str
    output: str


@dataclass(slots=True)
class Call:
    """One call of a step in the pipeline: ``args`` maps each parameter to a literal or a :class:`Ref`;
    ``after`` names calls that must finish first although no value flows from them."""

    id: str
    step: Step
    args: dict[str, Any]
    after: set[str] = field(default_factory=set)

    def refs(self) -> dict[str, Ref]:
        return {name: value for name, value in self.args.items() if isinstance(value, Ref)}

    def upstream(self) -> set[str]:
        return {ref.call for ref in self.refs().values()} | self.after

    def literals(self) -> dict[str, Any]:
        return {name: value for name, value in self.args.items() if not isinstance(value, Ref)}


@dataclass
class Graph:
    """The calls of one pipeline, in the order the pipeline function made them."""

    pipeline: str
    calls: dict[str, Call] = field(default_factory=dict)

    def order(self) -> list[str]:
        """The calls in an order where each comes after everything it needs. Raises ``InvalidInput``
        naming the calls of a cycle (possible through ``Output.after``)."""
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done
        ordered: list[str] = []
        for start in self.calls:
            if state.get(start):
                continue
            stack: list[tuple[str, list[str]]] = [(start, sorted(self.calls[start].upstream()))]
            state[start] = 1
            while stack:
                node, pending = stack[-1]
                if not pending:
                    stack.pop()
                    state[node] = 2
                    ordered.append(node)
                    continue
                nxt = pending.pop()
                if nxt not in self.calls:
                    raise InvalidInput(f"step {node!r} of pipeline {self.pipeline!r} waits for {nxt!r}, which is "
                                       "not a step of this pipeline")
                if state.get(nxt) == 1:
                    path = [n for n, _ in stack]
                    cycle = [*path[path.index(nxt):], nxt]
                    raise InvalidInput(f"pipeline {self.pipeline!r} has a cycle: {' -> '.join(reversed(cycle))}; "
                                       "a step cannot wait for a step that needs its own output")
                if not state.get(nxt):
                    state[nxt] = 1
                    stack.append((nxt, sorted(self.calls[nxt].upstream())))
        return ordered

    def downstream(self, call_id: str) -> set[str]:
        """Every call that needs ``call_id``, directly or not."""
        found: set[str] = set()
        frontier = [call_id]
        while frontier:
            current = frontier.pop()
            for other in self.calls.values():
                if current in other.upstream() and other.id not in found:
                    found.add(other.id)
                    frontier.append(other.id)
        return found

    # -- drawing -------------------------------------------------------------------------
    def _edges(self) -> list[tuple[str, str, str]]:
        edges = []
        for call in self.calls.values():
            for name, ref in call.refs().items():
                label = name if ref.output == "output" else f"{ref.output} -> {name}"
                edges.append((ref.call, call.id, label))
            edges.extend((before, call.id, "after") for before in sorted(call.after))
        return edges

    def _describe(self, call: Call) -> str:
        literal = ", ".join(f"{k}={_short(v)}" for k, v in call.literals().items())
        flags = [f"gate: {g}" for g in call.step.gates]
        if not call.step.cache:
            flags.append("no cache")
        if call.step.retries:
            flags.append(f"retries: {call.step.retries}")
        extra = f" [{'; '.join(flags)}]" if flags else ""
        return f"{call.id}({literal}){extra}"

    def to_text(self) -> str:
        """One line per step, in run order, each with what it needs."""
        lines = [f"pipeline {self.pipeline}"]
        edges = self._edges()
        for call_id in self.order():
            needs = [f"{src} ({label})" for src, dst, label in edges if dst == call_id]
            arrow = f"  <- {', '.join(needs)}" if needs else ""
            lines.append(f"  {self._describe(self.calls[call_id])}{arrow}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self) -> str:
        lines = ["flowchart LR"]
        for call_id in self.order():
            text = self._describe(self.calls[call_id]).replace('"', "#quot;")
            lines.append(f'  {_ident(call_id)}["{text}"]')
        for src, dst, label in self._edges():
            lines.append(f"  {_ident(src)} -->|{label.replace('|', '#124;')}| {_ident(dst)}")
        return "\n".join(lines) + "\n"

    def to_dot(self) -> str:
        lines = [f"digraph {json.dumps(self.pipeline)} {{", "  rankdir=LR;",
                 '  node [shape=box, fontname="Helvetica"];']
        for call_id in self.order():
            lines.append(f"  {json.dumps(call_id)} [label={json.dumps(self._describe(self.calls[call_id]))}];")
        for src, dst, label in self._edges():
            style = ", style=dashed" if label == "after" else ""
            lines.append(f"  {json.dumps(src)} -> {json.dumps(dst)} [label={json.dumps(label)}{style}];")
        lines.append("}")
        return "\n".join(lines) + "\n"


def _ident(call_id: str) -> str:
    # Mermaid ids must be plain words; step ids already are, apart from the call suffix.
    return "s_" + "".join(c if c.isalnum() else "_" for c in call_id)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
