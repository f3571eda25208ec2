# prune-search: `make demo` runs a real offline search, `make test` runs every test.
# Both install what they need into .venv first (pip: it takes torch from the local wheel cache
# where there is one; uv/poetry would download several GB).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BUDGET ?= 50

.PHONY: install demo test test-fast bench ui dashboard clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: install
	$(BIN)/python -m search.run --budget $(BUDGET) --dataset digits

test: install
	bash .ci/install-browser.sh
	bash .ci/install-postgres.sh
	$(BIN)/python -m pytest -q

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
	$(BIN)/python bench/search_quality.py --dataset cifar10 --seeds 0
	$(BIN)/python bench/article_claims.py

ui: install
	$(BIN)/prune-search ui

dashboard: install
	$(BIN)/prune-search dashboard

clean:
	rm -rf .prune-search test-artifacts
