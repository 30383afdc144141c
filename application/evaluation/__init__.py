"""Measuring retrieval and answers: BEIR-format benchmarks and question files (`rag eval`)."""
