"""A full disk: recognised in any library's exception, reported as one line that says what to do.

Chroma (its Rust core and SQLite), the manifest (SQLite) and plain file writes each say "disk
full" their own way: ``OSError(ENOSPC)``, ``sqlite3.OperationalError("database or disk is
full")``, or a ``chromadb.errors.InternalError`` whose text carries one of those.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import sqlite3
from pathlib import Path

from rag.errors import DiskFullError

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_FULL_TEXT = ("no space left on device", "database or disk is full", "disk quota exceeded",
              "disk is full", "os error 28")
# The store grows by roughly this much per byte of text it indexes (chunks overlap, each has a
# 384-float vector in SQLite and in the HNSW index, and a full-text index): measured 14x on
# plain text with the default chunking (2 MB of text took 28.7 MB); rounded up.
STORE_BYTES_PER_TEXT_BYTE = 16
# Kept free beyond a write's own need: SQLite's journal, Chroma's HNSW growing by a fifth at a
# time, the BM25 index saved after the sync.
RESERVE_MB = 8
# A store write or read that fails with less than this free is taken for a full disk: Chroma's
# Rust core says only "Failed to apply logs to the metadata segment" when SQLite ran out.
LOW_SPACE_BYTES = RESERVE_MB * 2**20


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc``, or anything in its chain of causes, says the disk is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL_ERRNOS:
            return True
        if isinstance(current, sqlite3.Error) and (
                getattr(current, "sqlite_errorcode", None) == getattr(sqlite3, "SQLITE_FULL", 13)):
            return True
        text = str(current).lower()
        if any(marker in text for marker in _FULL_TEXT):
            return True
        current = current.__cause__ or current.__context__
    return False


def read_only(path: Path) -> bool:
    """Whether ``path`` (or its nearest existing parent) cannot be written: a read-only mount, or
    no write permission for this user."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        return False
    return not os.access(path, os.W_OK)


def free_bytes(path: Path) -> int:
    """Free bytes on the file system that holds ``path`` (or its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0


def store_bytes_for(text_bytes: int) -> int:
    """About how many bytes the store needs to index ``text_bytes`` of text, headroom included."""
    return text_bytes * STORE_BYTES_PER_TEXT_BYTE + RESERVE_MB * 2**20


def disk_full_error(data_dir: Path, need_bytes: int = 0) -> DiskFullError:
    """The one-line error: where, how much is free, how much to free, what happens then."""
    free = free_bytes(data_dir)
    need = max(need_bytes, RESERVE_MB * 2**20)
    to_free = max(1, math.ceil((need - free) / 2**20)) if need > free else RESERVE_MB
    return DiskFullError(
        f"disk full at {Path(data_dir).absolute()} ({free / 2**20:.1f} MB free): free "
        f"{to_free} MB and run again. The index and the manifest keep what they held; files "
        "not written yet are indexed by that run."
    )
