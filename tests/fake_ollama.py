"""A stand-in for the Ollama server: the part of its REST API the app and the official ``ollama``
client use (docs.ollama.com/api), served on 127.0.0.1 from a thread, standard library only::

    with FakeOllama(models=("llama3.2:latest",), reply=["HNSW is a graph index [1]."]) as fake:
        client = ollama.Client(host=fake.host)           # or RAG_OLLAMA_HOST=fake.host
        parts = list(client.chat(model="llama3.2", messages=[...], stream=True))
        body = fake.last_json("/api/chat")

Served:

- ``GET /api/tags``: the models (``OllamaLLM.list_models``, ``check``, the UI's model list);
- ``POST /api/chat``: the answer as NDJSON lines over chunked transfer encoding when
  ``stream`` is true or absent (``OllamaLLM.stream``), one JSON object when it is false.

Nothing else: the official client (0.6) calls no other route for ``list`` and ``chat``.

Errors as Ollama sends them: a JSON body ``{"error": "..."}`` with the status (400 without a
model, 404 ``model "NAME" not found, try pulling it first`` for a model it does not have, 500
when the reply fails), ``404 page not found`` as text for any other route, and an
``{"error": ...}`` line in the middle of a stream (the status is already 200 then; the client
raises ``ResponseError``). Model names match as in Ollama: "llama3.2" is "llama3.2:latest".

The reply is scripted: ``reply`` a string (every answer), a list (one per chat request, in
order; a request past the end gets a 500 that says so) or a callable ``messages -> str``;
by default ``grounded_reply``, the first sentence of context block [1] followed by " [1]."
Note that a follow-up question costs two chat requests when the app rewrites it (Ollama
rewrites by default, RAG_QUERY_REWRITE=auto): script both, or set RAG_QUERY_REWRITE=off.
The reply streams one word per line, each line one generated token for ``num_predict``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple, Self, cast
from urllib.parse import urlsplit

from tests.fakes import pieces as split_pieces  # word by word, as ScriptedLLM streams

Messages = list[dict[str, Any]]
Reply = str | Sequence[str] | Callable[[Messages], str]

DEFAULT_MODELS: tuple[str, ...] = ("llama3.2:latest",)
DEFAULT_REFUSAL = "I don't know."


class RecordedRequest(NamedTuple):
    """One request as the server received it; ``json_body`` is None without a JSON body."""

    method: str
    path: str
    json_body: Any


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _tagged(name: str) -> str:
    """Ollama lists and matches a name with its tag: "llama3.2" is "llama3.2:latest"."""
    name = name.strip()
    return name if name.rfind(":") > name.rfind("/") else f"{name}:latest"


# --- the default reply ---------------------------------------------------------------------

# "[n] (file, page)" on a line of its own, then the block's text up to its first full stop
_FIRST_BLOCK = re.compile(r"^\[(\d{1,3})\][^\n]*\n\s*(.+?[.!?])(?=\s|$)", re.M | re.S)


def grounded_reply(messages: Messages, refusal: str = DEFAULT_REFUSAL) -> str:
    """The first sentence of the first context block of the last user message, cited:
    ``"Paris is the capital of France. [1]."``; ``refusal`` when it has no context block."""
    last = next((str(m.get("content") or "") for m in reversed(messages)
                 if m.get("role") == "user"), "")
    found = _FIRST_BLOCK.search(last)
    return f"{' '.join(found.group(2).split())} [{found.group(1)}]." if found else refusal


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- the server ----------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeOllama

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which can stall without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class FakeOllama:
    """The server double; a context manager, or ``start()``/``stop()``.

    ``models``: what ``/api/tags`` lists. ``reply``: see the module docstring (may be changed
    at run time, e.g. ``fake.reply = ["...", "..."]``: a new list starts from its first reply).
    ``delay``: seconds before each streamed piece. ``port``: 0 for a free one.

    Set at run time: ``fail_with = (status, message)`` answers every chat with that error;
    ``stream_error = "message"`` sends ``stream_error_after`` pieces of a streamed answer and
    then an ``{"error": ...}`` line, as Ollama does when its runner fails mid-answer.
    ``requests`` records every request; ``chats`` counts the chat requests answered.
    """

    def __init__(self, models: Iterable[str] = DEFAULT_MODELS, reply: Reply | None = None, *,
                 delay: float = 0.0, port: int = 0) -> None:
        self.models = [_tagged(m) for m in models]
        self.reply = reply
        self.delay = delay
        self.port = port
        self.fail_with: tuple[int, str] | None = None
        self.stream_error: str | None = None
        self.stream_error_after = 1
        self.requests: list[RecordedRequest] = []
        self.chats = 0
        self._script: tuple[Sequence[str], int] | None = None  # the list in use, next index
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """The base URL for ``ollama.Client(host=...)`` and RAG_OLLAMA_HOST."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.fake = self
        self.port = server.server_port
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close kept-alive connections, so clients see the server go."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def has_model(self, name: str) -> bool:
        return _tagged(name) in self.models

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests
                    if r.path == path and (method is None or r.method == method)]

    def last_json(self, path: str) -> Any:
        """The JSON body of the last request to ``path`` (e.g. ``"/api/chat"``)."""
        found = self.requests_to(path)
        if not found:
            raise AssertionError(f"no request to {path}; got {[r.path for r in self.requests]}")
        return found[-1].json_body

    def compose(self, messages: Messages) -> str:
        """The next reply (consumes one of a scripted list)."""
        reply = self.reply
        if reply is None:
            return grounded_reply(messages)
        if isinstance(reply, str):
            return reply
        if callable(reply):
            return reply(messages)
        with self._lock:
            if self._script is None or self._script[0] is not reply:
                self._script = (reply, 0)
            script, index = self._script
            if index >= len(script):
                raise RuntimeError(f"FakeOllama: all {len(script)} scripted replies are used "
                                   f"up (chat request {self.chats + 1})")
            self._script = (script, index + 1)
        return script[index]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked responses, as Go's net/http
    server_version = "FakeOllama/1"

    @property
    def fake(self) -> FakeOllama:
        return cast("_Server", self.server).fake

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.fake._lock:
            self.fake._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body: Any = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = None
        with self.fake._lock:
            self.fake.requests.append(RecordedRequest(self.command, path, body))
        try:
            if (self.command, path) == ("GET", "/api/tags"):
                self._json(200, {"models": [_listing(m) for m in self.fake.models]})
            elif (self.command, path) == ("POST", "/api/chat"):
                self._chat(body)
            else:
                self._send(404, b"404 page not found", "text/plain")
        except _HTTPError as exc:
            self._json(exc.status, {"error": exc.message})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away mid-answer

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8")

    def _line(self, payload: Any) -> None:
        data = (json.dumps(payload) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _chat(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise _HTTPError(400, "missing request body")
        model = body.get("model")
        if not isinstance(model, str) or not model.strip():
            raise _HTTPError(400, "model is required")
        fake = self.fake
        if not fake.has_model(model):
            raise _HTTPError(404, f'model "{model}" not found, try pulling it first')
        if fake.fail_with is not None:
            raise _HTTPError(*fake.fail_with)
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        try:
            pieces = split_pieces(fake.compose(messages))
        except Exception as exc:
            raise _HTTPError(500, str(exc) or exc.__class__.__name__) from None
        with fake._lock:
            fake.chats += 1
        done_reason = "stop"
        num_predict = (body.get("options") or {}).get("num_predict")
        if isinstance(num_predict, int) and 0 < num_predict < len(pieces):
            pieces, done_reason = pieces[:num_predict], "length"

        def part(content: str, **extra: Any) -> dict[str, Any]:
            return {"model": model, "created_at": _now(),
                    "message": {"role": "assistant", "content": content}, "done": False, **extra}

        final = {"done": True, "done_reason": done_reason, "total_duration": 1_000_000,
                 "prompt_eval_count": sum(len(str(m.get("content", "")).split())
                                          for m in messages),
                 "eval_count": len(pieces)}
        if body.get("stream") is False:
            if fake.stream_error is not None:
                raise _HTTPError(500, fake.stream_error)
            time.sleep(fake.delay * len(pieces))
            self._json(200, part("".join(pieces), **final))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, content in enumerate(pieces):
            if fake.stream_error is not None and i >= fake.stream_error_after:
                break
            time.sleep(fake.delay)
            self._line(part(content))
        self._line({"error": fake.stream_error} if fake.stream_error is not None
                   else part("", **final))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def _listing(name: str) -> dict[str, Any]:
    """A model as ``/api/tags`` lists it."""
    family = re.split(r"[^a-z]", name.lower().rsplit("/", 1)[-1])[0] or "llama"
    return {"name": name, "model": name, "modified_at": "2025-01-01T00:00:00Z",
            "size": 2_019_393_189, "digest": hashlib.sha256(name.encode()).hexdigest(),
            "details": {"format": "gguf", "family": family, "families": [family],
                        "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}}
