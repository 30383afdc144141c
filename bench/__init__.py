"""Benchmarks: ingest, query latency, retrieval quality of the embedders (see docs/performance.md).

Every benchmark imports ``bench.machine`` before anything that loads a model or a client, so
these defaults hold for all of them: models from the local cache only, no telemetry.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
