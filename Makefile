# prune-search: `make demo` runs a real offline search, `make test` runs every test.
# Both install what they need into .venv first (pip: it takes torch from the local wheel cache
# where there is one; uv/poetry would download several GB).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BUDGET ?= 50

.PHONY: install demo test test-fast lint bench ui dashboard docs clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $@

demo: install
	$(BIN)/prune-search run --budget $(BUDGET) --dataset digits

test: install
	bash .ci/install-browser.sh
	bash .ci/install-postgres.sh
	$(BIN)/python -m pytest -q

# ruff's rules and exceptions are in pyproject.toml ([tool.ruff]); .ci/run runs this before the tests.
lint: install
	$(BIN)/ruff check .

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

# Every benchmark's default setting (bench/, results in BENCHMARKS.md); hours on 2 cores, and
# each long one resumes where it stopped when rerun on the same code.
bench: install
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/speedup.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/concurrency.py
	$(BIN)/python bench/search_quality.py
	$(BIN)/python bench/search_quality.py --dataset cifar10 --seeds 0,1,2
	$(BIN)/python bench/search_quality.py --dataset cifar10 --setting simplecnn --seeds 0
	$(BIN)/python bench/article_claims.py

ui: install
	$(BIN)/prune-search ui

dashboard: install
	$(BIN)/prune-search dashboard

# docs/cli.md from each command's --help (tests/test_docs_commands.py fails when it is stale).
docs: install
	$(BIN)/python docs/generate_cli.py

clean:
	rm -rf .prune-search test-artifacts
