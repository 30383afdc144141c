"""The answer pipeline with the real embedded GGUF model."""

from __future__ import annotations

import pytest

from rag.chat import DoneEvent, SourcesEvent, TokenEvent
from rag.conversations import answer_from_dict
from rag.prompts import REFUSAL, format_context

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
    wait; the passages past the budget are counted, and the answer says so."""
    question = "How does HNSW trade recall for speed, and what do M and ef_construction do?"
    unlimited = make_app(kb_data_dir, local_context_tokens=0).chat_engine(llamacpp_llm)
    every = next(unlimited.stream_answer(question, k=6))
    assert isinstance(every, SourcesEvent) and len(every.sources) >= 3 and not every.left_out

    budget = 450
    limited = make_app(kb_data_dir, local_context_tokens=budget).chat_engine(llamacpp_llm)
    answer = limited.ask(question, k=6)
    given = answer.sources
    assert 1 <= len(given) < len(every.sources)
    assert given == every.sources[: len(given)]  # the best ones, in rank order
    assert llamacpp_llm.count_tokens(format_context(given)) <= budget or len(given) == 1
    assert llamacpp_llm.count_tokens(format_context(every.sources[: len(given) + 1])) > budget
    assert answer.left_out == len(every.sources) - len(given)
    assert answer.text.strip()
    assert answer_from_dict(answer.to_dict()).left_out == answer.left_out  # kept in history

    tiny = make_app(kb_data_dir, local_context_tokens=10).chat_engine(llamacpp_llm)
    first = next(tiny.stream_answer(question, k=6))
    assert isinstance(first, SourcesEvent)
    assert first.sources == every.sources[:1]  # the best passage is always given
