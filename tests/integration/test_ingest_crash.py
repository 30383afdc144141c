"""Crash safety and one writer: `rag ingest` killed with SIGKILL at several points, then run
again, leaves exactly the index of one clean run; the lock never stays stuck; searches work
while an ingest writes."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KNOWLEDGE_BASE, make_settings, rag_env
from tests.integration.test_cli import RAG

pytestmark = pytest.mark.slow


def _make_folder(folder: Path, files: int = 48, parts: int = 32) -> None:
    """Notes of varied content made from knowledge_base paragraphs, plus its PDF."""
    paragraphs = [p.strip() for f in sorted(KNOWLEDGE_BASE.glob("*.md"))
                  for p in f.read_text().split("\n\n") if len(p.strip()) > 80]
    folder.mkdir()
    for i in range(files):
        picked = [paragraphs[(i * 7 + k * 3) % len(paragraphs)] for k in range(parts)]
        body = "\n\n".join(f"{p} (note {i}, part {k})" for k, p in enumerate(picked))
        (folder / f"note-{i:02d}.md").write_text(f"# Note {i}\n\n{body}\n")
    pdf = next(KNOWLEDGE_BASE.glob("*.pdf"))
    (folder / pdf.name).write_bytes(pdf.read_bytes())


def _start(folder: Path, data_dir: Path, *args: str) -> subprocess.Popen[str]:
    # Small embedding calls, so files are committed one after another and the kills land
    # between commits (at the default pool of 512 chunks this folder is one call).
    return subprocess.Popen([RAG, "ingest", str(folder), "--quiet", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=rag_env(data_dir, RAG_INGEST_EMBED_POOL="32"))


def _rows(data_dir: Path) -> int:
    path = data_dir / "manifest.sqlite3"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM files").fetchone()[0])
    except sqlite3.Error:
        return 0


def _lock_holder(data_dir: Path) -> int | None:
    try:
        return int(json.loads((data_dir / "ingest.lock.json").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed child waits for init to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _kill_when(proc: subprocess.Popen[str], data_dir: Path, rows: int) -> list[int]:
    """SIGKILL ``proc`` once the manifest holds ``rows`` rows; its loader processes' pids."""
    deadline = time.monotonic() + 300
    while _rows(data_dir) < rows:
        assert proc.poll() is None, f"the ingest ended before {rows} rows: {proc.stderr}"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return workers


def _snapshot(data_dir: Path) -> tuple[dict[str, Any], list[tuple[Any, ...]], list[Any]]:
    """Chroma (id -> text, metadata), manifest rows and journal rows of a data dir."""
    from application.factory import build_store

    store = build_store(make_settings(data_dir))
    chunks = {cid: (text, meta) for cid, text, meta, _ in store.iter_all()}
    with sqlite3.connect(data_dir / "manifest.sqlite3") as db:
        rows = db.execute(
            "SELECT source, size, mtime_ns, content_hash, chunk_ids, status, reason, embedder,"
            " pages FROM files ORDER BY source").fetchall()
        journal = db.execute("SELECT * FROM journal").fetchall()
    return chunks, rows, journal


def test_sigkill_at_several_points_then_rerun_equals_a_clean_run(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "notes"
    _make_folder(folder)
    total = len(list(folder.iterdir()))
    clean_dir, crashed_dir = tmp_path / "clean", tmp_path / "crashed"
    clean = make_app(clean_dir).pipeline.sync(folder)
    assert not clean.failed and len(clean.indexed) == total

    # 1: killed after the first files were committed.
    workers = _kill_when(_start(folder, crashed_dir), crashed_dir, 1)
    deadline = time.monotonic() + 10
    while any(_running(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert workers and not any(_running(w) for w in workers), \
        "loader processes outlived the killed ingest"

    # 2: the lock is not stuck; while this run writes, a search works and a second
    # ingest is refused with a message naming the running one.
    running = _start(folder, crashed_dir)
    while _lock_holder(crashed_dir) != running.pid:  # the killed run's info file may linger
        assert running.poll() is None, running.stderr
        time.sleep(0.05)
    second = subprocess.run([RAG, "ingest", str(folder)], capture_output=True, text=True,
                            env=rag_env(crashed_dir), timeout=120, check=False)
    assert second.returncode == 1
    assert f"pid {running.pid}" in second.stderr and str(folder.resolve()) in second.stderr
    search = subprocess.run([RAG, "search", "What is HNSW?", "--json"], capture_output=True,
                            text=True, env=rag_env(crashed_dir), timeout=300, check=False)
    assert running.poll() is None, "the ingest finished before the search: make the folder larger"
    assert search.returncode == 0, search.stderr
    assert json.loads(search.stdout), "no hits while an ingest writes"
    _kill_when(running, crashed_dir, _rows(crashed_dir) + 1)

    # 3: killed again, later in the run.
    _kill_when(_start(folder, crashed_dir), crashed_dir, min(total - 5, _rows(crashed_dir) + 10))

    final = subprocess.run([RAG, "ingest", str(folder), "--json"], capture_output=True,
                           text=True, env=rag_env(crashed_dir), timeout=600, check=False)
    assert final.returncode == 0, final.stderr
    assert not json.loads(final.stdout)["failed"]

    chunks, rows, journal = _snapshot(crashed_dir)
    clean_chunks, clean_rows, _ = _snapshot(clean_dir)
    assert not journal
    assert len(chunks) == len(clean_chunks) == clean.chunks  # no duplicate, no orphan
    assert set(chunks) == set(clean_chunks)  # no missing chunk
    assert chunks == clean_chunks  # same texts and metadata
    assert rows == clean_rows  # manifest and Chroma agree as in the clean run

    verified = subprocess.run([RAG, "ingest", str(folder), "--verify"], capture_output=True,
                              text=True, env=rag_env(crashed_dir), timeout=600, check=False)
    assert verified.returncode == 0, verified.stderr
    assert "verify: manifest and index agree" in verified.stdout
    assert f"unchanged {total}" in verified.stdout.splitlines()[-1]
