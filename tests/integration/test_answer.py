"""The answer pipeline over the real index of knowledge_base/ (real embedder, real Chroma),
answering through a scripted LLM: the engine's behaviour, the same on every CPU. What the
in-process model itself does is checked by test_llamacpp_smoke.py (that it streams)."""

from __future__ import annotations

import re

import pytest

from rag.chat import ChatEngine, ContextBudget, DoneEvent, SourcesEvent, TokenEvent
from rag.conversations import answer_from_dict
from rag.prompts import format_context
from rag.retriever import SearchOptions
from rag.types import Message, RetrievedChunk, Source
from tests.fakes import ScriptedLLM

pytestmark = pytest.mark.slow

QUESTION = "What does the ef_search parameter of HNSW control?"
REPLY = "The ef_search parameter sets how many candidates the search keeps [1]."


def count_tokens(text: str) -> int:
    """A model's token count stand-in: words and punctuation marks."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def middle_of(chunk: RetrievedChunk) -> str:
    """60 characters from the middle of a chunk (chunks overlap at their ends)."""
    return chunk.text[len(chunk.text) // 2:][:60]


def budgeted(engine: ChatEngine, tokens: int) -> ChatEngine:
    """``engine`` with the context budget the app gives the in-process model."""
    engine.context_budget = ContextBudget(tokens, count_tokens)
    return engine


def test_answer_streams_after_its_sources_from_the_right_file(make_app, kb_data_dir) -> None:  # type: ignore[no-untyped-def]
    llm = ScriptedLLM([REPLY])
    events = list(make_app(kb_data_dir).chat_engine(llm).stream_answer(QUESTION))
    assert isinstance(events[0], SourcesEvent)
    assert events[0].sources[0].chunk.source == "vector-search-handbook.pdf"
    assert events[0].sources[0].chunk.page is not None
    tokens = [e.text for e in events if isinstance(e, TokenEvent)]
    assert len(tokens) > 1 and "".join(tokens).strip() == REPLY  # streamed, not one block
    answer = events[-1].answer if isinstance(events[-1], DoneEvent) else None
    assert answer is not None and answer.text == REPLY and answer.backend == llm.name
    assert answer.cited_sources()[0].chunk.source == "vector-search-handbook.pdf"
    # the model read the numbered passages, the handbook's first
    assert "[1] (vector-search-handbook.pdf, page" in llm.calls[0].prompt


def test_unrelated_question_is_refused_without_calling_the_llm(  # type: ignore[no-untyped-def]
    make_app, kb_data_dir
) -> None:
    llm = ScriptedLLM([])  # any call fails the test
    app = make_app(kb_data_dir, min_score=0.3)
    answer = app.chat_engine(llm).ask("What is the recipe for a Sachertorte with apricot jam?")
    assert answer.refused and not answer.sources and llm.calls == []


def test_model_is_given_the_best_passages_that_fit_its_budget(make_app, kb_data_dir) -> None:  # type: ignore[no-untyped-def]
    """A CPU model reads the whole prompt before its first token, so RAG_LOCAL_CONTEXT_TOKENS
    bounds the wait: the best chunks while they fit (then merged with their neighbours); the
    chunks past the budget are counted, and the answer says so."""
    question = "How does HNSW trade recall for speed, and what do M and ef_construction do?"
    ranked = make_app(kb_data_dir, merge_neighbours=False).chat_engine(ScriptedLLM([])) \
        .retrieve(question, SearchOptions(k=6)).hits
    assert len(ranked) == 6

    def tokens(chunks: list[RetrievedChunk]) -> int:
        return sum(count_tokens(format_context([Source(1, c)])) for c in chunks)

    budget = 450
    llm = ScriptedLLM([REPLY])
    engine = budgeted(make_app(kb_data_dir).chat_engine(llm), budget)
    answer = engine.ask(question, options=SearchOptions(k=6))
    kept = 6 - answer.left_out
    assert 1 <= kept < 6
    assert tokens(ranked[:kept]) <= budget or kept == 1
    assert tokens(ranked[: kept + 1]) > budget  # no room for the next one

    def given(chunk: RetrievedChunk) -> bool:
        return any(middle_of(chunk) in s.chunk.text for s in answer.sources)

    assert all(given(c) for c in ranked[:kept]) and not any(given(c) for c in ranked[kept:])
    assert all(middle_of(c) in llm.calls[0].prompt for c in ranked[:kept])  # what it read
    assert not any(middle_of(c) in llm.calls[0].prompt for c in ranked[kept:])
    assert answer_from_dict(answer.to_dict()).left_out == answer.left_out  # kept in history

    tiny = budgeted(make_app(kb_data_dir).chat_engine(ScriptedLLM([])), 10)
    first = next(tiny.stream_answer(question, options=SearchOptions(k=6)))
    assert isinstance(first, SourcesEvent) and first.left_out == 5
    assert [s.chunk.text for s in first.sources] == [ranked[0].text]  # the best always given


def test_follow_up_asks_the_llm_to_rewrite_only_when_rewriting_is_on(  # type: ignore[no-untyped-def]
    make_app, kb_data_dir
) -> None:
    """RAG_QUERY_REWRITE=off searches with the previous question prepended (the answer is the
    only call); =on asks the LLM for a standalone question first."""
    history = [Message("user", "What is HNSW?"),
               Message("assistant", "HNSW is a graph index for nearest neighbour search.")]
    follow_up = "And what does its ef_search setting do?"

    off = ScriptedLLM([REPLY])
    answer = make_app(kb_data_dir, query_rewrite="off").chat_engine(off).ask(follow_up, history)
    assert len(off.calls) == 1  # the answer only
    assert answer.search_query == f"What is HNSW? {follow_up}"
    assert answer.sources[0].chunk.source == "vector-search-handbook.pdf"

    on = ScriptedLLM(["What does the ef_search setting of HNSW control?", REPLY])
    answer = make_app(kb_data_dir, query_rewrite="on").chat_engine(on).ask(follow_up, history)
    assert len(on.calls) == 2  # the rewrite, then the answer
    assert follow_up in on.calls[0].prompt and follow_up in on.calls[1].prompt
    assert answer.search_query == "What does the ef_search setting of HNSW control?"
