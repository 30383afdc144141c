"""Benchmarks: ingest, query latency, retrieval quality of the embedders (see docs/performance.md)."""
