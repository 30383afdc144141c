"""What `rag status` prints and the UI's status page shows: where the index is, what it holds,
who answers and why."""

from __future__ import annotations

from typing import Any

from application.factory import App, store_location
from rag.errors import RagError
from rag.machine import cpu_summary


def collect_status(app: App) -> dict[str, Any]:
    """What `rag status` prints and the UI's status page shows."""
    s = app.settings
    status: dict[str, Any] = {
        "data_dir": str(s.data_dir.resolve()),
        "collection": s.collection,
        "embedding_model": s.embedding_model,
        "embedding_backend": s.embedding_backend,
        # the int8 embedder's speed depends on the CPU's vector extensions (AVX-512 VNNI or not)
        "cpu": cpu_summary(),
        "llm_backend_setting": s.llm_backend,
    }
    try:
        status["store"] = store_location(s)
        # An embedded store's count is read from its files: opening Chroma costs a second.
        peek = app.store_peek()
        if peek is not None:
            status["chunks"] = peek.count
            status["index_embedder"] = peek.embedder
        else:
            status["chunks"] = app.store.count()
            status["index_embedder"] = app.store.embedder_id()
    except RagError as exc:
        status["store_error"] = str(exc)
    counts = app.manifest.counts()
    status["documents"] = counts.get("indexed", 0)
    status["documents_failed"] = counts.get("failed", 0)
    try:
        choice = app.llm_choice
        status["answer_mode"] = choice.mode
        status["llm"] = choice.name
        status["llm_reason"] = choice.reason
    except RagError as exc:
        status["llm_error"] = str(exc)
    return status
