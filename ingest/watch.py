"""`rag ingest DIR --watch`: keep the index in sync with a folder until interrupted.

File-system events (watchdog: inotify on Linux, FSEvents on macOS, polling elsewhere) only say
*that* something changed; what changed is decided by an ordinary sync, which skips unchanged
files by size and time, so one sync per burst of events is cheap. Events are debounced: the
sync runs once the folder has been quiet for ``debounce`` seconds, so a file being copied or
saved in several writes is read once, complete.

A sync that fails as a whole (the folder unmounted or renamed, a Chroma server restarting, a
full disk) is reported and tried again after ``retry`` seconds or at the next change: the
watcher keeps running, and the index keeps what it held (a missing folder is an error, never
"every file removed").
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest.pipeline import IngestPipeline
from ingest.report import IngestReport
from rag.errors import RagError

log = logging.getLogger(__name__)


class _Changes:
    """Collects event times; ``wait_quiet`` returns when a burst of events has settled."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._last: float | None = None

    def touch(self) -> None:
        with self._cond:
            self._last = time.monotonic()
            self._cond.notify_all()

    def wait_quiet(self, debounce: float, stop: threading.Event,
                   timeout: float | None = None) -> bool:
        """True once events happened and none for ``debounce`` s, or after ``timeout`` s without
        events; False when ``stop`` is set."""
        give_up = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not stop.is_set():
                if self._last is None:
                    if give_up is not None and time.monotonic() >= give_up:
                        return True
                    self._cond.wait(timeout=0.2)
                    continue
                quiet_for = time.monotonic() - self._last
                if quiet_for >= debounce:
                    self._last = None
                    return True
                self._cond.wait(timeout=debounce - quiet_for)
        return False


def watch_folder(
    pipeline: IngestPipeline,
    folder: Path,
    *,
    debounce: float = 2.0,
    stop: threading.Event | None = None,
    on_sync: Callable[[IngestReport], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
    retry: float = 30.0,
    **sync_options: Any,
) -> None:
    """Sync ``folder`` now and after every settled burst of changes, until ``stop`` is set
    (or KeyboardInterrupt). A failed sync goes to ``on_error`` and is tried again after
    ``retry`` seconds, or sooner when something changes."""
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer

    stop = stop or threading.Event()
    changes = _Changes()

    class _Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if event.event_type in ("opened", "closed_no_write"):
                return  # reads, not changes
            names = [str(event.src_path), str(getattr(event, "dest_path", "") or "")]
            if all(Path(n).name.startswith(".") for n in names if n):
                return  # hidden files are not indexed
            changes.touch()

    observer = Observer()
    observer.schedule(_Handler(), str(folder), recursive=True)
    observer.start()

    def sync() -> bool:
        try:
            report = pipeline.sync(folder, **sync_options)
        except (RagError, OSError, sqlite3.Error) as exc:
            log.warning("sync of %s failed: %s; trying again in %g s", folder, exc, retry)
            if on_error:
                on_error(exc)
            return False
        if on_sync:
            on_sync(report)
        return True

    try:
        synced = sync()
        while changes.wait_quiet(debounce, stop, timeout=None if synced else retry):
            synced = sync()
    finally:
        observer.stop()
        observer.join(timeout=5)
