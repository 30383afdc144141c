"""Follow-up questions with the real embedded LLM, and the CLI's retrieval flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.chat import SourcesEvent
from rag.types import Message

pytestmark = pytest.mark.slow


def test_follow_up_is_searched_with_the_topic_of_the_conversation(  # type: ignore[no-untyped-def]
    make_app, kb_data_dir, llamacpp_llm
) -> None:
    app = make_app(kb_data_dir)
    engine = app.chat_engine(llamacpp_llm)
    history = [
        Message("user", "What is HNSW?"),
        Message("assistant", "HNSW is a graph index for approximate nearest neighbour search."),
    ]
    first = next(iter(engine.stream_answer("And what does its ef_search setting do?", history)))
    assert isinstance(first, SourcesEvent)
    # the LLM's rewrite when it is usable, else the previous question is prepended
    assert first.search_query != "And what does its ef_search setting do?"
    assert "ef_search" in first.search_query
    assert first.sources[0].chunk.source == "vector-search-handbook.pdf"


def test_search_command_takes_mode_and_source_glob(kb_data_dir: Path) -> None:
    from tests.integration.test_cli import rag

    out = rag("search", "HNSW graph", "--mode", "lexical", "--source", "*.md", "--json",
              data_dir=kb_data_dir)
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)
    assert hits and all(h["source"].endswith(".md") for h in hits)
    bad = rag("search", "HNSW", "--mode", "sparse", data_dir=kb_data_dir)
    assert bad.returncode == 2 and "dense" in bad.stderr
