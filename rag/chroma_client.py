"""Chroma's clients and failures: the embedded PersistentClient or the HttpClient of a server,
and Chroma's and the disk's exceptions translated into ``rag.errors`` that say what to do.

``make_client`` is the one place that knows which of the two clients is in use; ``store_error``
words a failure of either for the user (a full disk, a damaged local store, a server's log).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rag.disk import LOW_SPACE_BYTES, disk_full_error, free_bytes, is_disk_full, read_only
from rag.errors import StoreError

_CONNECT_TIMEOUT_S = 5.0


def server_address(host: str, port: int) -> tuple[str, int, bool]:
    """(host, port, TLS) of the server; ``host`` may be a bare name or a URL with its own port.

    ``RAG_CHROMA_HOST=http://chroma-box`` (written like ``RAG_OLLAMA_HOST``) must still use
    ``RAG_CHROMA_PORT``: Chroma's client would drop the port of a URL and dial port 80.
    """
    host = host.strip()
    if "://" not in host:
        return host, port, False
    parsed = urlsplit(host)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise StoreError(
            f"RAG_CHROMA_HOST={host!r} is not a host name or an http(s):// URL: set it to the "
            "Chroma server's name or address, e.g. chroma-box or http://chroma-box:8000."
        )
    return parsed.hostname, parsed.port or port, parsed.scheme == "https"


def make_client(*, path: str | None = None, host: str = "", port: int = 8000) -> Any:
    """A Chroma client with anonymized telemetry off; ``host`` selects the server path.

    Both clients expose the same collection API, so everything after this function is one code
    path for embedded and server Chroma.
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if host:
        name, port, tls = server_address(host, port)
        try:
            # Chroma's HTTP client waits forever on a host that drops packets: probe first.
            socket.create_connection((name, port), timeout=_CONNECT_TIMEOUT_S).close()
            client = chromadb.HttpClient(host=name, port=port, ssl=tls, settings=chroma_settings)
            client.heartbeat()
        except Exception as exc:
            raise StoreError(
                f"cannot reach the Chroma server at {name}:{port} ({exc}). Start it with "
                f"`chroma run --path DIR --host {name} --port {port}`, or unset RAG_CHROMA_HOST "
                "to use the embedded store."
            ) from exc
        return client
    if path is None:
        raise StoreError("no Chroma path given for the embedded store")
    try:
        return chromadb.PersistentClient(path=path, settings=chroma_settings)
    except Exception as exc:
        if read_only(Path(path)) or "readonly database" in str(exc):
            raise StoreError(
                f"the index in {path} is read-only, and Chroma writes to its store even to "
                "search it: make the folder writable, or copy the data directory to a "
                "writable place and point RAG_DATA_DIR there."
            ) from exc
        if is_disk_full(exc):
            raise disk_full_error(Path(path)) from exc
        raise StoreError(
            f"cannot open the Chroma store in {path} ({exc}). Check that the directory is "
            "writable and not used by a different Chroma version; RAG_DATA_DIR selects another; "
            "`rag ingest DIR --verify` rebuilds a damaged store from the files of DIR."
        ) from exc


def store_error(exc: Exception, doing: str, local: Path | None) -> StoreError:
    """Chroma's exception ``exc`` while it tried ``doing``, as a ``StoreError`` that says what to do.

    ``local`` is the directory of an embedded store (``None`` for a server): a full disk there is
    reported as such, and a damaged one points to ``rag ingest DIR --verify``.
    """
    if local is not None and (is_disk_full(exc) or free_bytes(local) < LOW_SPACE_BYTES):
        return disk_full_error(local.parent)
    what = " ".join(str(exc).split()) or exc.__class__.__name__
    if local is None:
        advice = "check the Chroma server's log"
    else:
        advice = ("if it persists, the store is damaged: `rag ingest DIR --verify` rebuilds "
                  "it from the files of DIR")
    return StoreError(f"Chroma failed to {doing} ({what}): {advice}")
