"""The chat page, headless with Streamlit's AppTest, against the real index and embedded LLM."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rag.config import Settings
from tests.conftest import KNOWLEDGE_BASE, closed_port, make_settings
from tests.ui.conftest import APP

pytestmark = pytest.mark.slow

OpenApp = Callable[..., AppTest]


def _text(block: object) -> str:
    parts = [md.value for md in block.markdown]  # type: ignore[attr-defined]
    parts += [c.value for c in block.caption]  # type: ignore[attr-defined]
    return " ".join(parts).replace("\\", "")


def _sidebar_titles(at: AppTest) -> list[str]:
    return [b.label.replace("\\", "") for b in at.sidebar.button
            if (b.key or "").startswith("open_")]


def test_question_gets_a_cited_answer_kept_as_a_conversation(open_app: OpenApp) -> None:
    at = open_app()
    assert "llamacpp:" in _text(at.sidebar)  # Ollama does not answer: the embedded model does
    assert _sidebar_titles(at) == []

    question = "What does the ef_search parameter of HNSW control?"
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assistant = at.chat_message[1]
    shown = _text(assistant)
    assert "vector-search-handbook.pdf" in shown  # the numbered sources under the answer
    assert ":blue-badge[1]" in " ".join(md.value for md in assistant.markdown)  # source [1]
    assert ":orange-background[" in " ".join(md.value for md in assistant.markdown)  # highlight
    assert _sidebar_titles(at) == [question]  # kept, listed to reopen

    # A cited PDF page can be shown as it looks in the file, on demand.
    assert not assistant.get("image")
    assistant.toggle[0].set_value(True).run()  # "Show the page" of the first PDF source
    assert not at.exception, at.exception
    [image] = at.chat_message[1].get("image")
    caption = image.proto.imgs[0].caption  # type: ignore[attr-defined]
    assert caption.startswith("vector-search-handbook.pdf, page ")
    assert str(KNOWLEDGE_BASE.resolve() / "vector-search-handbook.pdf") in caption

    # A short follow-up is searched together with the conversation; the page shows the query.
    at.chat_input[0].set_value("And its default value?").run()
    assert not at.exception, at.exception
    assert len(at.chat_message) == 4
    assert "Searched for:" in _text(at.chat_message[3])
    assert "ef_search" in _text(at.chat_message[3]).split("Searched for:")[1]

    at.sidebar.button(key="new_chat").click().run()
    assert len(at.chat_message) == 0
    assert _sidebar_titles(at) == [question]

    # Conversations survive the process: a fresh app (new session) lists and reopens it.
    fresh = AppTest.from_file(str(APP), default_timeout=300)
    fresh.run()
    [open_key] = [b.key or "" for b in fresh.sidebar.button if (b.key or "").startswith("open_")]
    fresh.sidebar.button(key=open_key).click().run()
    assert [m.name for m in fresh.chat_message] == ["user", "assistant"] * 2
    assert "vector-search-handbook.pdf" in _text(fresh.chat_message[1])

    fresh.sidebar.button(key=open_key.replace("open_", "delete_")).click().run()
    assert _sidebar_titles(fresh) == []
    assert len(fresh.chat_message) == 0


def test_passages_left_out_for_the_in_process_model_are_counted_under_the_answer(
    open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_LOCAL_CONTEXT_TOKENS", "10")  # only the best passage fits
    monkeypatch.setenv("RAG_MAX_ANSWER_TOKENS", "32")
    at = open_app()
    at.chat_input[0].set_value("What does the ef_search parameter of HNSW control?").run()
    assert not at.exception, at.exception
    assistant = at.chat_message[1]
    assert "more passages were found but not given to the in-process model" in _text(assistant)
    assert next(e.label for e in assistant.expander).endswith("(1)")  # "Sources (1)"


def test_llm_unreachable_says_how_to_fix_and_the_page_works(
    open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_LLM_BACKEND", "ollama")
    at = open_app()
    assert any("ollama serve" in e.value for e in at.sidebar.error)
    at.chat_input[0].set_value("What is UMAP?").run()
    assert not at.exception, at.exception
    assert any("ollama serve" in e.value for e in at.main.error)  # the answer's place says why
    assert at.chat_input  # and one can ask again
    at.switch_page("pages/library.py").run()
    assert not at.exception, at.exception
    assert "vector-search-handbook.pdf" in at.dataframe[0].value["Document"].tolist()


def test_chroma_unreachable_says_how_to_fix_and_the_rest_works(
    open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("RAG_CHROMA_PORT", str(closed_port()))
    at = open_app()
    assert any("chroma run" in e.value for e in at.sidebar.error)
    at.chat_input[0].set_value("What is UMAP?").run()
    assert not at.exception, at.exception
    assert any("chroma run" in e.value for e in at.main.error)
    at.switch_page("pages/status.py").run()
    assert not at.exception, at.exception
    assert any("chroma run" in e.value for e in at.error)
    at.switch_page("pages/library.py").run()  # the manifest still lists the documents
    assert not at.exception, at.exception
    assert len(at.dataframe[0].value) == len(list(KNOWLEDGE_BASE.iterdir()))


def test_status_page_shows_backend_index_and_versions(open_app: OpenApp, data_dir: Path) -> None:
    at = open_app("pages/status.py")
    assert "llamacpp:SmolLM2" in at.success[0].value.replace("\\", "")
    assert any("ollama serve" in w.value for w in at.warning)  # why not Ollama, and the fix
    from rag.factory import App

    chunks = App(make_settings(data_dir)).store.count()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Documents"] == str(len(list(KNOWLEDGE_BASE.iterdir())))
    assert metrics["Chunks"] == str(chunks) and chunks > 0
    assert metrics["Chroma"] == "embedded"
    assert str(data_dir.resolve()) in _text(at.main)
    settings = at.dataframe[0].value.set_index("Variable")
    assert settings.loc["RAG_LOCAL_CONTEXT_TOKENS", "Value"] == "700"  # a default, as is
    assert settings.loc["RAG_DATA_DIR", "Value"] == f"{data_dir}  (set)"  # from the environment
    assert "Ollama server URL" in settings.loc["RAG_OLLAMA_HOST", "What"]
    assert len(settings) == len(Settings.model_fields)
    versions = at.dataframe[1].value
    assert {"python", "chromadb", "sentence-transformers", "streamlit", "llama-cpp-python"} <= set(
        versions["Component"]
    )
