# The two commands a newcomer needs: `make demo` (the whole flow, embedded) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: test lint typecheck unit bench demo binary package clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

lint: $(VENV)/.installed
	$(BIN)/ruff check sidecar tests benchmarks
	$(BIN)/ruff format --check sidecar tests benchmarks

typecheck: $(VENV)/.installed
	$(BIN)/mypy

unit: $(VENV)/.installed
	$(BIN)/pytest

test: lint typecheck unit

demo: $(VENV)/.installed
	$(BIN)/shopimind-sidecar demo

# The binary is rebuilt only when what goes into it changed.
BINARY_INPUTS := pyproject.toml $(shell find sidecar build -type f -not -path 'build/work/*' \
	-not -path '*/__pycache__/*' -not -name '*.pyc')

dist/shopimind-sidecar: $(VENV)/.installed $(BINARY_INPUTS)
	PYTHON=$(BIN)/python build/build.sh

binary: dist/shopimind-sidecar

package: dist/shopimind-sidecar
	build/package.sh

bench: $(VENV)/.installed
	$(BIN)/python -m benchmarks.run $(BENCH)

clean:
	rm -rf $(VENV) build/work dist .mypy_cache .pytest_cache .ruff_cache .hypothesis
