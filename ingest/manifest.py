"""What is indexed, by content hash: one SQLite row per file, in the data directory.

The manifest decides what a sync does (new, changed, unchanged, removed) and is committed only
after Chroma holds the file's chunks, so a crash leaves at worst a file that is processed again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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
    PRIMARY KEY (root, source)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
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

    @property
    def path(self) -> Path:
        return Path(self.root) / self.source


class Manifest:
    """A small SQLite database; safe to read while an ingest writes (WAL mode)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), timeout=30, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

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
        rows = self._db.execute(
            "SELECT * FROM files WHERE content_hash=? AND status='indexed'", (content_hash,)
        ).fetchall()
        return (_record(r) for r in rows)

    def put(self, rec: FileRecord) -> None:
        rec.ingested_at = rec.ingested_at or time.time()
        self._db.execute(
            "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (rec.root, rec.source, rec.size, rec.mtime_ns, rec.content_hash,
             json.dumps(rec.chunk_ids), rec.status, rec.reason, rec.embedder, rec.pages,
             rec.ingested_at),
        )

    def touch(self, root: str, source: str, size: int, mtime_ns: int) -> None:
        self._db.execute(
            "UPDATE files SET size=?, mtime_ns=? WHERE root=? AND source=?",
            (size, mtime_ns, root, source),
        )

    def remove(self, root: str, sources: Sequence[str]) -> None:
        self._db.executemany(
            "DELETE FROM files WHERE root=? AND source=?", [(root, s) for s in sources]
        )

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT status, COUNT(*) FROM files GROUP BY status").fetchall()
        return {str(status): int(n) for status, n in rows}


def _record(row: tuple[Any, ...]) -> FileRecord:
    return FileRecord(
        root=row[0], source=row[1], size=row[2], mtime_ns=row[3], content_hash=row[4],
        chunk_ids=json.loads(row[5]), status=row[6], reason=row[7], embedder=row[8],
        pages=row[9], ingested_at=row[10],
    )
