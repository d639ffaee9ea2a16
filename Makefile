# Everything runs in a project-local virtualenv that the first target creates.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup run test stress lint format bench bench-quark3 clean

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

# Fault injection at length (not run by `make test`, which kills about 20 times): over 100 SIGKILLs of
# submit and collect on the controlled, local and Qaptiva backends; prints kills, lost, duplicated, corrupt.
stress: setup
	QUARK_STRESS=1 $(BIN)/python -m pytest tests/test_crash_safety.py -s -q -p no:cacheprovider

format: setup
	$(BIN)/ruff format quark_cli tests
	$(BIN)/ruff check --fix quark_cli tests

# Benches (bench/, not run by `make test`). QUARK 3 (quark-framework) needs Python >= 3.12, so the
# side-by-side bench gets its own virtualenv; `bench-quark3` makes it and records how long that took.
QUARK3_VENV := bench/.venv-quark3
QUARK3_VERSION ?= 0.4.6
QUARK3_PYTHON ?= $(shell for p in python3.12 $(HOME)/.pyenv/versions/3.12*/bin/python3.12; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo "$$p"; break; }; done)

$(QUARK3_VENV)/.installed-stamp:
	@test -n "$(QUARK3_PYTHON)" || { echo "error: QUARK 3 needs Python >= 3.12: make bench-quark3 QUARK3_PYTHON=/path/to/python3.12" >&2; exit 2; }
	start=$$(date +%s) && \
	$(QUARK3_PYTHON) -m venv $(QUARK3_VENV) && \
	$(QUARK3_VENV)/bin/python -m pip install --quiet --upgrade pip && \
	$(QUARK3_VENV)/bin/python -m pip install --quiet 'quark-framework==$(QUARK3_VERSION)' && \
	echo $$(( $$(date +%s) - start )) > $(QUARK3_VENV)/setup-seconds
	touch $@

bench-quark3: $(QUARK3_VENV)/.installed-stamp

bench: setup bench-quark3
	$(BIN)/python bench/run_all.py
	$(BIN)/python bench/quark3_compare.py

clean:
	rm -rf $(VENV) runs .pytest_cache
