"""Conversations in the chat's sidebar: search (titles and messages), rename, export as Markdown
with each answer's sources, delete after a confirmation. The store (rag/conversations.py)
directly, the panel headless (AppTest), then the same in Chromium (``conversations.png``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from rag.conversations import ConversationStore
from rag.types import Answer, RetrievedChunk, Source
from tests.ui.browser import chat_page
from tests.ui.test_browser import (  # noqa: F401  (serve: a fixture)
    SCREENSHOTS,
    SHORT_QUESTION,
    Serve,
    _screenshot,
    serve,
)

OpenApp = Callable[..., AppTest]


def _answer(question: str, text: str, *sources: tuple[str, int | None, str]) -> Answer:
    return Answer(
        question=question, text=text, backend="extract", mode="extract",
        sources=[Source(n=i + 1, chunk=RetrievedChunk(
            id=f"c{i}", text=f"passage {i}", source=src, page=page, heading=heading, score=0.5))
            for i, (src, page, heading) in enumerate(sources)],
    )


HNSW = "How is ef_search tuned?"
HNSW_ANSWER = "ef_search is the size of the candidate list [1]. Larger is slower [2]."
BM25 = "How does BM25 rank documents?"
BM25_ANSWER = "By term frequency and inverse document frequency [1]."


def _fill(store: ConversationStore) -> tuple[str, str]:
    """Two conversations: HNSW's (two sources cited, one not), then BM25's (most recent)."""
    hnsw = store.create(HNSW)
    store.add_turn(hnsw, "user", HNSW)
    store.add_turn(hnsw, "assistant", HNSW_ANSWER, _answer(
        HNSW, HNSW_ANSWER, ("vector-search-handbook.pdf", 2, "HNSW > Parameters"),
        ("user-guide.md", None, "Tuning"), ("faq.txt", None, "")))
    bm25 = store.create(BM25)
    store.add_turn(bm25, "user", BM25)
    store.add_turn(bm25, "assistant", BM25_ANSWER, _answer(
        BM25, BM25_ANSWER, ("search-notes.md", None, "Lexical search")))
    return hnsw, bm25


# --- the store -----------------------------------------------------------------------------------


def test_search_finds_titles_and_messages_ignoring_case_and_wildcards(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    _fill(store)

    def titles(text: str) -> list[str]:
        return [c.title for c in store.search(text)]

    assert titles("") == [BM25, HNSW]  # everything, most recent first
    assert titles("bm25") == [BM25]  # the title, whatever the case
    assert titles("CANDIDATE LIST") == [HNSW]  # a word of an answer only
    assert titles("frequency") == [BM25]
    assert titles("%") == [] and titles("s_arch") == []  # typed characters, not wildcards
    assert titles("nothing like this") == []
    assert [c.turns for c in store.search("ef_search")] == [2]


def test_rename_refuses_a_blank_title_and_keeps_the_old_one(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    hnsw, _ = _fill(store)
    assert store.rename(hnsw, "  HNSW   tuning\n notes ")
    assert store.get(hnsw).title == "HNSW tuning notes"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="cannot be empty"):
        store.rename(hnsw, "   ")
    assert store.get(hnsw).title == "HNSW tuning notes"  # type: ignore[union-attr]
    assert not store.rename("gone", "x")


def test_export_lists_each_answers_cited_sources_with_file_and_page(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    hnsw, _ = _fill(store)
    text = store.export_markdown(hnsw)
    assert text is not None and text.startswith(f"# {HNSW}\n")
    assert f"## Question\n\n{HNSW}\n" in text
    assert f"### Answer\n\n{HNSW_ANSWER}\n" in text
    assert ("**Sources:**\n\n- [1] vector-search-handbook.pdf, page 2 (HNSW > Parameters)\n"
            "- [2] user-guide.md (Tuning)\n") in text
    assert "faq.txt" not in text  # given to the model, not cited
    assert "stopped" not in text
    assert store.export_markdown("gone") is None
    store.add_turn(hnsw, "user", "And its default?")
    store.add_turn(hnsw, "assistant", "The default is", stopped=True)  # Stop pressed
    assert store.export_markdown(hnsw).endswith(  # type: ignore[union-attr]
        "### Answer\n\nThe default is\n\n_(stopped before the end)_\n")


# --- the panel, headless -------------------------------------------------------------------------


def _titles(at: AppTest) -> list[str]:
    return [b.label.replace("\\", "") for b in at.sidebar.button
            if (b.key or "").startswith("open_")]


@pytest.mark.slow
def test_panel_searches_renames_and_deletes_only_after_confirming(
    open_app: OpenApp, data_dir: Path
) -> None:
    store = ConversationStore(data_dir / "conversations.sqlite3")
    hnsw, bm25 = _fill(store)
    store.close()
    at = open_app()
    assert _titles(at) == [BM25, HNSW]

    at.sidebar.text_input(key="conversation_search").input("candidate list").run()
    assert _titles(at) == [HNSW]  # found by a word of its answer
    at.sidebar.text_input(key="conversation_search").input("penguins").run()
    assert _titles(at) == []
    assert "No conversation mentions “penguins”." in " ".join(
        c.value for c in at.sidebar.caption).replace("\\", "")
    at.sidebar.text_input(key="conversation_search").input("").run()

    at.sidebar.text_input(key=f"rename_{hnsw}").input("   ")  # in a form: sent by its button
    at.sidebar.button(key=f"FormSubmitter:rename_form_{hnsw}-Rename").click().run()
    assert "A conversation's title cannot be empty" in " ".join(e.value for e in at.sidebar.error)
    assert _titles(at) == [BM25, HNSW]
    at.sidebar.text_input(key=f"rename_{hnsw}").input("HNSW tuning")
    at.sidebar.button(key=f"FormSubmitter:rename_form_{hnsw}-Rename").click().run()
    assert _titles(at) == [BM25, "HNSW tuning"]

    at.sidebar.button(key=f"delete_{bm25}").click().run()
    assert not at.exception, at.exception
    assert _titles(at) == ["HNSW tuning"]  # its row asks instead
    asking = " ".join(m.value for m in at.sidebar.markdown).replace("\\", "")
    assert f"Delete **{BM25}** and its 2 messages? This cannot be undone." in asking
    at.sidebar.button(key=f"cancel_delete_{bm25}").click().run()
    assert _titles(at) == [BM25, "HNSW tuning"]  # nothing deleted

    at.sidebar.button(key=f"delete_{bm25}").click().run()
    at.sidebar.button(key=f"confirm_delete_{bm25}").click().run()
    assert not at.exception, at.exception
    assert _titles(at) == ["HNSW tuning"]
    assert [c.title for c in ConversationStore(data_dir / "conversations.sqlite3").recent()] \
        == ["HNSW tuning"]


# --- in Chromium ---------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.slow
def test_conversations_in_the_browser(serve: Serve, data_dir: Path) -> None:  # noqa: F811
    """Search, rename, export (the file and page of each cited source), delete after the
    confirmation; a question asked here is listed too. Saves ``conversations.png``."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect

    store = ConversationStore(data_dir / "conversations.sqlite3")
    hnsw, bm25 = _fill(store)
    store.close()
    url = serve()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with chat_page(url) as page:
        chat_input = page.get_by_test_id("stChatInputTextArea")

        def row(cid: str) -> Any:
            return page.locator(f".st-key-conversation_row_{cid}")

        def menu(cid: str) -> Any:
            """The row's menu, opened."""
            body = page.get_by_test_id("stPopoverBody").filter(visible=True)
            if not body.count():
                row(cid).get_by_test_id("stPopoverButton").filter(visible=True).click()
            expect(body).to_have_count(1)
            return body

        expect(row(hnsw)).to_contain_text(HNSW)
        expect(row(bm25)).to_contain_text(BM25)
        chat_input.fill(SHORT_QUESTION)  # a real answer for the screenshot
        chat_input.press("Enter")
        expect(page.get_by_test_id("stChatMessage").nth(1).get_by_text(
            re.compile(r"Sources \(\d+\)"))).to_be_visible()
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_role("button", name=SHORT_QUESTION)).to_be_visible()
        expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()

        search = sidebar.get_by_placeholder("Search titles and messages")
        search.fill("frequency")  # a word of BM25's answer, not of its title
        search.press("Enter")
        expect(row(hnsw)).to_have_count(0)
        expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()
        expect(row(bm25)).to_be_visible()
        expect(sidebar.get_by_role("button", name=SHORT_QUESTION)).to_have_count(0)
        search.fill("")
        search.press("Enter")
        expect(row(hnsw)).to_be_visible()
        expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()  # the rerun is over

        body = menu(hnsw)
        body.get_by_label("Title").fill("HNSW tuning")
        body.get_by_role("button", name="Rename").click()
        expect(row(hnsw).get_by_role("button", name="HNSW tuning")).to_be_visible()
        expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()

        # The export's data is made when the button is clicked (a deferred download). Once in
        # a clean-clone CI run the click right after the rename's rerun started no download
        # (the button of the run before?): a second click, as a user would, after a pause.
        download = None
        for attempt, wait_ms in enumerate((30_000, 60_000)):
            body = menu(hnsw)
            try:
                with page.expect_download(timeout=wait_ms) as started:
                    body.get_by_role("button", name="Export as Markdown").click()
                download = started.value
                break
            except PlaywrightTimeoutError:
                if attempt:
                    raise
        assert download is not None
        assert download.suggested_filename == "hnsw-tuning.md"
        exported = Path(download.path()).read_text(encoding="utf-8")
        assert exported.startswith("# HNSW tuning\n")
        assert HNSW in exported and HNSW_ANSWER in exported
        assert "- [1] vector-search-handbook.pdf, page 2 (HNSW > Parameters)" in exported
        assert "- [2] user-guide.md (Tuning)" in exported
        page.mouse.move(0, 0)  # no tooltip over the menu
        _screenshot(page, "conversations", top=page.get_by_test_id("stChatMessage").first)

        body.get_by_role("button", name="Delete…").click()
        confirm = page.locator(f".st-key-confirm_{hnsw}")
        expect(confirm).to_contain_text("Delete HNSW tuning and its 2 messages? This cannot "
                                        "be undone.")
        assert ConversationStore(data_dir / "conversations.sqlite3").get(hnsw) is not None
        confirm.get_by_role("button", name="Delete").click()
        expect(confirm).to_have_count(0)
        expect(row(hnsw)).to_have_count(0)
        expect(row(bm25)).to_be_visible()
        assert ConversationStore(data_dir / "conversations.sqlite3").get(hnsw) is None
