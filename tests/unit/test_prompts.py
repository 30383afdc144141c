from rag.citations import check_citations, cited_numbers
from rag.prompts import REFUSAL, build_messages, format_context, is_refusal
from rag.types import Answer, Message, RetrievedChunk, Source


def _source(n: int, source: str = "guide.md", page: int | None = None) -> Source:
    chunk = RetrievedChunk(id=f"c{n}", text=f"text of chunk {n}", source=source, page=page,
                           heading="Intro", score=0.5)
    return Source(n=n, chunk=chunk)


def test_context_blocks_are_numbered_with_file_and_page() -> None:
    text = format_context([_source(1, "a.pdf", 3), _source(2, "b.md")])
    assert text.startswith("[1] (a.pdf, page 3 — Intro)\ntext of chunk 1")
    assert "\n\n[2] (b.md — Intro)\ntext of chunk 2" in text


def test_messages_hold_system_history_and_question() -> None:
    history = [Message("user", "earlier"), Message("assistant", "reply")]
    messages = build_messages("What is HNSW?", [_source(1)], history)
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert "[n]" in messages[0].content or "[1]" in messages[0].content
    assert "Question: What is HNSW?" in messages[-1].content
    assert "[1] (guide.md" in messages[-1].content


def test_citations_map_to_given_sources_and_unknown_ones_are_removed() -> None:
    text, removed = check_citations("HNSW is a graph [1, 3]. Also [2].", {1, 2})
    assert removed == {3}
    assert text == "HNSW is a graph [1]. Also [2]."
    assert cited_numbers(text) == {1, 2}


def test_answer_lists_only_cited_sources() -> None:
    answer = Answer(question="q", text="yes [2]", sources=[_source(1), _source(2)])
    assert [s.n for s in answer.cited_sources()] == [2]
    assert answer.to_dict()["sources"][1]["n"] == 2


def test_refusal_is_recognised() -> None:
    assert is_refusal(REFUSAL)
    assert is_refusal("Sorry. " + REFUSAL.lower())
    assert not is_refusal("HNSW builds a layered graph [1].")
