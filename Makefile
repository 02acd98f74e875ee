# The two commands of the README:
#   make demo   creates .venv, installs Shipyard, runs examples/demo.py (the whole loop) on the embedded store
#   make test   creates .venv if needed, installs, then lints, type-checks and runs the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first, pinned to the CPU build, so that nothing resolved later asks pip for a CUDA one.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]" -c constraints.txt
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python examples/demo.py

lint: $(VENV)/.installed
	$(BIN)/ruff check .

# mypy (strict on src/shipyard; settings in pyproject.toml) before the suite: from a warm cache
# (.mypy_cache) it answers in seconds, where the suite takes minutes.
# Two workers, one test file each at a time (module fixtures stay in one process): the suite is
# mostly servers and subprocesses waiting on each other, so two halve its time on two cores.
test: lint
	$(BIN)/mypy
	@# Bytecode for the checkout, as pip writes it for installed packages: the suite starts hundreds of
	@# Python processes, each of which otherwise compiles src/shipyard from source (PYTHONDONTWRITEBYTECODE).
	$(BIN)/python -m compileall -q src/shipyard
	$(BIN)/pytest -n 2 --dist loadfile

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/tracking.py
	$(BIN)/python benchmarks/server.py
	$(BIN)/python benchmarks/models.py
	$(BIN)/python benchmarks/data.py
	$(BIN)/python benchmarks/mlflow_compat.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/pipelines.py
	$(BIN)/python benchmarks/pipelines_ray.py
	$(BIN)/python benchmarks/drift.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/ui.py

clean:
	rm -rf $(VENV) .shipyard .pytest_cache .ruff_cache .mypy_cache build dist src/*.egg-info
