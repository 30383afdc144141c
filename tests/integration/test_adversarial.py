"""Nothing lost, nothing leaks (issue 16): what a careless or hostile folder, a full or read-only
disk, a damaged store and bad arguments do to `rag`, as its user sees it.

Most tests run the installed `rag` in a subprocess. Those that need a small or read-only file
system mount a tmpfs, which needs root (they skip, saying why, where mounting is not allowed).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import KNOWLEDGE_BASE, rag_env
from tests.integration.test_cli import RAG

pytestmark = pytest.mark.slow

MB = 2**20


def run(*args: str, data_dir: Path | None, timeout: float = 600, cwd: Path | None = None,
        **env: str) -> subprocess.CompletedProcess[str]:
    environment = rag_env(data_dir or Path("unused"), **env)
    if data_dir is None and "RAG_DATA_DIR" not in env:
        del environment["RAG_DATA_DIR"]
    return subprocess.run([RAG, *args], capture_output=True, text=True, env=environment,
                          timeout=timeout, check=False, cwd=cwd)


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    """The single `error: ...` line a failed command must end with, and nothing else."""
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]


def notes(seed: int, size: int) -> str:
    """``size`` characters of prose-like text with a word found in no other file."""
    words = (KNOWLEDGE_BASE / "embeddings-guide.md").read_text().split()
    rng = random.Random(seed)
    lines, total = [f"Notes number {seed} mention the zorblax{seed} procedure.\n"], 0
    while total < size:
        line = " ".join(rng.choice(words) for _ in range(12)) + ".\n"
        lines.append(line)
        total += len(line)
    return "".join(lines)


@pytest.fixture
def tmpfs() -> Iterator[Callable[..., Path]]:
    """mount(path, size): a tmpfs of ``size`` at ``path``, unmounted after the test."""
    mounted: list[Path] = []

    def mount(path: Path, size: str = "15m") -> Path:
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("a small file system is mounted as root; this runs as another user")
        path.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            pytest.skip(f"mount is not permitted here: {out.stderr.strip()}")
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(mount: Path, leave: int) -> Path:
    """A file that takes all of ``mount`` but ``leave`` bytes."""
    filler = mount / "filler"
    size = shutil.disk_usage(mount).free - leave
    with filler.open("wb") as fh:
        os.posix_fallocate(fh.fileno(), 0, size)
    return filler


def status(data: Path) -> dict[str, object]:
    out = run("status", "--json", data_dir=data)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def search(data: Path, question: str, *args: str) -> list[dict[str, object]]:
    out = run("search", question, "--json", *args, data_dir=data)
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


# --- 1. anything that is not a regular file ----------------------------------------------------


def test_a_fifo_or_a_socket_in_the_folder_is_reported_never_opened(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(KNOWLEDGE_BASE / "rag-overview.md", docs / "a.md")
    os.mkfifo(docs / "fifo.txt")  # open() on it blocks until a writer comes: never
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(docs / "socket.md"))
    try:
        out = run("ingest", str(docs), "--json", data_dir=tmp_path / "data", timeout=240)
    finally:
        server.close()
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["indexed"] == ["a.md"]
    assert report["failed"]["fifo.txt"] == "a FIFO, not a regular file: not read"
    assert report["failed"]["socket.md"] == "a socket, not a regular file: not read"
    assert report["files"] == 3

    plain = run("ingest", str(docs), data_dir=tmp_path / "data", timeout=240)
    assert "failed: fifo.txt: a FIFO, not a regular file: not read" in plain.stderr


# --- 2. a full disk, a damaged store ----------------------------------------------------------


def test_a_full_disk_ends_in_one_line_and_the_index_keeps_what_it_held(
        tmp_path: Path, tmpfs: Callable[..., Path]) -> None:
    small = tmpfs(tmp_path / "small", "40m")
    data = small / "data"
    docs = tmp_path / "docs"
    shutil.copytree(KNOWLEDGE_BASE, docs)
    first = run("ingest", str(docs), "--json", data_dir=data)
    assert first.returncode == 0, first.stderr
    chunks = json.loads(first.stdout)["chunks"]
    for i in range(2):  # each takes ~3.5 MB in the store: more than is left
        (docs / f"notes-{i}.txt").write_text(notes(i, 250_000))
    filler = fill(small, leave=2 * MB)

    # (a small embedding pool: each file is written as soon as it is embedded)
    full = run("ingest", str(docs), "--quiet", data_dir=data, RAG_INGEST_EMBED_POOL="64")
    line = one_line_error(full)
    assert re.fullmatch(rf"error: disk full at {re.escape(str(data))} \(\d+\.\d MB free\): "
                        r"free \d+ MB and run again\. .*", line), line
    # What was indexed is still there and searchable; the new files are not recorded.
    state = status(data)
    assert (state["chunks"], state["documents"]) == (chunks, 4), state
    assert search(data, "What does ef_search control?")[0]["source"] == \
        "vector-search-handbook.pdf"
    dry = run("ingest", str(docs), "--dry-run", data_dir=data)
    assert {f"would add: notes-{i}.txt" for i in range(2)} <= set(dry.stdout.splitlines())

    filler.unlink()
    again = run("ingest", str(docs), "--json", data_dir=data)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["indexed"] == [f"notes-{i}.txt" for i in range(2)]
    assert search(data, "the zorblax1 procedure", "--k", "1")[0]["source"] == "notes-1.txt"


# `rag ingest` with the check for room before each file switched off: the write itself fails.
_UNCHECKED_INGEST = """
import sys
from ingest.pipeline import IngestPipeline
IngestPipeline.check_space = lambda self, text_bytes: None
from application.cli import main
sys.exit(main(["ingest", sys.argv[1], "--quiet"]))
"""


def test_a_write_that_hits_a_full_disk_is_reported_then_undone_and_redone(
        tmp_path: Path, tmpfs: Callable[..., Path]) -> None:
    """Past the check for room (another program filled the disk meanwhile), Chroma's own write
    fails: the error still says "disk full" and what to do, search and status answer (or say
    why not) instead of a traceback, and once there is room the next run leaves no trace of the
    half-written file (its journalled chunks are deleted) and indexes it whole."""
    small = tmpfs(tmp_path / "small", "15m")
    data = small / "data"
    docs = tmp_path / "docs"
    shutil.copytree(KNOWLEDGE_BASE, docs)
    assert run("ingest", str(docs), "--quiet", data_dir=data).returncode == 0
    (docs / "notes.txt").write_text(notes(7, 300_000))
    filler = fill(small, leave=MB + MB // 2)

    out = subprocess.run([sys.executable, "-c", _UNCHECKED_INGEST, str(docs)],
                         capture_output=True, text=True, env=rag_env(data), timeout=600,
                         check=False)
    assert re.fullmatch(r"error: disk full at .*: free \d+ MB and run again\. .*",
                        one_line_error(out))
    # Searches keep working, or, while Chroma cannot apply the write it logged, say why.
    found = run("search", "What does ef_search control?", data_dir=data)
    if found.returncode:
        assert "error: disk full at" in one_line_error(found)
    else:
        assert "vector-search-handbook.pdf" in found.stdout
    state = status(data)
    assert "chunks" in state or "disk full at" in str(state["store_error"])

    filler.unlink()
    again = run("ingest", str(docs), "--json", data_dir=data)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["indexed"] == ["notes.txt"]
    with sqlite3.connect(data / "manifest.sqlite3") as db:
        listed = sum(len(json.loads(ids)) for (ids,) in db.execute("SELECT chunk_ids FROM files"))
    assert status(data)["chunks"] == listed  # no half-written file left over
    assert search(data, "the zorblax7 procedure", "--k", "1")[0]["source"] == "notes.txt"


_SMALL_SYNC = """
import sys, chromadb
from chromadb.config import Settings
client = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False))
client.create_collection("documents", metadata={
    "hnsw:space": "cosine", "hnsw:sync_threshold": 10, "hnsw:batch_size": 10,
    "embedder": "sentence-transformers/all-MiniLM-L6-v2", "dimension": 384})
"""


def _small_sync_threshold(chroma: Path) -> None:
    """Chroma writes its HNSW files every 1,000 chunks (below, a reader rebuilds the graph from
    its log and a cut file goes unnoticed): the collection is made to write them every 10, so
    the knowledge base's 82 chunks are enough to damage them."""
    subprocess.run([sys.executable, "-c", _SMALL_SYNC, str(chroma)], check=True, timeout=120)


def _truncate_hnsw(chroma: Path) -> None:
    segments = [p for p in chroma.iterdir() if p.is_dir()]
    assert segments
    for segment in segments:
        for f in segment.iterdir():
            with f.open("r+b") as fh:
                fh.truncate(min(f.stat().st_size, 8192) // 2)


def _truncate_sqlite(chroma: Path) -> None:
    with (chroma / "chroma.sqlite3").open("r+b") as fh:
        fh.truncate(8192)


@pytest.mark.parametrize("damage", [_truncate_hnsw, _truncate_sqlite], ids=["hnsw", "sqlite"])
def test_verify_rebuilds_a_damaged_store_from_the_files(
        tmp_path: Path, damage: Callable[[Path], None]) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(KNOWLEDGE_BASE, docs)
    data = tmp_path / "data"
    if damage is _truncate_hnsw:
        _small_sync_threshold(data / "chroma")
    first = run("ingest", str(docs), "--json", data_dir=data)
    assert first.returncode == 0, first.stderr
    chunks = json.loads(first.stdout)["chunks"]
    damage(data / "chroma")

    broken = run("search", "What does ef_search control?", data_dir=data)
    assert "--verify" in one_line_error(broken)  # says what to do

    fixed = run("ingest", str(docs), "--verify", "--quiet", data_dir=data)
    assert fixed.returncode == 0, fixed.stderr
    assert "Traceback" not in fixed.stderr
    assert "rebuilding it from the files" in fixed.stdout
    assert "verify: " in fixed.stdout and "missing chunks in 4 files: re-indexed" in fixed.stdout
    assert status(data)["chunks"] == chunks
    assert search(data, "What does ef_search control?")[0]["source"] == \
        "vector-search-handbook.pdf"
    again = run("ingest", str(docs), "--verify", "--quiet", data_dir=data)
    assert f"verify: manifest and index agree (4 files, {chunks} chunks)" in again.stdout


def test_a_plain_ingest_notices_a_store_that_lost_its_chunks(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(KNOWLEDGE_BASE, docs)
    data = tmp_path / "data"
    first = run("ingest", str(docs), "--json", data_dir=data)
    chunks = json.loads(first.stdout)["chunks"]
    shutil.rmtree(data / "chroma")

    again = run("ingest", str(docs), "--json", data_dir=data)
    assert again.returncode == 0, again.stderr
    assert sorted(json.loads(again.stdout)["updated"]) == sorted(
        p.name for p in KNOWLEDGE_BASE.iterdir())
    assert "indexing them again" in again.stderr
    assert status(data)["chunks"] == chunks


# --- 3. a folder that cannot be read ----------------------------------------------------------


def test_an_unreadable_subfolder_is_reported_and_its_documents_kept(  # type: ignore[no-untyped-def]
        make_app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """chmod 000 does not stop root (the tests run as root in CI): the listing fails instead."""
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    shutil.copy(KNOWLEDGE_BASE / "rag-overview.md", docs / "a.md")
    shutil.copy(KNOWLEDGE_BASE / "user-guide.md", docs / "sub" / "x.md")
    app = make_app()
    assert app.pipeline.sync(docs).indexed == ["a.md", "sub/x.md"]
    root = str(docs.resolve())
    chunks = app.store.count()

    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:
        if str(path).endswith("sub"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    report = app.pipeline.sync(docs)
    app.pipeline.close()
    assert report.removed == []
    assert report.failed == {"sub/": "cannot read the folder (Permission denied): the 1 "
                                     "documents indexed from it are kept; make it readable "
                                     "and run again"}
    assert report.unchanged == ["a.md"]
    assert app.manifest.get(root, "sub/x.md") is not None
    assert app.store.count() == chunks


# --- 4. links out of the folder ---------------------------------------------------------------


def test_links_out_of_the_folder_are_not_followed_unless_asked(tmp_path: Path) -> None:
    docs, outside = tmp_path / "docs", tmp_path / "outside"
    docs.mkdir()
    outside.mkdir()
    shutil.copy(KNOWLEDGE_BASE / "rag-overview.md", docs / "a.md")
    (docs / "inside.md").symlink_to(docs / "a.md")  # inside the folder: fine
    (docs / "passwd.txt").symlink_to("/etc/passwd")
    (outside / "secret.md").write_text("# Secret\n\nThe zorblax9 launch code is 1234.\n")
    (docs / "elsewhere").symlink_to(outside, target_is_directory=True)
    (docs / "loop").symlink_to(docs, target_is_directory=True)  # must not hang
    data = tmp_path / "data"

    out = run("ingest", str(docs), "--json", data_dir=data)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["indexed"] == ["a.md", "inside.md"]
    assert report["failed"]["passwd.txt"].startswith(
        "a link to /etc/passwd, outside the ingested folder: not followed (`rag ingest "
        "--follow-links` follows it)")
    assert report["failed"]["elsewhere"].startswith(
        f"a link to the folder {os.path.realpath(outside)}, outside the ingested folder")
    assert set(report["failed"]) == {"passwd.txt", "elsewhere"}
    assert not any("root:" in str(h["text"]) for h in search(data, "root:x:0:0 /bin/bash"))
    assert all(h["source"] != "elsewhere/secret.md" for h in search(data, "zorblax9 launch"))

    followed = run("ingest", str(docs), "--json", "--follow-links", data_dir=data)
    assert followed.returncode == 0, followed.stderr
    assert json.loads(followed.stdout)["indexed"] == ["elsewhere/secret.md", "passwd.txt"]
    assert search(data, "zorblax9 launch code", "--k", "1")[0]["source"] == "elsewhere/secret.md"

    back = run("ingest", str(docs), "--json", data_dir=data)  # without the flag: taken out again
    assert json.loads(back.stdout)["removed"] == ["elsewhere/secret.md", "passwd.txt"]


# --- 6. one line, not a traceback -------------------------------------------------------------


def test_a_data_dir_that_is_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    for args in (["status"], ["ingest", str(KNOWLEDGE_BASE)], ["search", "HNSW"]):
        line = one_line_error(run(*args, data_dir=afile))
        assert f"{afile} is a file, not a folder: set RAG_DATA_DIR to a folder" in line, line


def test_an_empty_data_dir_setting_is_refused_not_the_current_directory(tmp_path: Path) -> None:
    here = tmp_path / "here"
    here.mkdir()
    for args in (["status"], ["ingest", str(KNOWLEDGE_BASE)]):
        out = run(*args, data_dir=None, cwd=here, RAG_DATA_DIR="")
        assert "RAG_DATA_DIR: Value error, is empty: set it" in one_line_error(out)
    assert list(here.iterdir()) == []  # nothing written where the command ran
    usage = run("--data-dir", "", "status", data_dir=None, cwd=here)
    assert usage.returncode == 2 and "argument --data-dir: is empty" in usage.stderr


def test_a_read_only_data_dir_gives_one_line_errors_and_status_still_answers(
        tmp_path: Path, tmpfs: Callable[..., Path]) -> None:
    mount = tmpfs(tmp_path / "ro", "30m")
    data = mount / "data"
    assert run("ingest", str(KNOWLEDGE_BASE), "--quiet", data_dir=data).returncode == 0
    out = subprocess.run(["mount", "-o", "remount,ro", str(mount)], capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        pytest.skip(f"cannot remount read-only: {out.stderr.strip()}")

    state = status(data)
    assert state["documents"] == 4
    assert "is read-only" in str(state["store_error"])
    # Chroma writes to its store to open it at all: searching says what to do instead.
    line = one_line_error(run("search", "What does ef_search control?", data_dir=data))
    assert "is read-only" in line and "copy the data directory to a writable place" in line
    line = one_line_error(run("ingest", str(KNOWLEDGE_BASE), data_dir=data))
    assert "cannot write to the data directory" in line and "Read-only file system" in line


@pytest.mark.parametrize("k", ["-1", "0", "100000", "five"])
def test_k_outside_its_range_is_a_usage_error(tmp_path: Path, k: str) -> None:
    for command in ("search", "ask"):
        out = run(command, "What is HNSW?", "--k", k, data_dir=tmp_path / "data", timeout=60)
        assert out.returncode == 2, out.stderr
        assert "argument --k:" in out.stderr and "give 1 to 100" in out.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("question", ["", "   \n\t"])
def test_an_empty_question_is_a_usage_error_at_once(tmp_path: Path, question: str) -> None:
    for command in ("ask", "search"):
        out = run(command, question, data_dir=tmp_path / "data", timeout=60)
        assert out.returncode == 2, out.stderr
        assert "argument question: the question is empty" in out.stderr


def test_a_huge_question_names_the_length_limit(tmp_path: Path) -> None:
    question = "why " * 25_000  # 100,000 characters (one argument can hold 128 KiB)
    out = run("ask", question, data_dir=tmp_path / "data", timeout=60)
    assert out.returncode == 2
    assert "the question is 100,000 characters long; the limit is 4,000" in out.stderr
    assert "RAG_TOP_K" not in out.stderr


def test_control_characters_in_documents_and_names_reach_the_terminal_escaped(
        tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    evil = ("# Zorblax\n\nThe zorblax5 manual \x1b[2J\x1b]8;;http://attacker.example\x07click"
            "\x1b]8;;\x07 says\x1b[31m red \x1b[0m and \u202etxt.exe.\n")
    filler = (KNOWLEDGE_BASE / "rag-overview.md").read_text()  # a few escapes among text
    (docs / "evil.md").write_text(evil + "\n" + filler, encoding="utf-8")
    (docs / "two\nlines: indexed 99.md").write_text("# Forged\n\nA forged zorblax5 name.\n")
    (docs / "bad\x1b[31m.pdf").write_bytes(b"%PDF-1.4 not a pdf")
    data = tmp_path / "data"

    out = run("ingest", str(docs), data_dir=data)
    assert out.returncode == 0, out.stderr
    for stream in (out.stdout, out.stderr):
        assert "\x1b" not in stream
    assert "lines: indexed 99.md" not in [ln.strip() for ln in out.stdout.splitlines()]
    assert "two\\nlines: indexed 99.md" in out.stdout
    assert "failed: bad\\x1b[31m.pdf: malformed PDF" in out.stderr

    found = run("search", "zorblax5 manual", data_dir=data)
    assert found.returncode == 0, found.stderr
    assert "\x1b" not in found.stdout and "\u202e" not in found.stdout
    assert "\\x1b[2J" in found.stdout and "\\u202e" in found.stdout
    assert "two\\nlines: indexed 99.md" in found.stdout
    # an answer quoted from the documents (and its sources and evidence) is escaped too
    asked = run("ask", "What does the zorblax5 manual say?", "--extract", data_dir=data)
    assert asked.returncode == 0, asked.stderr
    assert "\x1b" not in asked.stdout and "\u202e" not in asked.stdout
    assert "zorblax5" in asked.stdout
    hits = search(data, "zorblax5 manual")  # JSON keeps the text as it is, escaped by JSON
    assert any("\x1b[2J" in str(h["text"]) for h in hits)
