"""What an embedded Chroma holds, read from its SQLite file without importing chromadb.

Importing chromadb and opening its client costs about a second of a command that has nothing
else to do: a sync that finds no change must still know that the store holds every chunk the
manifest lists, and `rag status` shows the count. Both read it here, read-only, from the
tables Chroma's metadata segment keeps (``collections``, ``collection_metadata``,
``segments``, ``embeddings``). The layout is Chroma's own, so any surprise (a missing table or
column, two collections of the name, a locked file) returns ``None`` and the caller opens
Chroma as before: this is a shortcut, never the only way to an answer. A test checks that the
count agrees with Chroma's ``count()`` for the installed version.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CollectionPeek", "peek_collection"]

SQLITE_FILE = "chroma.sqlite3"


@dataclass(frozen=True)
class CollectionPeek:
    """One collection as its files say: ``exists`` False when Chroma has no collection of
    that name (or no store at all yet)."""

    exists: bool
    count: int = 0
    embedder: str | None = None  # the model id recorded when the collection was created


def peek_collection(chroma_dir: Path, name: str) -> CollectionPeek | None:
    """The collection ``name`` of the embedded Chroma in ``chroma_dir``; ``None`` when its
    files cannot be read that way (open Chroma instead)."""
    path = chroma_dir / SQLITE_FILE
    if not chroma_dir.exists() or (chroma_dir.is_dir() and not path.exists()):
        return CollectionPeek(exists=False)  # never created, or deleted: nothing is stored
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return None
    try:
        rows = db.execute("SELECT id FROM collections WHERE name=?", (name,)).fetchall()
        if not rows:
            return CollectionPeek(exists=False)
        if len(rows) > 1:  # the name in several databases of one Chroma: not ours to pick
            return None
        (collection_id,) = rows[0]
        segments = db.execute(
            "SELECT id FROM segments WHERE collection=? AND scope='METADATA'", (collection_id,)
        ).fetchall()
        if len(segments) != 1:
            return None
        (count,) = db.execute("SELECT COUNT(*) FROM embeddings WHERE segment_id=?",
                              (segments[0][0],)).fetchone()
        meta = db.execute(
            "SELECT str_value FROM collection_metadata WHERE collection_id=? AND key='embedder'",
            (collection_id,)).fetchone()
        return CollectionPeek(exists=True, count=int(count),
                              embedder=str(meta[0]) if meta and meta[0] else None)
    except sqlite3.Error:  # another Chroma layout, a damaged or busy file: ask Chroma
        return None
    finally:
        db.close()
