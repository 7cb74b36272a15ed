# make report | make test | make test-fast | make bench | make clean
# Each target creates the virtual environment .venv itself on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SIZE ?= fast
JOBS ?= 2
# sections beyond the claims and figures (make report EXTRA= for the claims and figures only)
EXTRA ?= --maps

.PHONY: all report test test-fast bench clean venv

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

bench: $(STAMP)
	@status=0; for f in benchmarks/*.py; do echo "== $$f"; MPLBACKEND=Agg $(PY) $$f || status=1; done; exit $$status

clean:
	rm -rf $(VENV) report .cache .pytest_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
