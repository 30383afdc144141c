"""The chat page headless (AppTest) against the real index: what issue 14 found wrong with it.
Streaming, Stop and the buttons are in test_chat_browser.py (a real browser)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from application.explorer import neighbours_in_index
from application.factory import App
from rag.types import Answer, RetrievedChunk, Source
from tests.conftest import make_settings
from ui.render import streaming_markdown

OpenApp = Callable[..., AppTest]
QUESTION = "What does the ef_search parameter of HNSW control?"


def _titles(at: AppTest) -> list[str]:
    return [b.label.replace("\\", "") for b in at.sidebar.button
            if (b.key or "").startswith("open_")]


def _markdown(block: object) -> str:
    return " ".join(md.value for md in block.markdown)  # type: ignore[attr-defined]


def _captions(block: object) -> str:
    return " ".join(c.value for c in block.caption).replace("\\", "")  # type: ignore[attr-defined]


def test_a_citation_that_has_half_arrived_is_not_shown_while_streaming() -> None:
    assert streaming_markdown("HNSW builds a graph [", [1]) == "HNSW builds a graph "
    assert streaming_markdown("HNSW builds a graph [1", [1]) == "HNSW builds a graph "
    assert streaming_markdown("a graph [1]", [1]).endswith(":blue-badge[1]")


@pytest.mark.slow
def test_two_conversations_asking_the_same_are_listed_apart(open_app: OpenApp) -> None:
    at = open_app()
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception, at.exception
    at.sidebar.button(key="new_chat").click().run()
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception, at.exception
    assert _titles(at) == [f"{QUESTION} (2)", QUESTION]


@pytest.mark.slow
def test_source_scores_are_the_similarity_the_explorer_shows(
    open_app: OpenApp, data_dir: Path
) -> None:
    at = open_app()
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception, at.exception
    cards = _markdown(at.chat_message[1])
    shown = [float(s) for s in re.findall(r"similarity (\d\.\d\d)", cards)]
    assert shown and "score 1.00" not in cards and "score 0.99" not in cards
    # The explorer's "nearest passages" for the same query, by the index's cosine
    app = App(make_settings(data_dir))
    [turn] = [t for t in app.conversations.turns(app.conversations.recent()[0].id)
              if t.answer is not None]
    assert turn.answer is not None
    answer = turn.answer
    nearest = {h.id: h.score for h in neighbours_in_index(
        app.store, app.embedder.embed_query(answer.search_query), 30)}
    first = answer.sources[0].chunk.id
    assert first in nearest
    assert shown[0] == pytest.approx(nearest[first], abs=0.006)
    assert shown[0] < 0.9  # a cosine, not the fused score divided by the best


@pytest.mark.slow
def test_a_stored_answer_reads_as_plain_text_and_says_what_is_gone(
    open_app: OpenApp, data_dir: Path, tmp_path: Path
) -> None:
    """An answer kept from earlier: its model wrote a heading, one source is a heading alone,
    the cited file was deleted since, and passages were left out for the in-process model."""
    gone = tmp_path / "deleted-folder"  # the folder the file was ingested from, gone
    passage = ("## Supported formats\n\nThe **word2vec** reader takes `PDF` and Markdown files "
               "([details](http://example.org/formats)).")
    sources = [
        Source(1, RetrievedChunk("c1", passage, "formats.md", None, "Guide > Formats", 0.99,
                                 root=str(gone))),
        Source(2, RetrievedChunk("c2", "## Supported formats\n", "formats.md", None,
                                 "Guide > Formats", 0.5, root=str(gone))),
    ]
    answer = Answer(question="Which formats are read?",
                    text="## Formats\nPDF and Markdown files are read [1].", sources=sources,
                    search_query="Which formats are read?", backend="ollama:llama3.2",
                    left_out=2, mode="generate")
    store = App(make_settings(data_dir)).conversations
    cid = store.create(answer.question)
    store.add_turn(cid, "user", answer.question)
    store.add_turn(cid, "assistant", answer.text, answer)

    at = open_app()
    at.session_state["conversation_id"] = cid
    at.run()
    assert not at.exception, at.exception
    assistant = at.chat_message[1]
    # The model's heading is bold text, not a page-sized heading.
    text = assistant.markdown[0].value
    assert text.startswith("**Formats**") and "#" not in text.split("(#source")[0]
    # The passage is plain text: no Markdown marks, no link syntax.
    [expander] = assistant.expander
    card = _markdown(expander).replace("\\", "")
    assert "The word2vec reader takes PDF and Markdown files (details)." in card
    assert "##" not in card and "**word2vec" not in card and "](http" not in card
    # The heading-only passage is not listed as a source of its own.
    assert expander.label == "Sources (1)"
    assert "only a heading" in _captions(expander)
    # The deleted file is said to be gone (no download, no page).
    assert "formats.md: file deleted since" in _captions(expander)
    assert not assistant.get("download_button")
    # The note on passages left out for the in-process model is inside the sources.
    assert "more passages were found" in _captions(expander)
    outside = [c.value for c in assistant.caption if c not in expander.caption]
    assert not any("more passages were found" in c for c in outside)


@pytest.mark.slow
def test_a_question_whose_answer_fails_is_kept_with_why(
    open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_LLM_BACKEND", "ollama")  # and nothing answers at RAG_OLLAMA_HOST
    at = open_app()
    at.chat_input[0].set_value("What is UMAP?").run()
    assert not at.exception, at.exception
    assert _titles(at) == ["What is UMAP?"]  # stored: it can be opened and asked again
    [user] = at.chat_message
    assert "What is UMAP?" in _markdown(user)
    assert any("ollama serve" in e.value for e in user.error)
    assert any((b.key or "").startswith("regenerate_") for b in user.button)
