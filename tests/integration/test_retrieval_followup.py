"""Follow-up questions over the real index (a scripted LLM rewrites and answers), and the
CLI's retrieval flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.chat import SourcesEvent
from rag.types import Message
from tests.fakes import ScriptedLLM

pytestmark = pytest.mark.slow

HISTORY = [
    Message("user", "What is HNSW?"),
    Message("assistant", "HNSW is a graph index for approximate nearest neighbour search."),
]
FOLLOW_UP = "And what does its ef_search setting do?"
ANSWER = "It sets how many candidates the search keeps [1]."


@pytest.mark.parametrize(
    ("rewrite", "query"),
    [
        # a usable rewrite is the search query
        ("What does the ef_search setting of HNSW control?",
         "What does the ef_search setting of HNSW control?"),
        # an answer instead of a question is not: the previous question is prepended
        ("Sure! It controls the recall of the search.", f"What is HNSW? {FOLLOW_UP}"),
    ],
)
def test_follow_up_is_searched_with_the_topic_of_the_conversation(  # type: ignore[no-untyped-def]
    make_app, kb_data_dir, rewrite: str, query: str
) -> None:
    llm = ScriptedLLM([rewrite, ANSWER])
    engine = make_app(kb_data_dir, query_rewrite="on").chat_engine(llm)
    first = next(iter(engine.stream_answer(FOLLOW_UP, HISTORY)))
    assert isinstance(first, SourcesEvent)
    assert first.search_query == query
    assert first.sources[0].chunk.source == "vector-search-handbook.pdf"
    assert len(llm.calls) == 1  # the rewrite; the answer is asked once the sources are shown


def test_search_command_takes_mode_and_source_glob(kb_data_dir: Path) -> None:
    from tests.integration.test_cli import rag

    out = rag("search", "HNSW graph", "--mode", "lexical", "--source", "*.md", "--json",
              data_dir=kb_data_dir)
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)
    assert hits and all(h["source"].endswith(".md") for h in hits)
    bad = rag("search", "HNSW", "--mode", "sparse", data_dir=kb_data_dir)
    assert bad.returncode == 2 and "dense" in bad.stderr
