# Everything runs in a project-local virtualenv that the first target creates.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup run test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/quark run configs/maxcut.yml -o runs/maxcut-$$(date +%Y%m%d-%H%M%S)

test: setup lint
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check quark_cli tests
	$(BIN)/ruff format --check quark_cli tests

format: setup
	$(BIN)/ruff format quark_cli tests
	$(BIN)/ruff check --fix quark_cli tests

clean:
	rm -rf $(VENV) runs .pytest_cache
