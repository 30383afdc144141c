"""The Ollama backend through the official client: against the in-suite server that speaks
Ollama's API, and against a real Ollama when one answers at OLLAMA_HOST."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from application.factory import build_ollama, choose_llm
from rag.citations import cited_numbers
from rag.errors import LLMError, LLMUnavailableError, ModelNotFoundError
from rag.llm import OllamaLLM
from rag.types import Message
from tests.conftest import closed_port, make_settings
from tests.fake_ollama import FakeOllama


@dataclass
class OllamaServer:
    host: str
    model: str
    fake: FakeOllama | None  # None: a real Ollama


def _live_ollama() -> OllamaServer | None:
    host = os.environ.get("OLLAMA_HOST", "http://127.0.0.1:11434")
    if not host.startswith("http"):
        host = f"http://{host}"
    try:
        with urllib.request.urlopen(f"{host}/api/tags", timeout=2) as resp:
            models = [m["model"] for m in json.load(resp)["models"]]
    except (OSError, ValueError, KeyError):
        return None
    wanted = os.environ.get("RAG_OLLAMA_MODEL", "llama3.2")
    model = next((m for m in models if m.split(":")[0] == wanted.split(":")[0]), None)
    return OllamaServer(host, model or (models[0] if models else wanted), None)


@pytest.fixture(params=["fake", "live"])
def ollama_server(request: pytest.FixtureRequest) -> Iterator[OllamaServer]:
    if request.param == "live":
        live = _live_ollama()
        if live is None:
            pytest.skip("no Ollama answers at OLLAMA_HOST (default http://127.0.0.1:11434)")
        yield live
        return
    with FakeOllama(models=("llama3.2:latest", "qwen2.5:0.5b")) as fake:
        yield OllamaServer(fake.host, "llama3.2", fake)


def _llm(server: OllamaServer, model: str | None = None) -> OllamaLLM:
    settings = make_settings(Path("unused"), ollama_host=server.host,
                             ollama_model=model or server.model)
    llm = build_ollama(settings)
    assert isinstance(llm, OllamaLLM)
    return llm


def test_lists_models_and_finds_the_configured_one(ollama_server: OllamaServer) -> None:
    llm = _llm(ollama_server)
    llm.check()
    assert any(m.startswith(ollama_server.model.split(":")[0]) for m in llm.list_models())


def test_streams_a_grounded_answer_with_citations(  # type: ignore[no-untyped-def]
    ollama_server: OllamaServer, make_app, kb_data_dir
) -> None:
    app = make_app(kb_data_dir)
    engine = app.chat_engine(_llm(ollama_server))
    question = "What does the ef_search parameter of HNSW control?"
    answer = engine.ask(question)
    assert answer.text and not answer.refused
    # Ollama is given every passage retrieved: the token budget is the in-process model's
    assert len(answer.sources) == len(engine.retrieve(question).hits) and not answer.left_out
    assert answer.sources[0].chunk.source == "vector-search-handbook.pdf"
    assert answer.backend == f"ollama:{ollama_server.model}"
    if ollama_server.fake is not None:
        # what went over the wire: streaming chat, our options, the numbered context
        body = ollama_server.fake.last_json("/api/chat")
        assert body["stream"] is True
        assert body["options"]["temperature"] == app.settings.temperature
        assert body["options"]["num_ctx"] == app.settings.context_window
        assert body["messages"][0]["role"] == "system"
        assert "[1] (vector-search-handbook.pdf, page" in body["messages"][-1]["content"]
        assert cited_numbers(answer.text) == {1}
        assert answer.cited_sources()[0].chunk.source == "vector-search-handbook.pdf"


def test_follow_up_is_rewritten_by_ollama_before_the_search(  # type: ignore[no-untyped-def]
    ollama_server: OllamaServer, make_app, kb_data_dir
) -> None:
    """RAG_QUERY_REWRITE=auto: a capable model rewrites the follow-up (one chat request for
    the rewrite, one for the answer)."""
    if ollama_server.fake is None:
        pytest.skip("counts the requests the fake server received")
    engine = make_app(kb_data_dir).chat_engine(_llm(ollama_server))
    history = [Message("user", "What is HNSW?"),
               Message("assistant", "HNSW is a graph index for nearest neighbour search.")]
    answer = engine.ask("And what does its ef_search setting do?", history)
    chats = [r.json_body for r in ollama_server.fake.requests_to("/api/chat")]
    assert len(chats) == 2 and answer.text
    assert "Standalone question:" in chats[0]["messages"][-1]["content"]
    assert "Standalone question:" not in chats[1]["messages"][-1]["content"]


def test_missing_model_says_to_pull_it(ollama_server: OllamaServer) -> None:
    llm = _llm(ollama_server, model="no-such-model-xyz")
    with pytest.raises(ModelNotFoundError, match="ollama pull no-such-model-xyz"):
        llm.check()
    with pytest.raises(ModelNotFoundError, match="ollama pull no-such-model-xyz"):
        list(llm.stream([Message("user", "hi")], temperature=0.0, max_tokens=8))


def test_unreachable_server_says_where_and_how_to_fix() -> None:
    host = f"http://127.0.0.1:{closed_port()}"
    llm = _llm(OllamaServer(host, "llama3.2", None))
    with pytest.raises(LLMUnavailableError, match=f"not reachable at {host}.*ollama serve"):
        llm.check()
    with pytest.raises(LLMUnavailableError, match="RAG_OLLAMA_HOST"):
        list(llm.stream([Message("user", "hi")], temperature=0.0, max_tokens=8))


def test_error_in_the_middle_of_a_stream_is_reported() -> None:
    with FakeOllama() as fake:
        fake.stream_error, fake.stream_error_after = "model runner crashed", 1
        llm = _llm(OllamaServer(fake.host, "llama3.2", fake))
        with pytest.raises(LLMError, match="model runner crashed"):
            list(llm.stream([Message("user", "[1] x\nHello there.")], temperature=0.0,
                            max_tokens=64))


@pytest.mark.slow
def test_auto_uses_ollama_when_it_has_the_model_else_extracts_or_the_configured_gguf() -> None:
    with FakeOllama(models=("llama3.2:latest",)) as fake:
        chosen = choose_llm(make_settings(Path("unused"), ollama_host=fake.host))
        assert chosen.name == "ollama:llama3.2" and chosen.mode == "generate"
        fallback = choose_llm(make_settings(Path("unused"), ollama_host=fake.host,
                                            ollama_model="mistral"))
        # only the bundled 135M model is left: the answer is quoted, not written by it
        assert fallback.llm is None and fallback.mode == "extract"
        assert "ollama pull mistral" in fallback.reason
        generate = choose_llm(make_settings(Path("unused"), ollama_host=fake.host,
                                            ollama_model="mistral", answer_mode="generate"))
        assert generate.name.startswith("llamacpp:")
    down = choose_llm(make_settings(Path("unused"),
                                    ollama_host=f"http://127.0.0.1:{closed_port()}"))
    assert down.mode == "extract" and "not reachable" in down.reason
