"""The chat page, headless with Streamlit's AppTest, against the real index and embedded LLM."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.slow

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chat_page(monkeypatch: pytest.MonkeyPatch, kb_data_dir: Path) -> Iterator[AppTest]:
    import streamlit as st

    monkeypatch.setenv("RAG_DATA_DIR", str(kb_data_dir))
    monkeypatch.setenv("RAG_OLLAMA_HOST", f"http://127.0.0.1:{_closed_port()}")
    st.cache_resource.clear()
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    yield at
    st.cache_resource.clear()


def test_question_gets_an_answer_with_sources(chat_page: AppTest) -> None:
    at = chat_page
    assert "llamacpp:" in " ".join(s.value for s in at.sidebar.success)
    at.chat_input[0].set_value("What does the ef_search parameter of HNSW control?").run()
    assert not at.exception, at.exception
    messages = at.chat_message
    assert [m.name for m in messages] == ["user", "assistant"]
    assistant = messages[1]
    answer_text = " ".join(md.value for md in assistant.markdown).replace("\\", "")
    assert len(answer_text) > 20
    assert "vector-search-handbook.pdf, page" in answer_text  # the source list under the answer


def test_new_chat_clears_the_conversation(chat_page: AppTest) -> None:
    at = chat_page
    at.chat_input[0].set_value("What is UMAP?").run()
    assert len(at.chat_message) == 2
    at.sidebar.button(key="new_chat").click().run()
    assert len(at.chat_message) == 0
