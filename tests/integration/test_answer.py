"""The answer pipeline with the real embedded GGUF model."""

from __future__ import annotations

import pytest

from rag.chat import DoneEvent, SourcesEvent, TokenEvent
from rag.prompts import REFUSAL

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
