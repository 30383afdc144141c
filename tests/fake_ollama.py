"""A stand-in for the Ollama server, for tests (no Ollama binary is needed).

It speaks Ollama's REST API (docs/api.md in ollama/ollama) closely enough that the official
``ollama`` Python client works against it unchanged::

    with FakeOllama(models=("llama3.2:latest",)) as fake:
        client = ollama.Client(host=fake.host)
        parts = list(client.chat(model="llama3.2", messages=[...], stream=True))
        method, path, body = fake.requests[-1]

What it serves (standard library only, a ``ThreadingHTTPServer`` on 127.0.0.1, a free port):

- ``GET /`` "Ollama is running"; ``GET /api/version``; ``GET /api/tags``; ``GET /api/ps``;
- ``POST /api/show``; ``POST /api/chat`` and ``POST /api/generate`` (NDJSON over chunked
  transfer encoding when ``stream`` is true or absent, one JSON object when it is false);
- ``POST /api/embed`` (and the legacy ``/api/embeddings``): deterministic unit vectors;
- ``POST /api/pull`` (always succeeds, adds the model) and ``DELETE /api/delete``.

Errors are Ollama's: ``{"error": "..."}`` bodies, 400 for a missing or malformed body or a
missing model name, 404 ``model "NAME" not found, try pulling it first`` for an unknown model on
chat/generate (``model 'NAME' not found`` on show/embed/delete), 404 ``404 page not found``
(text) for an unknown route. Model names match like Ollama's: "llama3.2" is "llama3.2:latest",
case-insensitively, with the default "registry.ollama.ai/library/" prefix.

The answer is deterministic (see ``grounded_reply``) unless ``reply`` is given, and is streamed
in several pieces (one per word, spaces kept), each piece counting as one generated token.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple, Self, cast
from urllib.parse import urlsplit

Reply = Callable[[list[dict[str, Any]]], str]

DEFAULT_MODELS: tuple[str, ...] = ("llama3.2:latest",)
DEFAULT_REFUSAL = "I don't know."
OLLAMA_VERSION = "0.9.6"

_DEFAULT_HOST = "registry.ollama.ai"
_DEFAULT_NAMESPACE = "library"


class RecordedRequest(NamedTuple):
    """One request as the server received it; ``json_body`` is None without a JSON body."""

    method: str
    path: str
    json_body: Any


class _HTTPError(Exception):
    """Raised inside a handler to answer ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- model names -------------------------------------------------------------------------


def model_key(name: str) -> tuple[str, str, str, str] | None:
    """Ollama's name parsing, simplified: (host, namespace, model, tag), lower-cased.

    ``llama3.2``, ``llama3.2:latest``, ``library/llama3.2`` and
    ``registry.ollama.ai/library/llama3.2:latest`` all give the same key. None if invalid.
    """
    name = name.strip().split("@", 1)[0]
    tag = "latest"
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    parts = name.split("/")
    if len(parts) == 1:
        host, namespace, model = _DEFAULT_HOST, _DEFAULT_NAMESPACE, parts[0]
    elif len(parts) == 2:
        host, (namespace, model) = _DEFAULT_HOST, parts
    else:
        host, namespace, model = "/".join(parts[:-2]), parts[-2], parts[-1]
    if not (host and namespace and model and tag):
        return None
    return host.lower(), namespace.lower(), model.lower(), tag.lower()


def _display_name(name: str) -> str:
    """How ``/api/tags`` shows a model: with its tag (``llama3.2`` -> ``llama3.2:latest``)."""
    name = name.strip()
    return name if name.rfind(":") > name.rfind("/") else f"{name}:latest"


# --- the default answer ------------------------------------------------------------------

_MARKER = re.compile(r"^\s*\[(\d{1,3})\][ \t]*(.*)$")
_HEADER = re.compile(r"^(\(.*\)|\[.*\]|.*:)$")
_SENTENCE = re.compile(r"^(.+?[.!?])(?=\s|$)")


def context_blocks(text: str) -> dict[int, str]:
    """The numbered blocks of a prompt: ``{n: text}`` for each line beginning with ``[n]``.

    A block's text is the rest of its marker line (unless that is only a header such as
    ``(file.pdf, page 2)``, ``[...]`` or ``Source:``) and the following lines, up to the first
    blank line after some text, or the next marker line. Whitespace is collapsed. When a number
    appears twice, the first block wins.
    """
    blocks: dict[int, list[str]] = {}
    current: int | None = None
    for line in text.splitlines():
        marker = _MARKER.match(line)
        if marker:
            n = int(marker.group(1))
            current = None if n in blocks else n
            if current is not None:
                blocks[current] = []
                rest = marker.group(2).strip()
                if rest and not _HEADER.match(rest):
                    blocks[current].append(rest)
            continue
        if current is None:
            continue
        if line.strip():
            blocks[current].append(line.strip())
        elif blocks[current]:
            current = None  # a blank line ends the block's first paragraph
    return {n: " ".join(" ".join(lines).split()) for n, lines in blocks.items()}


def first_sentence(text: str) -> str:
    """Up to and including the first ``.``, ``!`` or ``?`` followed by a space or the end."""
    match = _SENTENCE.match(text)
    return match.group(1) if match else text


def _last_user_content(messages: Iterable[Mapping[str, Any]]) -> str:
    for message in reversed(list(messages)):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else ""
    return ""


def grounded_reply(messages: list[dict[str, Any]], refusal: str = DEFAULT_REFUSAL) -> str:
    """The fake model's default answer, derived only from the last user message.

    If it holds numbered context blocks (lines beginning with ``[n]``), the answer is the first
    sentence of block [1] (or of the lowest-numbered block with text) followed by `` [1].``,
    e.g. ``"Paris is the capital of France. [1]."``. Otherwise it is ``refusal``.
    """
    blocks = {n: t for n, t in context_blocks(_last_user_content(messages)).items() if t}
    if not blocks:
        return refusal
    n = 1 if 1 in blocks else min(blocks)
    return f"{first_sentence(blocks[n])} [{n}]."


def split_pieces(text: str) -> list[str]:
    """The streamed pieces of a reply: words with their following spaces; they join to ``text``."""
    return re.findall(r"\s+|\S+\s*", text) if text else []


def _estimate_tokens(text: str) -> int:
    return len(re.findall(r"\w+|[^\w\s]", text))


def fake_embedding(text: str, dim: int) -> list[float]:
    """A deterministic unit vector: hashed word counts, so similar texts get similar vectors."""
    vector = [0.0] * dim
    for word in re.findall(r"\w+", text.lower()) or [text]:
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % dim] += 1.0 if digest[4] % 2 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0.0:
        return [1.0] + [0.0] * (dim - 1)
    return [v / norm for v in vector]


# --- JSON like Go's encoding/json ---------------------------------------------------------

_GO_CONTEXT = {
    "Expecting value": "looking for beginning of value",
    "Expecting property name enclosed in double quotes": (
        "looking for beginning of object key string"
    ),
    "Expecting ':' delimiter": "after object key",
    "Expecting ',' delimiter": "after object key:value pair",
    "Invalid control character at": "in string literal",
}
_JSON_KIND = {dict: "object", list: "array", str: "string", bool: "bool", int: "number"}
_GO_FIELD_TYPE = {
    str: "string",
    bool: "bool",
    list: "[]api.Message",
    dict: "map[string]interface {}",
}


def _json_kind(value: Any) -> str:
    return "number" if isinstance(value, float) else _JSON_KIND.get(type(value), "value")


def _decode_body(raw: bytes, go_type: str) -> dict[str, Any]:
    """Decode a request body the way Ollama (gin's ShouldBindJSON) accepts or rejects it."""
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        raise _HTTPError(400, "missing request body")
    start = len(text) - len(text.lstrip())
    try:
        value, _ = json.JSONDecoder().raw_decode(text, start)  # trailing data is ignored, as in Go
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            raise _HTTPError(400, "unexpected EOF") from None
        context = _GO_CONTEXT.get(exc.msg, "looking for beginning of value")
        raise _HTTPError(400, f"invalid character {text[exc.pos]!r} {context}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        kind = _json_kind(value)
        raise _HTTPError(400, f"json: cannot unmarshal {kind} into Go value of type {go_type}")
    return value


def _check_types(body: Mapping[str, Any], go_type: str, fields: Mapping[str, type]) -> None:
    """Reject a field of the wrong JSON type with Go's unmarshal message."""
    for field, expected in fields.items():
        value = body.get(field)
        if value is None or isinstance(value, expected):
            continue
        raise _HTTPError(
            400,
            f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
            f"{go_type.removeprefix('api.')}.{field} of type {_GO_FIELD_TYPE[expected]}",
        )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- the server --------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeOllama

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which can stall without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class FakeOllama:
    """An Ollama server double on 127.0.0.1; use as a context manager or ``start()``/``stop()``.

    ``models``: the installed models (``"llama3.2"`` is listed as ``"llama3.2:latest"``).
    ``reply``: a callable ``messages -> str`` (for /api/generate the messages are the ``system``
    and the ``prompt``), or a fixed string; default ``grounded_reply``. If it raises, the server
    answers 500 ``{"error": str(exc)}``.
    ``delay``: seconds to sleep before each streamed piece. ``refusal``: the default reply's
    answer without context. ``port``: 0 for a free one, or a fixed port (to "restart" a server).

    Mutable at run time: ``fail_with = (status, message)`` makes chat/generate/embed answer
    that error; ``stream_error = "message"`` makes a streamed chat/generate send
    ``stream_error_after`` pieces and then an ``{"error": ...}`` line, as Ollama does when the
    runner fails mid-answer (the client raises ``ResponseError`` with status_code -1).
    """

    def __init__(
        self,
        models: Iterable[str] = DEFAULT_MODELS,
        reply: Reply | str | None = None,
        *,
        delay: float = 0.0,
        refusal: str = DEFAULT_REFUSAL,
        port: int = 0,
        version: str = OLLAMA_VERSION,
        embedding_dim: int = 16,
    ) -> None:
        self._models: list[str] = [_display_name(m) for m in models]
        self.reply = reply
        self.delay = delay
        self.refusal = refusal
        self.version = version
        self.embedding_dim = embedding_dim
        self.fail_with: tuple[int, str] | None = None
        self.stream_error: str | None = None
        self.stream_error_after = 1
        self.requests: list[RecordedRequest] = []
        self.port = port
        self._lock = threading.Lock()
        self._loaded: dict[str, datetime] = {}
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    @property
    def host(self) -> str:
        """The base URL to give ``ollama.Client(host=...)``, e.g. ``http://127.0.0.1:54321``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("FakeOllama is already running")
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.fake = self
        self.port = server.server_port
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-ollama",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open (keep-alive) connections, so clients see it go away."""
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
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # models

    @property
    def models(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def find_model(self, name: str) -> str | None:
        """The installed model's listed name that ``name`` refers to, or None."""
        key = model_key(name)
        if key is None:
            return None
        with self._lock:
            return next((m for m in self._models if model_key(m) == key), None)

    def add_model(self, name: str) -> None:
        if self.find_model(name) is None:
            with self._lock:
                self._models.append(_display_name(name))

    def remove_model(self, name: str) -> bool:
        found = self.find_model(name)
        if found is not None:
            with self._lock:
                self._models.remove(found)
                self._loaded.pop(found, None)
        return found is not None

    # requests

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.path == path and (method is None or r.method == method)
            ]

    def last_json(self, path: str) -> Any:
        """The JSON body of the last request to ``path`` (e.g. ``"/api/chat"``)."""
        found = self.requests_to(path)
        if not found:
            raise AssertionError(f"no request to {path}; got {[r.path for r in self.requests]}")
        return found[-1].json_body

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # internals used by the handler

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _mark_loaded(self, name: str) -> None:
        with self._lock:
            self._loaded[name] = datetime.now(UTC) + timedelta(minutes=5)

    def _loaded_models(self) -> list[tuple[str, datetime]]:
        with self._lock:
            return list(self._loaded.items())

    def _compose(self, messages: list[dict[str, Any]]) -> str:
        if isinstance(self.reply, str):
            return self.reply
        if self.reply is not None:
            return self.reply(messages)
        return grounded_reply(messages, self.refusal)


def _model_entry(name: str) -> dict[str, Any]:
    digest = hashlib.sha256(name.encode()).hexdigest()
    family = re.split(r"[^a-z]", name.lower().rsplit("/", 1)[-1])[0] or "llama"
    return {
        "name": name,
        "model": name,
        "modified_at": "2025-01-01T00:00:00.000000Z",
        "size": 2_019_393_189,
        "digest": digest,
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": "3.2B",
            "quantization_level": "Q4_K_M",
        },
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked responses, as Go's net/http
    server_version = "FakeOllama/1"

    @property
    def fake(self) -> FakeOllama:
        return cast("_Server", self.server).fake

    def setup(self) -> None:
        super().setup()
        self.fake._track(self.connection, add=True)

    def finish(self) -> None:
        self.fake._track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    # plumbing

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_bytes(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        self._send_bytes(status, body, "application/json; charset=utf-8")

    def _send_error_json(self, status: int, message: str) -> None:
        self._send_json(status, {"error": message})

    def _not_found(self) -> None:
        self._send_bytes(404, b"404 page not found", "text/plain")

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _stream_line(self, payload: Any) -> None:
        data = (json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # dispatch

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        raw = self._read_body()
        try:
            parsed: Any = json.loads(raw) if raw.strip() else None
        except ValueError:
            parsed = None
        self.fake._record(RecordedRequest(self.command, path, parsed))

        routes: dict[tuple[str, str], Callable[[bytes], None]] = {
            ("GET", "/"): self._root,
            ("HEAD", "/"): self._root,
            ("GET", "/api/version"): self._version,
            ("HEAD", "/api/version"): self._version,
            ("GET", "/api/tags"): self._tags,
            ("HEAD", "/api/tags"): self._tags,
            ("GET", "/api/ps"): self._ps,
            ("POST", "/api/show"): self._show,
            ("POST", "/api/chat"): self._chat,
            ("POST", "/api/generate"): self._generate,
            ("POST", "/api/embed"): self._embed,
            ("POST", "/api/embeddings"): self._embeddings,
            ("POST", "/api/pull"): self._pull,
            ("DELETE", "/api/delete"): self._delete,
        }
        handler = routes.get((self.command, path))
        try:
            if handler is None:
                self._not_found()
            else:
                handler(raw)
        except _HTTPError as exc:
            self._send_error_json(exc.status, exc.message)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away mid-answer

    # endpoints

    def _root(self, raw: bytes) -> None:
        self._send_bytes(200, b"Ollama is running", "text/plain; charset=utf-8")

    def _version(self, raw: bytes) -> None:
        self._send_json(200, {"version": self.fake.version})

    def _tags(self, raw: bytes) -> None:
        self._send_json(200, {"models": [_model_entry(m) for m in self.fake.models]})

    def _ps(self, raw: bytes) -> None:
        models = []
        for name, expires in self.fake._loaded_models():
            entry = _model_entry(name)
            del entry["modified_at"]
            entry.update(
                expires_at=expires.isoformat().replace("+00:00", "Z"),
                size_vram=entry["size"],
                context_length=4096,
            )
            models.append(entry)
        self._send_json(200, {"models": models})

    def _require_model(self, body: Mapping[str, Any], *, pull_hint: bool) -> tuple[str, str]:
        """(name as requested, installed name), or an Ollama error."""
        requested = body.get("model") or body.get("name") or ""
        if not requested or model_key(requested) is None:
            raise _HTTPError(400, "model is required")
        found = self.fake.find_model(requested)
        if found is None:
            if pull_hint:
                raise _HTTPError(404, f'model "{requested}" not found, try pulling it first')
            raise _HTTPError(404, f"model '{requested}' not found")
        return requested, found

    def _check_failure(self) -> None:
        if self.fake.fail_with is not None:
            status, message = self.fake.fail_with
            raise _HTTPError(status, message)

    def _show(self, raw: bytes) -> None:
        body = _decode_body(raw, "api.ShowRequest")
        _check_types(body, "api.ShowRequest", {"model": str, "name": str})
        _, found = self._require_model(body, pull_hint=False)
        entry = _model_entry(found)
        family = entry["details"]["family"]
        self._send_json(
            200,
            {
                "license": "",
                "modelfile": f'# Modelfile generated by "ollama show"\nFROM {found}\n',
                "parameters": 'stop                           "<|eot_id|>"',
                "template": "{{ .Prompt }}",
                "details": entry["details"],
                "model_info": {
                    "general.architecture": family,
                    "general.parameter_count": 3_212_749_888,
                    f"{family}.context_length": 131072,
                    f"{family}.embedding_length": 3072,
                },
                "capabilities": ["completion", "tools"],
                "modified_at": entry["modified_at"],
            },
        )

    def _chat(self, raw: bytes) -> None:
        body = _decode_body(raw, "api.ChatRequest")
        _check_types(
            body,
            "api.ChatRequest",
            {"model": str, "messages": list, "stream": bool, "options": dict},
        )
        requested, found = self._require_model(body, pull_hint=True)
        self._reject_thinking(body, requested)
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        if not messages:
            self._load_or_unload(body, requested, {"message": {"role": "assistant", "content": ""}})
            return
        self._answer(body, requested, found, messages, chat=True)

    def _generate(self, raw: bytes) -> None:
        body = _decode_body(raw, "api.GenerateRequest")
        _check_types(
            body,
            "api.GenerateRequest",
            {"model": str, "prompt": str, "system": str, "stream": bool, "options": dict},
        )
        requested, found = self._require_model(body, pull_hint=True)
        self._reject_thinking(body, requested)
        prompt = body.get("prompt") or ""
        if not prompt:
            self._load_or_unload(body, requested, {"response": ""})
            return
        messages: list[dict[str, Any]] = []
        if body.get("system"):
            messages.append({"role": "system", "content": body["system"]})
        messages.append({"role": "user", "content": prompt})
        self._answer(body, requested, found, messages, chat=False)

    def _reject_thinking(self, body: Mapping[str, Any], requested: str) -> None:
        think = body.get("think")
        if think is True or (isinstance(think, str) and think):
            raise _HTTPError(400, f'"{requested}" does not support thinking')

    def _load_or_unload(
        self, body: Mapping[str, Any], requested: str, extra: dict[str, Any]
    ) -> None:
        keep_alive = body.get("keep_alive")
        unload = keep_alive in (0, "0", "0s", "0m")
        self._send_json(
            200,
            {
                "model": requested,
                "created_at": _now(),
                **extra,
                "done_reason": "unload" if unload else "load",
                "done": True,
            },
        )

    def _answer(
        self,
        body: Mapping[str, Any],
        requested: str,
        found: str,
        messages: list[dict[str, Any]],
        *,
        chat: bool,
    ) -> None:
        fake = self.fake
        self._check_failure()
        started = time.monotonic_ns()
        try:
            text = fake._compose(messages)
        except Exception as exc:
            raise _HTTPError(500, str(exc) or exc.__class__.__name__) from None
        fake._mark_loaded(found)
        pieces = split_pieces(text)
        done_reason = "stop"
        options = body.get("options") or {}
        num_predict = options.get("num_predict")
        if isinstance(num_predict, int) and 0 < num_predict < len(pieces):
            pieces, done_reason = pieces[:num_predict], "length"
        prompt_tokens = sum(_estimate_tokens(str(m.get("content") or "")) for m in messages)

        def piece(content: str) -> dict[str, Any]:
            out: dict[str, Any] = {"model": requested, "created_at": _now()}
            if chat:
                out["message"] = {"role": "assistant", "content": content}
            else:
                out["response"] = content
            out["done"] = False
            return out

        def final(content: str) -> dict[str, Any]:
            out = piece(content)
            out.update(
                done=True,
                done_reason=done_reason,
                total_duration=max(time.monotonic_ns() - started, 1),
                load_duration=1_000_000,
                prompt_eval_count=prompt_tokens,
                prompt_eval_duration=prompt_tokens * 100_000,
                eval_count=len(pieces),
                eval_duration=max(len(pieces), 1) * 1_000_000 + int(fake.delay * 1e9 * len(pieces)),
            )
            if not chat:
                out["context"] = list(range(1, prompt_tokens + len(pieces) + 1))
            return out

        stream = body.get("stream")
        if stream is False:
            if fake.stream_error is not None:
                raise _HTTPError(500, fake.stream_error)
            if fake.delay:
                time.sleep(fake.delay * len(pieces))
            self._send_json(200, final("".join(pieces)))
            return

        self._start_stream()
        for i, content in enumerate(pieces):
            if fake.stream_error is not None and i >= fake.stream_error_after:
                self._stream_line({"error": fake.stream_error})
                self._end_stream()
                return
            if fake.delay:
                time.sleep(fake.delay)
            self._stream_line(piece(content))
        if fake.stream_error is not None:
            self._stream_line({"error": fake.stream_error})
        else:
            self._stream_line(final(""))
        self._end_stream()

    def _embed(self, raw: bytes) -> None:
        body = _decode_body(raw, "api.EmbedRequest")
        _check_types(body, "api.EmbedRequest", {"model": str})
        value = body.get("input")
        if isinstance(value, str):
            inputs = [value] if value else []
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            inputs = list(value)
        elif value is None:
            inputs = []
        else:
            raise _HTTPError(400, "invalid input type")
        requested, found = self._require_model(body, pull_hint=False)
        self._check_failure()
        self.fake._mark_loaded(found)
        dim = self.fake.embedding_dim
        dimensions = body.get("dimensions")
        if isinstance(dimensions, int) and 0 < dimensions < dim:
            dim = dimensions
        self._send_json(
            200,
            {
                "model": requested,
                "embeddings": [fake_embedding(t, dim) for t in inputs],
                "total_duration": 1_000_000,
                "load_duration": 100_000,
                "prompt_eval_count": sum(_estimate_tokens(t) for t in inputs),
            },
        )

    def _embeddings(self, raw: bytes) -> None:
        body = _decode_body(raw, "api.EmbeddingRequest")
        _check_types(body, "api.EmbeddingRequest", {"model": str, "prompt": str})
        _, found = self._require_model(body, pull_hint=True)
        self._check_failure()
        self.fake._mark_loaded(found)
        prompt = body.get("prompt") or ""
        embedding = fake_embedding(prompt, self.fake.embedding_dim) if prompt else []
        self._send_json(200, {"embedding": embedding})

    def _pull(self, raw: bytes) -> None:
        body = _decode_body(raw, "api.PullRequest")
        _check_types(body, "api.PullRequest", {"model": str, "name": str, "stream": bool})
        name = body.get("model") or body.get("name") or ""
        if not name or model_key(name) is None:
            raise _HTTPError(400, "invalid model name")
        self.fake.add_model(name)
        if body.get("stream") is False:
            self._send_json(200, {"status": "success"})
            return
        digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
        self._start_stream()
        for status in (
            {"status": "pulling manifest"},
            {"status": f"pulling {digest[7:19]}", "digest": digest, "total": 100, "completed": 100},
            {"status": "verifying sha256 digest"},
            {"status": "writing manifest"},
            {"status": "success"},
        ):
            self._stream_line(status)
        self._end_stream()

    def _delete(self, raw: bytes) -> None:
        body = _decode_body(raw, "api.DeleteRequest")
        _check_types(body, "api.DeleteRequest", {"model": str, "name": str})
        name = body.get("model") or body.get("name") or ""
        if not name or model_key(name) is None:
            raise _HTTPError(400, f"name {json.dumps(name)} is invalid")
        if not self.fake.remove_model(name):
            raise _HTTPError(404, f"model '{name}' not found")
        self._send_bytes(200, b"", "text/plain; charset=utf-8")
