"""A damaged index made readable again: set aside or dropped, then rebuilt from the files by
the sync that follows (`rag ingest DIR --verify`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from application.factory import App
from rag.errors import StoreError

log = logging.getLogger(__name__)


def readable_store(app: App, folder: Path, *, repair: bool) -> list[str]:
    """Make sure ``app.store`` can be read; rebuild it empty when it cannot (``repair``).

    Returns what was found and done, for the report. Without ``repair`` (a dry run) a damaged
    store is a ``StoreError`` that says to run ``--verify`` for real."""
    notes: list[str] = []
    try:
        store = app.store
    except StoreError as exc:  # cannot even be opened (a cut SQLite file)
        if not repair or app.settings.uses_chroma_server:
            raise StoreError(f"{exc} `rag ingest {folder} --verify` (without --dry-run) sets "
                             "it aside and rebuilds it from the files") from exc
        aside = _set_aside(app.settings.chroma_dir)
        app.__dict__.pop("store", None)
        store = app.store
        notes.append(f"verify: the index could not be opened ({exc}): moved to {aside} (delete "
                     "it once this run is done), rebuilding it from the files")
    else:
        try:
            store.probe()
        except StoreError as exc:
            if not repair:
                raise StoreError(f"the index is damaged ({exc}); `rag ingest {folder} --verify` "
                                 "(without --dry-run) rebuilds it from the files") from exc
            store.drop()
            notes.append(f"verify: the index could not be read ({exc}): dropped, rebuilding it "
                         "from the files")
    if notes:
        root = str(folder.resolve())
        others = sorted({r.root for r in app.manifest.records() if r.root != root
                         and r.status == "indexed"})
        if others:
            names = ", ".join(others[:3]) + (f" (+{len(others) - 3})" if len(others) > 3 else "")
            notes.append(f"verify: {len(others)} other folders were in that index: `rag ingest` "
                         f"each to index it again ({names})")
    return notes


def _set_aside(chroma_dir: Path) -> Path:
    """Rename a store Chroma cannot open, so a fresh one is made in its place."""
    aside = chroma_dir.with_name(f"{chroma_dir.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    chroma_dir.rename(aside)
    try:  # Chroma caches one client per path: forget the one that failed
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient.clear_system_cache()
    except Exception as exc:  # pragma: no cover - a Chroma without that cache
        log.debug("cannot clear Chroma's client cache: %s", exc)
    return aside
