# README's two commands: `make run` and `make test`. Everything else is set up from here.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
PORT   ?= 8501
STAMP  := $(VENV)/.installed

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export ANONYMIZED_TELEMETRY ?= False
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup run test test-fast lint ingest bench-reference bench-ingest clean

# The environment, with dev extras; a no-op when pyproject.toml has not changed.
setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip setuptools wheel
	# The CPU build of torch first: an unpinned torch pulls several GB of CUDA packages.
	$(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

# Ingest knowledge_base/ (a sync: unchanged files are skipped) and serve the UI.
run: setup
	$(BIN)/rag ingest knowledge_base
	$(BIN)/rag ui --port $(PORT)

test: setup lint
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not browser and not server"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

ingest: setup
	$(BIN)/rag ingest knowledge_base

# The reference pipeline's own environment (bench/reference-requirements.txt), for benchmarks.
REF_VENV ?= .venv-ref
bench-reference:
	test -x $(REF_VENV)/bin/python || $(PYTHON) -m venv $(REF_VENV)
	$(REF_VENV)/bin/python -m pip install -q "$(TORCH)"
	$(REF_VENV)/bin/python -m pip install -q -r bench/reference-requirements.txt

# Ours, the reference, ours again on docugami in one session (docs/performance.md).
bench-ingest: setup bench-reference
	REF_PYTHON=$(REF_VENV)/bin/python bash bench/ingest_vs_reference.sh ../shared/data/docugami

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
