"""The benchmark's pipeline in Metaflow (runs in ``.bench/metaflow-venv``): a FlowSpec whose ``start`` makes the
frame, branches into two feature steps, joins them, fits and evaluates in ``end``; run with ``run`` on the local
datastore and metadata, then ``resume end`` (the earlier steps cloned from the last run)."""

from __future__ import annotations

import _pipeline_work as w
from metaflow import FlowSpec, Parameter, step


class BenchFlow(FlowSpec):
    seed = Parameter("seed", default=w.SEED)
    window = Parameter("window", default=w.WINDOW)
    c = Parameter("c", default=w.C)

    @step
    def start(self):
        self.frame = w.make(self.seed)
        self.next(self.rolling, self.ranks)

    @step
    def rolling(self):
        self.a = w.rolling(self.frame, self.window)
        self.next(self.join)

    @step
    def ranks(self):
        self.b = w.ranks(self.frame)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.table = w.join(inputs.rolling.frame, inputs.rolling.a, inputs.ranks.b)
        self.next(self.fit)

    @step
    def fit(self):
        self.model = w.fit(self.table, self.c)
        self.next(self.end)

    @step
    def end(self):
        self.metrics = w.evaluate(self.model, self.table)


if __name__ == "__main__":
    BenchFlow()
