"""Answers you can check: evidence sentences, the extractive answer, generated answers checked
against the passages they cite, and refusals that hold in every mode. Real Chroma, the real
embedder; a scripted LLM where a model writes (the wording of a 135M model is not testable)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.citations import cited_numbers
from rag.evidence import EXTRACT_LABEL, EvidenceFinder, split_sentences
from rag.prompts import REFUSAL
from rag.types import RetrievedChunk, Source
from tests.conftest import KNOWLEDGE_BASE
from tests.fakes import ScriptedLLM

pytestmark = pytest.mark.slow

EF_SEARCH = "What does ef_search control?"


def test_extracted_answer_quotes_the_evidence_with_its_citation(make_app, kb_data_dir) -> None:  # type: ignore[no-untyped-def]
    answer = make_app(kb_data_dir).chat_engine(extract=True).ask(EF_SEARCH)
    assert answer.mode == "extract" and not answer.refused
    assert answer.text.startswith(EXTRACT_LABEL)
    cited = answer.cited_sources()
    assert 1 <= len(cited) <= 3
    assert cited[0].chunk.source == "vector-search-handbook.pdf"
    assert "ef_search" in answer.text
    for s in answer.sources:  # offsets point into the passage the UI shows
        for e in s.evidence:
            assert s.chunk.text[e.start:e.end] == e.text
    assert any("ef_search" in e.text for e in cited[0].evidence)
    assert answer.unsupported() == []


def test_follow_up_extracts_from_the_conversation_topic(make_app, kb_data_dir) -> None:  # type: ignore[no-untyped-def]
    from rag.types import Message

    history = [Message("user", "What is HNSW?"), Message("assistant", "A graph index [1].")]
    answer = make_app(kb_data_dir).chat_engine(extract=True).ask("How much memory does it use?",
                                                                  history)
    assert not answer.refused
    assert "HNSW" in answer.search_query
    quoted = answer.text.split("\n\n")[1:]
    assert quoted and all("memory" in q for q in quoted[:1])


def test_generated_sentence_its_citation_does_not_support_is_marked(make_app, kb_data_dir) -> None:  # type: ignore[no-untyped-def]
    app = make_app(kb_data_dir)
    # the scripted model cites the first passage twice: once for what it says, once for a claim
    # made up from nothing in the documents
    def reply(messages) -> str:  # type: ignore[no-untyped-def]
        return ("Raising ef_search increases recall and also latency [1]. "
                "The HNSW index was invented by Napoleon in 1850 to sort cheese [1].")

    answer = app.chat_engine(ScriptedLLM(reply)).ask(EF_SEARCH)
    assert answer.mode == "generate"
    assert answer.unsupported() == [
        "The HNSW index was invented by Napoleon in 1850 to sort cheese [1]."]
    supported = [s for s in answer.sentences if s.supported]
    assert [s.cited for s in supported] == [(1,)]
    # the evidence of source 1 is the passage sentence that supports the claim
    assert any("recall" in e.text for e in answer.sources[0].evidence)


def test_generated_answer_without_any_citation_is_unsupported(make_app, kb_data_dir) -> None:  # type: ignore[no-untyped-def]
    llm = ScriptedLLM(["Raising ef_search increases recall and also latency."])
    answer = make_app(kb_data_dir).chat_engine(llm).ask(EF_SEARCH)
    assert not cited_numbers(answer.text)
    assert answer.unsupported() == ["Raising ef_search increases recall and also latency."]
    assert answer.cited_sources() == []


@pytest.mark.parametrize("mode", ["extract", "generate"])
def test_question_about_a_deleted_file_is_refused(make_app, tmp_path: Path, mode: str) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "kb"
    shutil.copytree(KNOWLEDGE_BASE, folder)
    (folder / "backups.md").write_text(
        "# Backup policy\n\nThe backups of the index server are rotated every 12 hours and "
        "kept for thirty days on the tape library in the basement.\n", encoding="utf-8")
    app = make_app(tmp_path / "data")
    app.pipeline.sync(folder)
    question = "How often are the backups of the index server rotated?"
    llm = ScriptedLLM(["Backups are rotated every 12 hours [1]."])
    engine = app.chat_engine(extract=True) if mode == "extract" else app.chat_engine(llm)

    before = engine.ask(question)
    assert not before.refused and "12 hours" in before.text
    assert before.cited_sources()[0].chunk.source == "backups.md"

    (folder / "backups.md").unlink()
    app.pipeline.sync(folder)
    after = engine.ask(question)
    assert after.refused and after.text == REFUSAL and not after.sources
    if mode == "generate":
        assert len(llm.calls) == 1  # asked before the deletion only: nothing to answer from


def test_sentences_keep_their_offsets_and_skip_headings() -> None:
    text = ("# Title\n\nHNSW is a graph index. It has layers, e.g. three of them.\n"
            "- ef_search sets the candidate list size\n| M | 16 | links |")
    spans = split_sentences(text)
    assert [text[s.start:s.end] for s in spans] == [s.text for s in spans]
    assert [s.text for s in spans] == [
        "HNSW is a graph index.", "It has layers, e.g. three of them.",
        "- ef_search sets the candidate list size", "| M | 16 | links |"]


def test_a_pdf_heading_line_is_not_quoted_as_part_of_the_next_sentence() -> None:
    text = ("the third can be changed at any moment.\nM (max_neighbors in Chroma)\n"
            "M is the maximum number of links each node keeps; on the bottom\n"
            "layer the limit is usually 2 × M.\nef_search\nef_search is the size of the list.")
    assert [s.text for s in split_sentences(text)] == [
        "the third can be changed at any moment.",
        "M is the maximum number of links each node keeps; on the bottom\n"
        "layer the limit is usually 2 × M.",
        "ef_search is the size of the list."]


def _source(n: int, text: str) -> Source:
    return Source(n, RetrievedChunk(f"c{n}", text, f"doc{n}.txt", None, "", 0.5))


HNSW = Source(1, RetrievedChunk(
    "c1", "HNSW is a graph index for nearest neighbour search. Raising ef_search makes a "
    "search look at more candidates, which raises recall and latency.", "hnsw.txt", None, "",
    0.5))
TABLE = _source(2, "| Quarter | Revenue | Operating income | Net income | Diluted EPS |\n" + "\n".join(
    f"| Q{q} 202{y} | ${q * 1000 + y * 37} million | ${q * 310 + y} million | "
    f"${q * 250 + y} million | ${q}.{y}{q} per share |" for y in range(3) for q in range(1, 5)))


def test_a_sentence_scores_the_same_whatever_passages_come_with_it(embedder) -> None:  # type: ignore[no-untyped-def]
    # a passage's sentences are as close to the question whether or not a long table was
    # retrieved beside it (padded with the table's rows in one batch, their int8 vectors moved
    # by up to 0.03 of cosine); the term overlap still weighs terms by the sentences around
    alone = {s.span.text: s.cosine for s in EvidenceFinder(embedder).score(EF_SEARCH, [HNSW])}
    beside = {s.span.text: s.cosine for s in EvidenceFinder(embedder).score(EF_SEARCH,
                                                                            [HNSW, TABLE])
              if s.source == 0}
    assert beside == pytest.approx(alone, abs=1e-5)  # float32 rounding of the dot products


def test_a_second_question_on_the_same_passages_embeds_no_sentence_again(embedder) -> None:  # type: ignore[no-untyped-def]
    finder = EvidenceFinder(embedder)
    first = finder.score(EF_SEARCH, [HNSW, TABLE])
    embedded = embedder.documents_embedded
    again = finder.score("What does ef_search raise?", [HNSW, TABLE])
    assert embedder.documents_embedded == embedded
    assert {s.span.text for s in again} == {s.span.text for s in first}
    fresh = EvidenceFinder(embedder).score("What does ef_search raise?", [HNSW, TABLE])
    assert {s.span.text: s.cosine for s in again} == pytest.approx(
        {s.span.text: s.cosine for s in fresh}, abs=1e-5)
