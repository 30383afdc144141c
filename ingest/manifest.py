"""What is indexed, by content hash: one SQLite row per file, in the data directory.

The manifest decides what a sync does (new, changed, unchanged, removed) and is committed only
after Chroma holds the file's chunks, so a crash leaves at worst a file that is processed again.
Before a file's chunks are written, the ids about to be written go into a journal row; the
manifest row and the journal's removal are one transaction. After a crash, the journal names
the chunks that may be in Chroma without a manifest row (the next sync deletes them), even if
the file itself has gone meanwhile.

Status: ``indexed`` (its chunks are searchable), ``skipped`` (a type no loader reads; listed
so the library can show it) or ``failed`` (``reason`` says why and what to do). ``ocr_pages``:
how many of an indexed file's pages were read by OCR (scans, images).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rag.disk import read_only

Status = Literal["indexed", "skipped", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    root TEXT NOT NULL,
    source TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    chunk_ids TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    embedder TEXT NOT NULL,
    pages INTEGER NOT NULL DEFAULT 0,
    ingested_at REAL NOT NULL,
    ocr_pages INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (root, source)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    root TEXT NOT NULL,
    source TEXT NOT NULL,
    chunk_ids TEXT NOT NULL,
    PRIMARY KEY (root, source)
);
"""


@dataclass
class FileRecord:
    root: str
    source: str
    size: int
    mtime_ns: int
    content_hash: str
    chunk_ids: list[str] = field(default_factory=list)
    status: Status = "indexed"
    reason: str = ""
    embedder: str = ""
    pages: int = 0
    ingested_at: float = 0.0
    ocr_pages: int = 0

    @property
    def path(self) -> Path:
        return Path(self.root) / self.source


class Manifest:
    """A small SQLite database; safe to read while an ingest writes (WAL mode)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.read_only = False
        try:
            self._db = sqlite3.connect(str(path), timeout=30, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(files)")}
            if "ocr_pages" not in columns:  # a manifest written before OCR
                self._db.execute(
                    "ALTER TABLE files ADD COLUMN ocr_pages INTEGER NOT NULL DEFAULT 0")
        except sqlite3.OperationalError:
            if not path.is_file() or not read_only(path.parent):
                raise
            # A read-only data directory (a read-only mount, another user's files): SQLite
            # cannot make the WAL's shared-memory file there, so the manifest is opened as an
            # immutable file. Status and the library read it; writing is refused.
            self._db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro&immutable=1",
                                       uri=True, isolation_level=None, check_same_thread=False)
            self.read_only = True

    def close(self) -> None:
        self._db.close()

    def get(self, root: str, source: str) -> FileRecord | None:
        row = self._db.execute(
            "SELECT * FROM files WHERE root=? AND source=?", (root, source)
        ).fetchone()
        return None if row is None else _record(row)

    def records(self, root: str | None = None) -> list[FileRecord]:
        if root is None:
            rows = self._db.execute("SELECT * FROM files ORDER BY root, source").fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM files WHERE root=? ORDER BY source", (root,)
            ).fetchall()
        return [_record(r) for r in rows]

    def by_hash(self, content_hash: str) -> Iterator[FileRecord]:
        """Indexed files (any folder) with these bytes: their chunks can be re-pointed."""
        rows = self._db.execute(
            "SELECT * FROM files WHERE content_hash=? AND status='indexed' ORDER BY root, source",
            (content_hash,),
        ).fetchall()
        return (_record(r) for r in rows)

    def put(self, rec: FileRecord) -> None:
        rec.ingested_at = rec.ingested_at or time.time()
        self._db.execute(
            "INSERT OR REPLACE INTO files (root, source, size, mtime_ns, content_hash, "
            "chunk_ids, status, reason, embedder, pages, ingested_at, ocr_pages) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (rec.root, rec.source, rec.size, rec.mtime_ns, rec.content_hash,
             json.dumps(rec.chunk_ids), rec.status, rec.reason, rec.embedder, rec.pages,
             rec.ingested_at, rec.ocr_pages),
        )

    def begin(self, root: str, source: str, chunk_ids: Sequence[str]) -> None:
        """Journal the chunk ids about to be written for ``source`` (see the module docstring)."""
        self._db.execute(
            "INSERT OR REPLACE INTO journal VALUES (?,?,?)",
            (root, source, json.dumps(list(chunk_ids))),
        )

    def commit(self, rec: FileRecord) -> None:
        """Write ``rec`` and clear its journal row, atomically."""
        rec.ingested_at = rec.ingested_at or time.time()
        with self._transaction():
            self.put(rec)
            self._db.execute("DELETE FROM journal WHERE root=? AND source=?",
                             (rec.root, rec.source))

    def journal(self, root: str) -> list[tuple[str, list[str]]]:
        rows = self._db.execute(
            "SELECT source, chunk_ids FROM journal WHERE root=? ORDER BY source", (root,)
        ).fetchall()
        return [(str(src), list(json.loads(ids))) for src, ids in rows]

    def clear_journal(self, root: str, sources: Sequence[str]) -> None:
        self._db.executemany(
            "DELETE FROM journal WHERE root=? AND source=?", [(root, s) for s in sources]
        )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def touch(self, root: str, source: str, size: int, mtime_ns: int) -> None:
        self._db.execute(
            "UPDATE files SET size=?, mtime_ns=? WHERE root=? AND source=?",
            (size, mtime_ns, root, source),
        )

    def remove(self, root: str, sources: Sequence[str]) -> None:
        self._db.executemany(
            "DELETE FROM files WHERE root=? AND source=?", [(root, s) for s in sources]
        )

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (key, value))

    def chunk_total(self) -> int:
        """Chunk ids listed by all rows (every folder): what the store should hold at least."""
        try:
            row = self._db.execute(
                "SELECT COALESCE(SUM(json_array_length(chunk_ids)), 0) FROM files").fetchone()
            return int(row[0])
        except sqlite3.OperationalError:  # an SQLite without its JSON functions
            rows = self._db.execute("SELECT chunk_ids FROM files WHERE chunk_ids != '[]'")
            return sum(len(json.loads(ids)) for (ids,) in rows)

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT status, COUNT(*) FROM files GROUP BY status").fetchall()
        return {str(status): int(n) for status, n in rows}


def _record(row: tuple[Any, ...]) -> FileRecord:
    return FileRecord(
        root=row[0], source=row[1], size=row[2], mtime_ns=row[3], content_hash=row[4],
        chunk_ids=json.loads(row[5]), status=row[6], reason=row[7], embedder=row[8],
        pages=row[9], ingested_at=row[10], ocr_pages=row[11] if len(row) > 11 else 0,
    )
