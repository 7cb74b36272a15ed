# make report | make test | make test-fast | make test-deep | make bench | make clean
# Each target creates the virtual environment .venv itself on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SIZE ?= fast
JOBS ?= 2
# sections beyond the claims and figures (make report EXTRA= for the claims and figures only)
EXTRA ?= --maps --scorecard

.PHONY: all report test test-fast test-deep bench clean venv

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,distributed]'
	touch $(STAMP)

venv: $(STAMP)

report: $(STAMP)
	MPLBACKEND=Agg $(PY) -m compare report --size $(SIZE) --jobs $(JOBS) $(EXTRA) --out report

test: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest -q tests README.md theory

test-fast: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest -q -m 'not slow' tests README.md theory

# The property suites (bad inputs, legal extremes) under the broad hypothesis profile: random examples,
# DEEP_FACTOR (tests/conftest.py) times as many as the derandomised ones of `make test`. Not in CI.
DEEP_TESTS := $(wildcard tests/*/test_bad_inputs.py tests/*/test_extremes.py)

test-deep: $(STAMP)
	HYPOTHESIS_PROFILE=deep MPLBACKEND=Agg $(PY) -m pytest -q $(DEEP_TESTS)

bench: $(STAMP)
	@status=0; for f in benchmarks/*.py; do echo "== $$f"; MPLBACKEND=Agg $(PY) $$f || status=1; done; exit $$status

clean:
	rm -rf $(VENV) report .cache .pytest_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
