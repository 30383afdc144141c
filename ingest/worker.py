"""Files are parsed in worker processes, each file under a time and a memory bound.

A pathological file (a decompression bomb, a page-tree loop, a parser bug that spins) must not
crash or stall an ingest. Each worker is a separate process, a fresh interpreter (the parent
has torch's threads running, so ``fork`` is unsafe), limited with ``RLIMIT_AS`` to
``memory_mb`` of address space, and given one file at a time; a worker that exceeds the time
bound is killed and replaced, and its file is reported as failed. Workers live across files,
so the start-up cost is paid once per pool. A worker that OCRs a scan tells the pool as each
page's OCR starts (``("page",)``), which restarts the file's clock: the time bound holds per page
there, so a long scan is not cut off while each of its pages is read in time.

``LoaderPool.load`` keeps every worker busy with the next file while the caller consumes the
previous result (it embeds in the parent), so parsing overlaps embedding; at most one result
per worker waits in a pipe, which keeps memory bounded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from rag.errors import LoaderError
from rag.types import Document

log = logging.getLogger(__name__)

_PROJECT_ROOT = Path(__file__).resolve().parent.parent  # where ``ingest`` and ``rag`` live
_STARTUP_TIMEOUT = 60.0  # seconds for a loader interpreter to start, on a loaded machine


@dataclass(frozen=True)
class LoadTask:
    """One file to read; ``password`` for encrypted PDFs."""

    path: Path
    source: str
    password: str | None = None


@dataclass
class LoadResult:
    task: LoadTask
    docs: list[Document] | None  # None when the file failed
    error: str = ""
    seconds: float = 0.0
    ocr_pages: int = 0  # pages read by OCR (scans without a text layer, images)


def load_documents(path: Path, source: str, password: str | None, *,
                   ocr: bool = True) -> tuple[list[Document], int]:
    """Read one file in this process (``LoaderError`` when it cannot be read); the documents
    and how many pages OCR read."""
    from ingest import ocr as ocr_pages
    from ingest.loaders import load_file

    with ocr_pages.recording() as pages:
        docs = load_file(path, source, password, ocr=ocr)
    return docs, len(pages)


# --- the worker process ------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when the ingest process dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker_main(conn: Connection, memory_mb: int, ocr: bool = True) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if memory_mb > 0:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    import ingest.loaders  # noqa: F401  (imported before "ready": start-up is not a file's time)
    from ingest import ocr as ocr_module

    ocr_module.on_page_start(lambda: conn.send(("page",)))
    conn.send(("ready",))
    while True:
        try:
            task: LoadTask = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone or closed the pool
        start = time.perf_counter()
        restart = False
        try:
            docs, ocred = load_documents(task.path, task.source, task.password, ocr=ocr)
            reply: tuple[Any, ...] = ("ok", [(d.text, d.page, d.heading) for d in docs], ocred)
        except LoaderError as exc:
            reason = str(exc)
            restart = "memory bound" in reason
            if restart:
                reason = f"exceeded the memory bound ({memory_mb} MB)"
            reply = ("error", reason, 0)
        except MemoryError:
            restart = True
            reply = ("error", f"exceeded the memory bound ({memory_mb} MB)", 0)
        except Exception as exc:  # a loader bug must not take the worker down silently
            reply = ("error", f"cannot read ({exc.__class__.__name__}: {exc})"[:300], 0)
        try:
            conn.send((*reply, time.perf_counter() - start))
        except MemoryError:
            restart = True
            conn.send(("error", f"exceeded the memory bound ({memory_mb} MB)", 0, 0.0))
        if restart:
            return  # a process that ran out of memory is not trusted with the next file


# --- the pool ----------------------------------------------------------------------------------


class _Worker:
    """A loader process: a fresh interpreter (``python -m ingest.worker``) on a socket pair.

    A fresh interpreter rather than ``multiprocessing``'s spawn: the parent has torch's threads
    running (``fork`` is unsafe), and spawn would re-import the caller's main module.
    """

    def __init__(self, memory_mb: int, ocr: bool = True) -> None:
        parent_sock, child_sock = socket.socketpair()
        env = dict(os.environ)
        # glibc reserves 64 MB of address space per thread arena; OCR runs threads, and the
        # worker's bound (RLIMIT_AS) counts reservations, not use.
        env.setdefault("MALLOC_ARENA_MAX", "2")
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ingest.worker", str(child_sock.fileno()), str(memory_mb),
             "1" if ocr else "0"],
            pass_fds=[child_sock.fileno()], stdin=subprocess.DEVNULL, env=env,
        )
        child_sock.close()
        self.conn = Connection(parent_sock.detach())
        self.task: LoadTask | None = None
        self.started = 0.0
        self.pages = 0  # pages of the current file whose OCR started
        self.ready = False
        # The kernel kills the worker when this *thread* ends (PR_SET_PDEATHSIG), so it is
        # only reused by the thread that started it (a UI runs each request in a new thread).
        # The Thread object, not its ident: a new thread often gets the ended one's ident.
        self.thread = threading.current_thread()

    def send(self, task: LoadTask) -> None:
        if not self.ready:  # the clock of a file starts once the interpreter is up
            if self.conn.poll(_STARTUP_TIMEOUT):
                with contextlib.suppress(EOFError, OSError):
                    self.ready = self.conn.recv() == ("ready",)
            if not self.ready:
                log.warning("an ingest loader process did not start within %s s",
                            _STARTUP_TIMEOUT)
        self.task, self.started, self.pages = task, time.monotonic(), 0
        # A dead worker: the pool sees its closed connection and reports the file.
        with contextlib.suppress(OSError):
            self.conn.send(task)

    def alive(self) -> bool:
        return self.process.poll() is None

    def exitcode(self) -> int | None:
        try:
            return self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.alive():
            self.process.kill()
        self.exitcode()
        self.conn.close()


class LoaderPool:
    """``workers`` long-lived loader processes; ``workers=0`` loads in this process, unbounded.

    ``ocr``: images and PDF pages without a text layer are read by OCR (``RAG_OCR``)."""

    def __init__(self, workers: int = 2, *, timeout: float = 120.0, memory_mb: int = 2048,
                 ocr: bool = True) -> None:
        self.workers = max(0, workers)
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.ocr = ocr
        self._idle: list[_Worker] = []

    def close(self) -> None:
        for worker in self._idle:
            worker.stop()
        self._idle.clear()

    def __enter__(self) -> LoaderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self) -> _Worker:
        """An idle worker this thread started and that still runs, else a new one."""
        me = threading.current_thread()
        while self._idle:
            worker = self._idle.pop()
            if worker.thread is me and worker.alive():
                return worker
            worker.stop()
        return _Worker(self.memory_mb, self.ocr)

    def load(self, tasks: Iterable[LoadTask]) -> Iterator[LoadResult]:
        """Results in completion order; every task gets exactly one result."""
        if self.workers == 0:
            yield from self._load_here(tasks)
            return
        todo = iter(tasks)
        busy: list[_Worker] = []

        def fill() -> bool:
            """Give idle capacity its next files; False once there are none left."""
            while len(busy) < self.workers:
                task = next(todo, None)
                if task is None:
                    return False
                worker = self._spawn()
                worker.send(task)
                busy.append(worker)
            return True

        more = True
        try:
            while True:
                more = more and fill()
                if not busy:
                    return
                now = time.monotonic()
                deadline = min(w.started for w in busy) + self.timeout
                ready = wait([w.conn for w in busy], timeout=max(0.0, deadline - now))
                finished: list[tuple[_Worker, LoadResult, bool]] = []
                for worker in busy:
                    if worker.conn in ready:
                        received = self._receive(worker)
                        if received is not None:
                            finished.append((worker, *received))
                    elif time.monotonic() - worker.started >= self.timeout:
                        assert worker.task is not None
                        what = (f"timed out: OCR of a page took more than {self.timeout:g} s"
                                if worker.pages else f"timed out after {self.timeout:g} s")
                        finished.append((worker, LoadResult(
                            worker.task, None, f"{what} (RAG_INGEST_FILE_TIMEOUT)",
                            self.timeout), False))
                for worker, _result, reusable in finished:
                    busy.remove(worker)
                    if reusable:
                        self._idle.append(worker)
                    else:
                        worker.stop()
                # Hand the freed workers their next files before the caller embeds.
                more = more and fill()
                for _, result, _ in finished:
                    yield result
        finally:
            for worker in busy:  # the caller stopped early: do not leave files half-read
                worker.stop()

    def _receive(self, worker: _Worker) -> tuple[LoadResult, bool] | None:
        """The worker's result and whether it can take another file; ``None`` when it only
        said that it starts OCR of a page (its clock starts again)."""
        task = worker.task
        assert task is not None
        try:
            reply = worker.conn.recv()
        except (EOFError, OSError):
            code = worker.exitcode()
            if code is not None and code < 0:
                try:
                    how = signal.Signals(-code).name
                except ValueError:
                    how = f"signal {-code}"
            else:
                how = f"exit code {code}"
            return LoadResult(task, None, f"the reader crashed ({how})",
                              time.monotonic() - worker.started), False
        if reply == ("page",):
            worker.started, worker.pages = time.monotonic(), worker.pages + 1
            return None
        status, payload, ocred, seconds = reply
        if status == "ok":
            docs = [Document(text=t, source=task.source, page=p, heading=h)
                    for t, p, h in payload]
            return LoadResult(task, docs, "", seconds, ocred), True
        alive = worker.alive() and "memory bound" not in payload
        return LoadResult(task, None, str(payload), seconds), alive

    def _load_here(self, tasks: Iterable[LoadTask]) -> Iterator[LoadResult]:
        for task in tasks:
            start = time.perf_counter()
            try:
                docs, ocred = load_documents(task.path, task.source, task.password, ocr=self.ocr)
            except LoaderError as exc:
                yield LoadResult(task, None, str(exc), time.perf_counter() - start)
                continue
            yield LoadResult(task, docs, "", time.perf_counter() - start, ocred)


if __name__ == "__main__":  # a loader process started by ``_Worker``
    _worker_main(Connection(int(sys.argv[1])), int(sys.argv[2]), sys.argv[3:4] != ["0"])
