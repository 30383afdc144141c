"""The fake Ollama server against the official ``ollama`` client (and raw httpx)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import pytest

from tests.fake_ollama import FakeOllama, context_blocks, grounded_reply, model_key, split_pieces

PROMPT = (
    "Context passages:\n\n"
    "[1] (guide.md, page 2 — Setup)\n"
    "Paris is the capital of France. It has many museums.\n\n"
    "[2] (other.md)\n"
    "Berlin is in Germany.\n\n"
    "Question: What is the capital of France?\n"
    "Answer from the passages above and cite them with [n]."
)
EXPECTED = "Paris is the capital of France. [1]."


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


@pytest.fixture
def client(fake: FakeOllama) -> Iterator[ollama.Client]:
    c = ollama.Client(host=fake.host, timeout=10)
    yield c
    c.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _user(content: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Cite like [1]."}, {"role": "user", "content": content}]


# --- the default reply --------------------------------------------------------------------


def test_default_reply_cites_first_sentence_of_block_one() -> None:
    assert grounded_reply(_user(PROMPT)) == EXPECTED
    assert grounded_reply(_user("[1] Inline text here. More.")) == "Inline text here. [1]."
    assert grounded_reply(_user("[3] Only three\nwraps here")) == "Only three wraps here [3]."
    assert grounded_reply(_user("What is the capital?")) == "I don't know."
    assert grounded_reply(_user("x"), refusal="No.") == "No."
    # Only the last user message counts.
    history = [{"role": "user", "content": PROMPT}, {"role": "user", "content": "and?"}]
    assert grounded_reply(history) == "I don't know."


def test_helpers() -> None:
    assert context_blocks(PROMPT) == {
        1: "Paris is the capital of France. It has many museums.",
        2: "Berlin is in Germany.",
    }
    assert "".join(split_pieces(EXPECTED)) == EXPECTED
    assert len(split_pieces(EXPECTED)) == 7
    assert model_key("llama3.2") == model_key("registry.ollama.ai/library/LLAMA3.2:latest")
    assert model_key("llama3.2:1b") != model_key("llama3.2")


# --- the official client ------------------------------------------------------------------


def test_list_returns_models(client: ollama.Client) -> None:
    listing = client.list()
    assert [m.model for m in listing.models] == ["llama3.2:latest"]
    m = listing.models[0]
    assert m.details is not None and m.details.family == "llama"
    assert m.size is not None and m.size > 0 and m.modified_at is not None
    assert listing["models"][0]["model"] == "llama3.2:latest"  # subscriptable too
    assert not hasattr(m, "name")  # the client drops "name": use .model


def test_chat_streams_in_pieces(fake: FakeOllama, client: ollama.Client) -> None:
    parts = list(
        client.chat(
            model="llama3.2",
            messages=_user(PROMPT),
            stream=True,
            options={"temperature": 0.1, "num_ctx": 4096, "num_predict": 256},
        )
    )
    assert len(parts) > 3
    assert "".join(p.message.content or "" for p in parts) == EXPECTED
    assert all(not p.done for p in parts[:-1])
    last = parts[-1]
    assert last.done is True and last.done_reason == "stop"
    assert last.message.content == "" and last.message.role == "assistant"
    assert last.eval_count == len(parts) - 1
    assert last.prompt_eval_count and last.total_duration and last.eval_duration
    assert last.model == "llama3.2" and last.created_at

    method, path, body = fake.requests[-1]
    assert (method, path) == ("POST", "/api/chat")
    assert body["stream"] is True and body["model"] == "llama3.2"
    assert body["messages"][-1] == {"role": "user", "content": PROMPT}
    assert body["options"] == {"temperature": 0.1, "num_ctx": 4096, "num_predict": 256}
    assert fake.last_json("/api/chat") == body


def test_chat_without_streaming(fake: FakeOllama, client: ollama.Client) -> None:
    response = client.chat(model="llama3.2:latest", messages=_user(PROMPT), stream=False)
    assert response.message.content == EXPECTED
    assert response.done and response.done_reason == "stop" and response.eval_count == 7
    assert fake.last_json("/api/chat")["stream"] is False


def test_model_names_match_like_ollama(client: ollama.Client) -> None:
    for name in (
        "llama3.2",
        "LLAMA3.2:latest",
        "library/llama3.2",
        "registry.ollama.ai/library/llama3.2",
    ):
        assert client.chat(model=name, messages=_user("hi")).message.content == "I don't know."


def test_missing_model_is_a_404_response_error(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="mistral", messages=_user("hi"))
    assert info.value.status_code == 404
    assert info.value.error == 'model "mistral" not found, try pulling it first'
    # Streaming: the call returns a generator, the error comes on the first next().
    parts = client.chat(model="llama3.2:1b", messages=_user("hi"), stream=True)
    with pytest.raises(ollama.ResponseError) as info:
        next(iter(parts))
    assert info.value.status_code == 404 and "llama3.2:1b" in info.value.error
    with pytest.raises(ollama.ResponseError) as info:
        client.show("mistral")
    assert info.value.status_code == 404 and info.value.error == "model 'mistral' not found"


def test_unreachable_host_raises_connection_error() -> None:
    c = ollama.Client(host=f"http://127.0.0.1:{_closed_port()}", timeout=5)
    with pytest.raises(ConnectionError):
        c.list()
    with pytest.raises(ConnectionError):
        c.chat(model="llama3.2", messages=_user("hi"), stream=False)
    # A streamed call does not translate the error: httpx.ConnectError escapes.
    with pytest.raises(httpx.ConnectError):
        list(c.chat(model="llama3.2", messages=_user("hi"), stream=True))


def test_stop_drops_kept_alive_connections() -> None:
    fake = FakeOllama().start()
    c = ollama.Client(host=fake.host, timeout=5)
    assert c.list().models
    fake.stop()
    with pytest.raises(ConnectionError):
        c.list()
    restarted = FakeOllama(port=fake.port).start()  # "Ollama came back"
    try:
        assert c.list().models
    finally:
        restarted.stop()


def test_generate_and_show_and_embed(fake: FakeOllama, client: ollama.Client) -> None:
    parts = list(client.generate(model="llama3.2", prompt=PROMPT, stream=True))
    assert "".join(p.response or "" for p in parts) == EXPECTED
    assert parts[-1].done and parts[-1].done_reason == "stop" and parts[-1].context
    assert client.generate(model="llama3.2", prompt="hi").response == "I don't know."
    assert fake.last_json("/api/generate") == {"model": "llama3.2", "prompt": "hi", "stream": False}

    shown = client.show("llama3.2")
    assert shown.details is not None and shown.capabilities == ["completion", "tools"]
    assert shown.modelinfo and shown.modelinfo["general.architecture"] == "llama"

    embedded = client.embed(model="llama3.2", input=["a cat", "a cat", "stock markets"])
    a, b, c = embedded.embeddings
    assert a == b and a != c and abs(sum(x * x for x in a) - 1) < 1e-9
    assert client.ps().models[0].model == "llama3.2:latest"


def test_reply_override_errors_and_truncation() -> None:
    seen: list[list[dict[str, Any]]] = []

    def reply(messages: list[dict[str, Any]]) -> str:
        seen.append(messages)
        if messages[-1]["content"] == "boom":
            raise RuntimeError("out of memory")
        return "one two three four five"

    with FakeOllama(models=("qwen2.5:0.5b", "llama3.2"), reply=reply) as fake:
        c = ollama.Client(host=fake.host)
        assert [m.model for m in c.list().models] == ["qwen2.5:0.5b", "llama3.2:latest"]
        assert c.chat(model="qwen2.5:0.5b", messages=_user("x")).message.content == (
            "one two three four five"
        )
        assert seen[-1] == _user("x")

        short = c.chat(model="llama3.2", messages=_user("x"), options={"num_predict": 2})
        assert short.message.content == "one two " and short.done_reason == "length"

        with pytest.raises(ollama.ResponseError) as info:
            c.chat(model="llama3.2", messages=_user("boom"))
        assert info.value.status_code == 500 and info.value.error == "out of memory"

        fake.fail_with = (503, "server busy, please try again.  maximum pending requests exceeded")
        with pytest.raises(ollama.ResponseError) as info:
            c.chat(model="llama3.2", messages=_user("x"))
        assert info.value.status_code == 503
        fake.fail_with = None

        fake.stream_error = "an error was encountered while running the model"
        got: list[str] = []
        with pytest.raises(ollama.ResponseError) as info:
            for part in c.chat(model="llama3.2", messages=_user("x"), stream=True):
                got.append(part.message.content or "")
        assert got == ["one "] and info.value.status_code == -1
        assert info.value.error == "an error was encountered while running the model"


def test_streaming_is_incremental_and_concurrent() -> None:
    with FakeOllama(reply="a b c d e f", delay=0.05) as fake:
        c = ollama.Client(host=fake.host)
        started = time.monotonic()
        arrivals = [
            time.monotonic() - started
            for _ in c.chat(model="llama3.2", messages=_user("x"), stream=True)
        ]
        assert arrivals[0] < 0.2 and arrivals[-1] >= 0.28

        results: list[str] = []

        def ask() -> None:
            parts = c.chat(model="llama3.2", messages=_user("x"), stream=True)
            results.append("".join(p.message.content or "" for p in parts))

        threads = [threading.Thread(target=ask) for _ in range(4)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == ["a b c d e f"] * 4
        assert time.monotonic() - started < 1.0  # in parallel, not one after another


def test_async_client(fake: FakeOllama) -> None:
    async def run() -> str:
        c = ollama.AsyncClient(host=fake.host)
        stream = await c.chat(model="llama3.2", messages=_user(PROMPT), stream=True)
        return "".join([p.message.content or "" async for p in stream])

    assert asyncio.run(run()) == EXPECTED


def test_pull_and_delete(fake: FakeOllama, client: ollama.Client) -> None:
    statuses = [p.status for p in client.pull("mistral", stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert fake.models == ["llama3.2:latest", "mistral:latest"]
    assert client.chat(model="mistral", messages=_user("hi")).message.content
    assert client.delete("mistral").status == "success"
    with pytest.raises(ollama.ResponseError) as info:
        client.delete("mistral")
    assert info.value.status_code == 404


# --- raw HTTP ------------------------------------------------------------------------------


def test_raw_http_protocol(fake: FakeOllama) -> None:
    with httpx.Client(base_url=fake.host) as http:
        root = http.get("/")
        assert root.status_code == 200 and root.text == "Ollama is running"
        assert http.head("/").status_code == 200
        assert http.get("/api/version").json() == {"version": fake.version}
        tags = http.get("/api/tags").json()["models"][0]
        assert tags["name"] == tags["model"] == "llama3.2:latest" and len(tags["digest"]) == 64

        nope = http.get("/api/nope")
        assert nope.status_code == 404 and nope.text == "404 page not found"

        def post(body: bytes) -> httpx.Response:
            return http.post("/api/chat", content=body)

        assert post(b"{not json").status_code == 400
        assert post(b"{not json").json() == {
            "error": "invalid character 'n' looking for beginning of object key string"
        }
        assert post(b"").json() == {"error": "missing request body"}
        assert post(b'{"model": "llama3.2", "messages": [').json() == {"error": "unexpected EOF"}
        assert post(b"[]").json() == {
            "error": "json: cannot unmarshal array into Go value of type api.ChatRequest"
        }
        assert post(b'{"messages": []}').json() == {"error": "model is required"}
        bad = post(b'{"model": "llama3.2", "stream": "yes"}')
        assert bad.status_code == 400 and "ChatRequest.stream of type bool" in bad.json()["error"]

        # Streaming is Ollama's default: NDJSON over chunked transfer encoding.
        body = {"model": "llama3.2", "messages": _user(PROMPT)}
        with http.stream("POST", "/api/chat", json=body) as r:
            assert r.headers["content-type"] == "application/x-ndjson"
            assert r.headers["transfer-encoding"] == "chunked"
            lines = [json.loads(line) for line in r.iter_lines()]
        assert [set(x) for x in lines[:-1]] == [{"model", "created_at", "message", "done"}] * 7
        assert lines[-1]["done"] is True and lines[-1]["done_reason"] == "stop"
        assert {"eval_count", "prompt_eval_count", "total_duration", "load_duration"} <= set(
            lines[-1]
        )

        loaded = http.post("/api/chat", json={"model": "llama3.2", "messages": []}).json()
        assert loaded["done_reason"] == "load" and loaded["message"]["content"] == ""

        thinking = http.post(
            "/api/chat", json={"model": "llama3.2", "messages": _user("x"), "think": True}
        )
        assert thinking.status_code == 400
        assert thinking.json() == {"error": '"llama3.2" does not support thinking'}

    assert ("GET", "/api/version", None) in fake.requests
    assert fake.requests_to("/api/chat", "POST")[0].json_body is None  # malformed body
