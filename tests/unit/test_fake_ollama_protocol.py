"""The protocol points the app relies on (rag/llm.py OllamaLLM, ui/state.py), through the
official ``ollama`` client: against the fake server, and the same checks against a real Ollama
when one answers at OLLAMA_HOST (default http://127.0.0.1:11434)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import ollama
import pytest

from tests.fake_ollama import FakeOllama, grounded_reply

PROMPT = ("Context passages:\n\n[1] (guide.md, page 2)\nParis is the capital of France. It has "
          "many museums.\n\n[2] (other.md)\nBerlin is in Germany.\n\n"
          "Question: What is the capital of France?")
MESSAGES = [{"role": "system", "content": "Answer briefly and cite like [1]."},
            {"role": "user", "content": PROMPT}]
OPTIONS = {"temperature": 0.0, "num_ctx": 2048, "num_predict": 16}


@dataclass
class Server:
    client: ollama.Client
    host: str
    model: str | None  # None: a real Ollama without models
    fake: FakeOllama | None  # None: a real Ollama


def _live() -> tuple[str, list[str]] | None:
    host = os.environ.get("OLLAMA_HOST", "http://127.0.0.1:11434")
    host = host if host.startswith("http") else f"http://{host}"
    try:
        with urllib.request.urlopen(f"{host}/api/tags", timeout=2) as resp:
            return host, [m["model"] for m in json.load(resp)["models"]]
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture(params=["fake", "live"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    if request.param == "fake":
        with FakeOllama() as fake:
            client = ollama.Client(host=fake.host, timeout=10)
            yield Server(client, fake.host, "llama3.2", fake)
            client.close()
        return
    live = _live()
    if live is None:
        pytest.skip("no Ollama answers at OLLAMA_HOST")
    host, models = live
    wanted = os.environ.get("RAG_OLLAMA_MODEL", "llama3.2")
    model = next((m for m in models if m.split(":")[0] == wanted.split(":")[0]),
                 models[0] if models else None)
    client = ollama.Client(host=host, timeout=300)
    yield Server(client, host, model, None)
    client.close()


def _model(server: Server) -> str:
    if server.model is None:
        pytest.skip("the Ollama at OLLAMA_HOST has no model")
    return server.model


def test_tags_list_models_with_their_tag(server: Server) -> None:
    models = [m.model for m in server.client.list().models]
    assert all(m and ":" in m for m in models)  # "llama3.2" is listed as "llama3.2:latest"
    if server.fake is not None:
        assert models == ["llama3.2:latest"]


def test_chat_streams_ndjson_pieces_then_a_done_line(server: Server) -> None:
    parts = list(server.client.chat(model=_model(server), messages=MESSAGES, stream=True,
                                    options=OPTIONS))
    assert len(parts) > 1
    assert all(not p.done for p in parts[:-1]) and parts[-1].done
    assert parts[-1].done_reason in ("stop", "length")
    assert "".join(p.message.content or "" for p in parts).strip()
    if server.fake is not None:
        assert "".join(p.message.content or "" for p in parts) == grounded_reply(MESSAGES)
        body = server.fake.last_json("/api/chat")
        assert body["stream"] is True and body["options"] == OPTIONS
        assert body["messages"] == MESSAGES


def test_chat_without_streaming_is_one_object(server: Server) -> None:
    response = server.client.chat(model=_model(server), messages=MESSAGES, stream=False,
                                  options=OPTIONS)
    assert response.done and response.message.role == "assistant"
    assert (response.message.content or "").strip()


@pytest.mark.parametrize("stream", [True, False])
def test_unknown_model_is_a_404_with_ollamas_error(server: Server, stream: bool) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        if stream:
            list(server.client.chat(model="no-such-model-xyz", messages=MESSAGES, stream=True))
        else:
            server.client.chat(model="no-such-model-xyz", messages=MESSAGES)
    assert info.value.status_code == 404 and "not found" in info.value.error


# --- what only the fake does: scripted replies and injected failures ----------------------


def _say(client: ollama.Client, content: str = PROMPT) -> str:
    parts = client.chat(model="llama3.2", messages=[{"role": "user", "content": content}],
                        stream=True)
    return "".join(p.message.content or "" for p in parts)


def test_scripted_replies_come_in_order_then_say_they_are_used_up() -> None:
    with FakeOllama(reply=["First answer [1].", "Second answer [2]."]) as fake:
        client = ollama.Client(host=fake.host, timeout=10)
        assert _say(client) == "First answer [1]."
        assert _say(client) == "Second answer [2]."
        with pytest.raises(ollama.ResponseError, match="used up") as info:
            _say(client)
        assert info.value.status_code == 500 and fake.chats == 2

        seen: list[list[dict[str, Any]]] = []
        fake.reply = lambda messages: seen.append(messages) or "From a callable."
        assert _say(client, "hello") == "From a callable."
        assert seen[0][-1] == {"role": "user", "content": "hello"}
        fake.reply = "Always this."
        assert _say(client) == _say(client) == "Always this."


def test_failures_come_as_ollama_sends_them() -> None:
    with FakeOllama() as fake:
        client = ollama.Client(host=fake.host, timeout=10)
        fake.fail_with = (500, "model runner has unexpectedly stopped")
        with pytest.raises(ollama.ResponseError, match="unexpectedly stopped") as info:
            _say(client)
        assert info.value.status_code == 500

        fake.fail_with, fake.stream_error = None, "an error was encountered while running"
        parts: list[str] = []
        with pytest.raises(ollama.ResponseError, match="while running"):
            for part in client.chat(model="llama3.2", messages=MESSAGES, stream=True):
                parts.append(part.message.content or "")
        assert parts == ["Paris "]  # the error line came after the first piece (status 200)

        with pytest.raises(urllib.error.HTTPError) as http:
            urllib.request.urlopen(f"{fake.host}/api/generate", timeout=5)
        assert http.value.code == 404
