# Everything runs in a project-local virtualenv that the first target creates.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup run test test-quark2-pythons stress lint format bench bench-quark3 clean

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
	$(MAKE) test-quark2-pythons

# QUARK 2 (2.1.3 and later) needs Python >= 3.12: the QUARK 2-contract tests and the engine's run on
# 3.12 and 3.13 too, each in its own virtualenv (.venv-py3.12, .venv-py3.13), found on PATH or in pyenv.
NEWER_PYTHONS := 3.12 3.13
CONTRACT_TESTS := tests/test_quark2_contract.py tests/test_async_engine.py tests/test_config.py tests/test_quark2_checkout.py
find_python = $(shell for p in python$(1) $(HOME)/.pyenv/versions/$(1)*/bin/python$(1); do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(1)".split("."))))' 2>/dev/null \
	&& { echo "$$p"; break; }; done)

.venv-py%/.installed-stamp: pyproject.toml
	@test -n "$(call find_python,$*)" || { echo "error: no Python $* on PATH or in pyenv" >&2; exit 2; }
	$(call find_python,$*) -m venv .venv-py$*
	.venv-py$*/bin/python -m pip install --quiet --upgrade pip
	.venv-py$*/bin/python -m pip install --quiet -e '.[dev]'
	touch $@

test-quark2-pythons: $(foreach v,$(NEWER_PYTHONS),.venv-py$(v)/.installed-stamp)
	for v in $(NEWER_PYTHONS); do .venv-py$$v/bin/python -m pytest -q $(CONTRACT_TESTS) || exit 1; done

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

# Each bench leaves its folders in one trash folder, deleted at the end: a deletion of thousands of files
# slows every file created near them for minutes on this disk (bench/README.md), so none is timed after one.
bench: setup bench-quark3
	@trash=$$(mktemp -d "$${TMPDIR:-/tmp}/quark-bench-trash-XXXXXX") || exit 1; \
	trap 'rm -rf "$$trash"' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
	export QUARK_BENCH_TRASH="$$trash" TMPDIR="$${TMPDIR:-/tmp}"; \
	$(BIN)/python bench/run_all.py && $(BIN)/python bench/quark3_compare.py

clean:
	rm -rf $(VENV) .venv-py3.* runs .pytest_cache
