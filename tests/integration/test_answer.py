"""The answer pipeline with the real embedded GGUF model."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from rag.chat import DoneEvent, SourcesEvent, TokenEvent
from rag.conversations import answer_from_dict
from rag.prompts import REFUSAL, format_context
from rag.types import Message, RetrievedChunk, Source

pytestmark = pytest.mark.slow


def test_embedded_llm_answers_with_a_source_from_the_right_file(  # type: ignore[no-untyped-def]
    make_app, kb_data_dir, llamacpp_llm
) -> None:
    app = make_app(kb_data_dir)
    engine = app.chat_engine(llamacpp_llm)
    events = list(engine.stream_answer("What does the ef_search parameter of HNSW control?"))
    assert isinstance(events[0], SourcesEvent)
    tokens = [e.text for e in events if isinstance(e, TokenEvent)]
    assert len(tokens) > 1  # streamed, not one block
    answer = events[-1].answer if isinstance(events[-1], DoneEvent) else None
    assert answer is not None and answer.text.strip()
    assert answer.sources[0].chunk.source == "vector-search-handbook.pdf"
    assert answer.sources[0].chunk.page is not None
    # the bundled Q4_1 file, re-encoded once for this CPU (prompts read about twice as fast)
    assert answer.backend in ("llamacpp:SmolLM2-135M-Instruct.BF16.gguf",
                              "llamacpp:SmolLM2-135M-Instruct.Q8_0.gguf")


def test_unrelated_question_is_refused_without_calling_the_llm(  # type: ignore[no-untyped-def]
    make_app, kb_data_dir
) -> None:
    class NoLLM:
        name = "none"

        def stream(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise AssertionError("the LLM must not be asked when nothing relevant is retrieved")

    app = make_app(kb_data_dir, min_score=0.3)
    answer = app.chat_engine(NoLLM()).ask("What is the recipe for a Sachertorte with apricot jam?")
    assert answer.refused and answer.text == REFUSAL and not answer.sources


def test_in_process_model_is_given_the_best_passages_that_fit_its_budget(  # type: ignore[no-untyped-def]
    make_app, kb_data_dir, llamacpp_llm
) -> None:
    """It reads the whole prompt before its first token, so RAG_LOCAL_CONTEXT_TOKENS bounds the
    wait: the best chunks while they fit (then merged with their neighbours); the chunks past
    the budget are counted, and the answer says so."""
    question = "How does HNSW trade recall for speed, and what do M and ef_construction do?"
    ranked = make_app(kb_data_dir, merge_neighbours=False).chat_engine(llamacpp_llm) \
        .retrieve(question, 6).hits
    assert len(ranked) == 6

    def tokens(chunks: list[RetrievedChunk]) -> int:
        return sum(llamacpp_llm.count_tokens(format_context([Source(1, c)])) for c in chunks)

    budget = 450
    limited = make_app(kb_data_dir, local_context_tokens=budget).chat_engine(llamacpp_llm)
    answer = limited.ask(question, k=6)
    kept = 6 - answer.left_out
    assert 1 <= kept < 6
    assert tokens(ranked[:kept]) <= budget or kept == 1
    assert tokens(ranked[: kept + 1]) > budget  # no room for the next one

    def given(chunk: RetrievedChunk) -> bool:  # its middle (chunks overlap at their ends)
        middle = chunk.text[len(chunk.text) // 2:][:60]
        return any(middle in s.chunk.text for s in answer.sources)

    assert all(given(c) for c in ranked[:kept]) and not any(given(c) for c in ranked[kept:])
    assert answer.text.strip()
    assert answer_from_dict(answer.to_dict()).left_out == answer.left_out  # kept in history

    tiny = make_app(kb_data_dir, local_context_tokens=10).chat_engine(llamacpp_llm)
    first = next(tiny.stream_answer(question, k=6))
    assert isinstance(first, SourcesEvent) and first.left_out == 5
    assert [s.chunk.text for s in first.sources] == [ranked[0].text]  # the best always given

    every = next(make_app(kb_data_dir, local_context_tokens=0).chat_engine(llamacpp_llm)
                 .stream_answer(question, k=6))
    assert isinstance(every, SourcesEvent) and not every.left_out  # 0: no budget


def test_follow_up_to_the_in_process_model_is_searched_without_asking_it_first(  # type: ignore[no-untyped-def]
    make_app, kb_data_dir, llamacpp_llm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RAG_QUERY_REWRITE=auto: its rewrites were unusable and delayed the first token, so the
    follow-up is searched with the heuristic; =on still asks it."""
    prompts: list[Sequence[Message]] = []
    real = llamacpp_llm.stream

    def counting(messages: Sequence[Message], **kwargs: Any) -> Iterator[str]:
        prompts.append(messages)
        yield from real(messages, **kwargs)

    monkeypatch.setattr(llamacpp_llm, "stream", counting)
    history = [Message("user", "What is HNSW?"),
               Message("assistant", "HNSW is a graph index for nearest neighbour search.")]
    follow_up = "And what does its ef_search setting do?"

    answer = make_app(kb_data_dir).chat_engine(llamacpp_llm).ask(follow_up, history)
    assert len(prompts) == 1  # the answer only
    assert answer.search_query == f"What is HNSW? {follow_up}"
    assert answer.sources[0].chunk.source == "vector-search-handbook.pdf"

    prompts.clear()
    make_app(kb_data_dir, query_rewrite="on").chat_engine(llamacpp_llm).ask(follow_up, history)
    assert len(prompts) == 2 and "Standalone question:" in prompts[0][-1].content
