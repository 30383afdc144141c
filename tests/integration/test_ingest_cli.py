"""What `rag ingest` shows and returns, through the installed console script: the progress bar,
the summary table, --dry-run, --json, --strict, passwords (option, sidecar, file) and --verify.
(A second ingest refused while one runs: test_ingest_crash.py.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import KNOWLEDGE_BASE, rag_env
from tests.integration.test_cli import RAG

pytestmark = pytest.mark.slow

PDF = next(KNOWLEDGE_BASE.glob("*.pdf"))


def ingest(folder: Path, *args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RAG, "ingest", str(folder), *args], capture_output=True, text=True,
                          env=rag_env(data_dir), timeout=600, check=False)


def _table(stdout: str) -> dict[str, tuple[int, str]]:
    """The summary table's outcome rows: name -> (count, detail)."""
    rows = {}
    for line in stdout.splitlines():
        match = re.fullmatch(r"  ([a-z-]+) +(\d+)(?:  (.*))?", line)
        if match:
            rows[match.group(1)] = (int(match.group(2)), match.group(3) or "")
    return rows


def _reasons(stdout: str) -> dict[str, int]:
    """The rows under "failed": failure reasons grouped by kind -> count."""
    out = {}
    for line in stdout.splitlines():
        match = re.fullmatch(r" {13} *(\d+)  (.+)", line)
        if match:
            out[match.group(2)] = int(match.group(1))
    return out


def _encrypted(path: Path, password: str) -> None:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=str(PDF))
    writer.encrypt(user_password=password, owner_password="owner", algorithm="AES-128")
    with path.open("wb") as fh:
        writer.write(fh)


def _text(name: str) -> str:
    return (KNOWLEDGE_BASE / name).read_text()


def test_progress_bar_and_summary_table_with_grouped_reasons(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(_text("user-guide.md"))
    (docs / "b.md").write_text(_text("rag-overview.md"))
    shutil.copy(PDF, docs / "handbook.pdf")
    (docs / "archive.zip").write_bytes(b"PK\x03\x04....")  # a type no loader reads
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    (docs / "empty.txt").write_text("")
    (docs / "binary.txt").write_bytes(b"\x00\x01\x02\x03" * 500)
    _encrypted(docs / "locked.pdf", "s3cret")
    data = tmp_path / "data"

    first = ingest(docs, data_dir=data)
    assert first.returncode == 0, first.stderr  # the run completed: per-file failures are not errors
    # The live bar on stderr: files, pages, chunks and the time left.
    bar = first.stderr.replace("\r", "\n")
    assert re.search(r"8/8 files, \d+ pages, \d+ chunks, \d+ embedded.*ETA \d\d:\d\d", bar), bar
    rows = _table(first.stdout)
    assert rows["indexed"] == (3, "a.md, b.md, handbook.pdf")
    assert rows["skipped"] == (1, "1 .zip")
    assert rows["failed"][0] == 4
    assert {k: rows[k][0] for k in ("updated", "unchanged", "removed")} == {
        "updated": 0, "unchanged": 0, "removed": 0}
    assert _reasons(first.stdout) == {"malformed PDF": 1, "encrypted": 1, "empty": 1,
                                      "binary content in a text file": 1}
    assert "failed: locked.pdf: encrypted: give the password with `rag ingest --password" \
        in first.stderr  # each failure, with what to do, on stderr
    assert first.stdout.splitlines()[-1].startswith("8 files: indexed 3, updated 0, unchanged 0,")

    (docs / "a.md").write_text(_text("user-guide.md") + "\n\n## Zebras\nZebras are striped.\n")
    (docs / "b.md").unlink()
    second = ingest(docs, "--quiet", data_dir=data)
    assert second.returncode == 0, second.stderr
    assert "ETA" not in second.stderr  # --quiet: no bar
    rows = _table(second.stdout)
    assert rows["updated"] == (1, "a.md")
    assert rows["unchanged"][0] == 1 and rows["removed"] == (1, "b.md")
    assert rows["indexed"][0] == 0 and rows["failed"][0] == 4  # failed files are not retried
    assert "removed: b.md" in second.stdout


def test_dry_run_says_what_it_would_do_and_changes_nothing(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(_text("user-guide.md"))
    (docs / "b.md").write_text(_text("rag-overview.md"))
    data = tmp_path / "data"
    assert ingest(docs, "--quiet", data_dir=data).returncode == 0

    (docs / "a.md").write_text(_text("user-guide.md") + "\n\nA new closing paragraph.\n")
    (docs / "b.md").unlink()
    (docs / "c.md").write_text(_text("embeddings-guide.md"))
    dry = ingest(docs, "--dry-run", data_dir=data)
    assert dry.returncode == 0, dry.stderr
    assert {"would add: c.md", "would update: a.md", "would remove: b.md"} <= set(
        dry.stdout.splitlines())
    assert dry.stdout.splitlines()[-1].startswith("2 files: would index 1, updated 1,")

    real = json.loads(ingest(docs, "--json", data_dir=data).stdout)  # the dry run left it all
    assert (real["indexed"], real["updated"], real["removed"]) == (["c.md"], ["a.md"], ["b.md"])


def test_json_report_and_strict_exit_codes(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(_text("user-guide.md"))
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    data = tmp_path / "data"

    out = ingest(docs, "--json", data_dir=data)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert set(report) == {"folder", "files", "pages", "chunks", "embedded", "indexed",
                           "updated", "unchanged", "removed", "skipped", "failed", "repointed",
                           "seconds", "dry_run", "ocr_pages"}
    assert report["folder"] == str(docs.resolve()) and report["files"] == 2
    assert report["ocr_pages"] == 0  # a Markdown file and a broken PDF: nothing to OCR
    assert report["indexed"] == ["a.md"] and report["chunks"] == report["embedded"] > 0
    assert list(report["failed"]) == ["broken.pdf"]
    assert report["failed"]["broken.pdf"].startswith("malformed PDF")
    assert "ETA" not in out.stderr  # no bar mixed into machine-read output

    strict = ingest(docs, "--json", "--strict", data_dir=data)
    assert strict.returncode == 1
    assert json.loads(strict.stdout)["failed"] == report["failed"]  # the report is still printed

    (docs / "broken.pdf").unlink()
    assert ingest(docs, "--strict", "--quiet", data_dir=data).returncode == 0


def test_passwords_by_option_sidecar_and_file_open_encrypted_pdfs(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    _encrypted(docs / "option.pdf", "s3cret")
    _encrypted(docs / "side.pdf", "beside")
    (docs / "side.pdf.password").write_text("beside\n")
    (docs / "sub").mkdir()
    _encrypted(docs / "sub" / "listed.pdf", "in a file")
    _encrypted(docs / "wrong.pdf", "right")
    passwords = tmp_path / "passwords.tsv"
    passwords.write_text("# file<TAB>password\nsub/listed.pdf\tin a file\n")
    data = tmp_path / "data"

    out = ingest(docs, "--json", "--password", "option.pdf=s3cret", "--password",
                 "wrong.pdf=nope", "--passwords-file", str(passwords), data_dir=data)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["indexed"] == ["option.pdf", "side.pdf", "sub/listed.pdf"]
    assert report["files"] == 4  # the sidecar is not a document
    assert report["failed"]["wrong.pdf"].startswith("encrypted: the password given does not open")

    search = subprocess.run([RAG, "search", "HNSW ef_search", "--json"], capture_output=True,
                            text=True, env=rag_env(data), timeout=300, check=False)
    hits = json.loads(search.stdout)
    assert hits[0]["source"] in report["indexed"] and hits[0]["page"] >= 1

    bad = ingest(docs, "--password", "option.pdf", data_dir=data)
    assert bad.returncode == 1 and "--password takes FILE=PASSWORD" in bad.stderr


def test_verify_reports_then_repairs_what_the_index_lost(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    docs = tmp_path / "kb"
    shutil.copytree(KNOWLEDGE_BASE, docs)
    data = tmp_path / "data"
    app = make_app(data)
    app.pipeline.sync(docs)
    app.pipeline.close()
    lost = app.manifest.get(str(docs.resolve()), "user-guide.md").chunk_ids[:2]
    app.store.delete(lost)

    check = ingest(docs, "--verify", "--dry-run", data_dir=data)
    assert check.returncode == 0, check.stderr
    assert "verify: 2 missing chunks in 1 files: would re-index user-guide.md" in check.stdout

    repair = ingest(docs, "--verify", "--quiet", data_dir=data)
    assert repair.returncode == 0, repair.stderr
    assert "verify: 2 missing chunks in 1 files: re-indexed user-guide.md" in repair.stdout
    assert _table(repair.stdout)["updated"] == (1, "user-guide.md")

    again = ingest(docs, "--verify", "--quiet", data_dir=data)
    assert "verify: manifest and index agree (4 files," in again.stdout
    assert "unchanged 4" in again.stdout.splitlines()[-1]


def test_watch_cannot_be_combined_with_dry_run(tmp_path: Path) -> None:
    out = ingest(tmp_path, "--watch", "--dry-run", data_dir=tmp_path / "data")
    assert out.returncode == 1
    assert out.stderr.strip() == ("error: --watch keeps the index in sync; run --dry-run or "
                                  "--verify without it")
