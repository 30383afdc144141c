"""The chat page, headless with Streamlit's AppTest, against the real index: answers quoted from
the documents (no Ollama: the default), written by a scripted Ollama (the protocol server in
tests/fake_ollama.py) and by the in-process model."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rag.chat import extract_note
from rag.config import Settings
from rag.evidence import EXTRACT_LABEL
from rag.machine import cpu_summary
from tests.conftest import KNOWLEDGE_BASE, closed_port, make_settings
from tests.fake_ollama import FakeOllama
from tests.ui.conftest import APP
from tests.ui.scripted import INVENTED, grounded_then_invented

pytestmark = pytest.mark.slow

OpenApp = Callable[..., AppTest]


def _text(block: object) -> str:
    parts = [md.value for md in block.markdown]  # type: ignore[attr-defined]
    parts += [c.value for c in block.caption]  # type: ignore[attr-defined]
    return " ".join(parts).replace("\\", "")


def _sidebar_titles(at: AppTest) -> list[str]:
    return [b.label.replace("\\", "") for b in at.sidebar.button
            if (b.key or "").startswith("open_")]


def _markdown(block: object) -> str:
    return " ".join(md.value for md in block.markdown)  # type: ignore[attr-defined]


def _highlights(block: object) -> list[str]:
    """The highlighted passages of the source cards, unescaped."""
    return [h.replace("\\", "") for h in re.findall(r":orange-background\[(.+?)\](?= |$)",
                                                      _markdown(block))]


def test_question_gets_a_quoted_answer_with_evidence_kept_as_a_conversation(
    open_app: OpenApp,
) -> None:
    at = open_app()
    # No Ollama and only the bundled model: answers are quoted from the documents.
    assert "Quoted from the documents (extract)" in _text(at.sidebar)
    assert "llamacpp" not in _text(at.sidebar).split("Conversations")[0]
    assert at.sidebar.selectbox(key="model").value == "extract"
    assert _sidebar_titles(at) == []

    question = "What does the ef_search parameter of HNSW control?"
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assistant = at.chat_message[1]
    shown = _text(assistant)
    assert shown.startswith(EXTRACT_LABEL)  # the answer says it is quoted
    assert "Mode: extract" in shown and extract_note().replace("`", "") in shown.replace("`", "")
    assert "more passages were found" not in shown  # no model, no context budget
    assert "vector-search-handbook.pdf" in shown  # the numbered sources under the answer
    assert ":blue-badge[1]" in _markdown(assistant)  # source [1]
    # The best quoted sentence is evidence, highlighted in its source card.
    quoted = re.findall(r"“(.+?)”", assistant.markdown[0].value.replace("\\", ""))
    highlighted = _highlights(assistant)
    assert quoted and highlighted, (quoted, highlighted)
    assert any(quoted[0][-40:] in h for h in highlighted), (quoted, highlighted)
    assert "ef_search" in " ".join(highlighted)
    assert _sidebar_titles(at) == [question]  # kept, listed to reopen

    # A cited PDF page can be shown as it looks in the file, on demand.
    assert not assistant.get("image")
    assistant.toggle[0].set_value(True).run()  # "Show the page" of the first PDF source
    assert not at.exception, at.exception
    [image] = at.chat_message[1].get("image")
    caption = image.proto.imgs[0].caption  # type: ignore[attr-defined]
    assert caption.startswith("vector-search-handbook.pdf, page ")
    assert str(KNOWLEDGE_BASE.resolve() / "vector-search-handbook.pdf") in caption
    assert caption.endswith("boxed: the evidence")  # the highlighted sentences, on the page

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
    assert _highlights(fresh.chat_message[1]) == highlighted  # the evidence was kept too
    assert "Mode: extract" in _text(fresh.chat_message[1])

    fresh.sidebar.button(key=open_key.replace("open_", "delete_")).click().run()
    fresh.sidebar.button(key=open_key.replace("open_", "confirm_delete_")).click().run()
    assert _sidebar_titles(fresh) == []
    assert len(fresh.chat_message) == 0


def test_passages_left_out_for_the_in_process_model_are_counted_under_the_answer(
    open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_ANSWER_MODE", "generate")  # the bundled model writes the answer
    monkeypatch.setenv("RAG_LOCAL_CONTEXT_TOKENS", "10")  # only the best passage fits
    monkeypatch.setenv("RAG_MAX_ANSWER_TOKENS", "32")
    at = open_app()
    assert at.sidebar.selectbox(key="model").value.startswith("llamacpp:")
    at.chat_input[0].set_value("What does the ef_search parameter of HNSW control?").run()
    assert not at.exception, at.exception
    assistant = at.chat_message[1]
    assert "more passages were found but not given to the in-process model" in _text(assistant)
    assert next(e.label for e in assistant.expander).endswith("(1)")  # "Sources (1)"
    # Whatever the model wrote (not asserted: it differs between CPUs), it is said who wrote it.
    assert "Mode: generate" in _text(assistant)


def test_a_generated_sentence_its_passage_does_not_support_is_marked(
    open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeOllama(reply=grounded_then_invented) as ollama:
        monkeypatch.setenv("RAG_OLLAMA_HOST", ollama.host)
        at = open_app()
        assert at.sidebar.selectbox(key="model").value == "ollama:llama3.2"
        options = at.sidebar.selectbox(key="model").options
        assert "Quoted from the documents (extract)" in options
        at.chat_input[0].set_value("What does the ef_search parameter of HNSW control?").run()
        assert not at.exception, at.exception
    assistant = at.chat_message[1]
    answer = assistant.markdown[0].value
    # The supported sentence keeps its badge (a link to its source card); the invented one is
    # marked and has none.
    assert answer.startswith("ef_search is the size of the dynamic candidate list kept during "
                             "a query [:blue-badge[")
    marked = re.search(r":orange-background\[⚠ (.+?)\] :gray\[\((.+?)\)\]", answer)
    assert marked is not None, answer
    assert marked.group(1).replace("\\", "") == INVENTED
    assert marked.group(2).startswith("not supported by the passage it cites")
    assert answer.count(":blue-badge[") == 1
    shown = _text(assistant)
    assert "⚠ marks a sentence not supported by the passage it cites" in shown
    assert "Mode: generate · written by ollama:llama3.2" in shown
    assert not assistant.warning  # it does cite


def test_a_generated_answer_without_any_citation_is_flagged(
    open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    reply = "ef_search is the size of the dynamic candidate list kept during a query."
    with FakeOllama(reply=lambda messages: reply) as ollama:
        monkeypatch.setenv("RAG_OLLAMA_HOST", ollama.host)
        at = open_app()
        at.chat_input[0].set_value("What does the ef_search parameter of HNSW control?").run()
        assert not at.exception, at.exception
    assistant = at.chat_message[1]
    assert ":blue-badge[" not in assistant.markdown[0].value
    [warning] = assistant.warning
    assert "cites no passage" in warning.value


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
    assert "Answering with **extract**" in at.success[0].value.replace("\\", "")
    assert any("ollama serve" in w.value for w in at.warning)  # why not Ollama, and the fix
    from application.factory import App

    chunks = App(make_settings(data_dir)).store.count()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Documents"] == str(len(list(KNOWLEDGE_BASE.iterdir())))
    assert metrics["Chunks"] == str(chunks) and chunks > 0
    assert metrics["Chroma"] == "embedded"
    assert str(data_dir.resolve()) in _text(at.main)
    assert "run by `openvino`" in _text(at.main)  # the embedder's backend, and the CPU it has
    assert f"CPU: {cpu_summary()}" in _text(at.main)
    settings = at.table[0].value.set_index("Variable")  # Markdown cells: values as code
    assert settings.loc["RAG_LOCAL_CONTEXT_TOKENS", "Value"] == "`700`"  # a default, as is
    assert settings.loc["RAG_DATA_DIR", "Value"] == f"`{data_dir}` (set)"  # from the environment
    assert "Ollama server URL" in settings.loc["RAG_OLLAMA_HOST", "What"]
    assert len(settings) == len(Settings.model_fields)
    versions = at.dataframe[0].value
    assert {"python", "chromadb", "sentence-transformers", "streamlit", "llama-cpp-python"} <= set(
        versions["Component"]
    )
