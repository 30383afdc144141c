"""One writer per data directory: an OS file lock, released by the kernel if the holder dies."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from rag.disk import disk_full_error, is_disk_full
from rag.errors import IngestError, IngestLockedError


@contextmanager
def ingest_lock(data_dir: Path, what: str) -> Iterator[None]:
    info_path = data_dir / "ingest.lock.json"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(data_dir / "ingest.lock"))
        lock.acquire(timeout=0)
    except Timeout:
        holder = "another ingest"
        try:
            info = json.loads(info_path.read_text())
            holder = (f"ingest of {info['what']} (pid {info['pid']} on {info['host']}, "
                      f"since {time.strftime('%H:%M:%S', time.localtime(info['started']))})")
        except (OSError, ValueError, KeyError):
            pass
        raise IngestLockedError(
            f"{data_dir} is being written by {holder}: wait for it to finish, or stop it; "
            "searches keep working meanwhile."
        ) from None
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full_error(data_dir) from exc
        raise IngestError(
            f"cannot write to the data directory {data_dir} ({exc.strerror or exc}): an ingest "
            "writes the index there; make it writable, or set RAG_DATA_DIR to a folder that is."
        ) from exc
    try:
        try:  # who holds the lock, for the message above; a full disk must not stop the run
            info_path.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                             "what": what, "started": time.time()}))
        except OSError:
            info_path.unlink(missing_ok=True)
        yield
    finally:
        info_path.unlink(missing_ok=True)
        lock.release()
