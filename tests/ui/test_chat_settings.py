"""The chat page's answer settings reach the engine: the source filter and the retrieval mode
decide which passages are searched and shown (AppTest, real index; no Ollama, so the answer is
quoted from the documents)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.slow

OpenApp = Callable[..., AppTest]
QUESTION = "What does the ef_search parameter of HNSW control?"
# answered by the user guide: with the filter below, a question only the handbook answers is
# refused, and a refusal lists no passages
GUIDE_QUESTION = "Which command retrieves the relevant passages without calling a language model?"


def _sources_shown(message: object) -> list[str]:
    """The file names in the numbered source headers under an answer."""
    text = " ".join(md.value for md in message.markdown).replace("\\", "")  # type: ignore[attr-defined]
    return re.findall(r"-badge\[\d+\] \*\*(.+?)\*\*", text)


def test_source_filter_and_retrieval_mode_decide_the_sources(
    open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_app()
    assert at.sidebar.selectbox(key="model").value == "extract"
    assert at.sidebar.selectbox(key="retrieval_mode").value == "hybrid"  # RAG_RETRIEVAL_MODE
    at.sidebar.multiselect(key="source_filter").set_value(["user-guide.md", "rag-overview.md"])
    at.sidebar.selectbox(key="retrieval_mode").set_value("lexical")
    at.sidebar.slider(key="top_k").set_value(3).run()
    at.chat_input[0].set_value(GUIDE_QUESTION).run()
    assert not at.exception, at.exception
    shown = _sources_shown(at.chat_message[1])
    assert 0 < len(shown) <= 3
    assert set(shown) <= {"user-guide.md", "rag-overview.md"}

    # Without the filter the same question finds the handbook that answers it.
    at.sidebar.multiselect(key="source_filter").set_value([])
    at.sidebar.button(key="new_chat").click().run()
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception, at.exception
    assert _sources_shown(at.chat_message[1])[0] == "vector-search-handbook.pdf"
