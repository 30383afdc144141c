"""An unchanged folder is synced, and `rag status` answers, without Chroma or the model.

`rag ingest DIR` on a folder that did not change, and `rag status`, run as whole processes;
``python -X importtime`` lists every module a process imported, so a test can tell that neither
opened the store nor loaded the embedding stack (that is what made them take seconds). Changes
made after a shortcut run must still all be noticed. One ingest of the sample folder is shared
by the tests of this file, which run in order: the last one changes the folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import KNOWLEDGE_BASE, rag_env

# What an unchanged sync or `rag status` must not import: the store, the embedding model's
# libraries, the chunker's splitter and BM25.
HEAVY = ("chromadb", "onnxruntime", "openvino", "nncf", "torch", "transformers",
         "sentence_transformers", "tokenizers", "langchain_text_splitters", "langchain_core",
         "bm25s")


def rag(data: Path, *args: str, before: str = "") -> tuple[subprocess.CompletedProcess[str],
                                                           set[str]]:
    """`rag ARGS` as a process of its own (with ``before`` run first), and the top-level
    packages it imported."""
    code = (f"{before}\nimport sys, time\nfrom application.cli import main\n"
            "started = time.perf_counter()\ncode = main()\n"
            "print(f'in main: {time.perf_counter() - started}', file=sys.stderr)\n"
            "sys.exit(code)")
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *args],
                         capture_output=True, text=True, env=rag_env(data), cwd=data.parent,
                         timeout=600, check=False)
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0]
                for line in out.stderr.splitlines() if line.startswith("import time:")}
    out.stderr = "\n".join(ln for ln in out.stderr.splitlines()
                           if not ln.startswith("import time:"))
    return out, imported


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, object]]:
    """The sample folder, its data dir after one ingest, and that ingest's JSON report."""
    base = tmp_path_factory.mktemp("noop")
    docs, data = base / "docs", base / "data"
    shutil.copytree(KNOWLEDGE_BASE, docs)
    first, _ = rag(data, "ingest", str(docs), "--json")
    assert first.returncode == 0, first.stderr
    return docs, data, json.loads(first.stdout)


@pytest.mark.slow
def test_an_unchanged_folder_is_synced_without_the_store_or_the_model(
        indexed: tuple[Path, Path, dict[str, object]]) -> None:
    docs, data, _ = indexed
    again, imported = rag(data, "ingest", str(docs), "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["unchanged"] == sorted(p.name for p in KNOWLEDGE_BASE.iterdir())
    assert (report["indexed"], report["updated"], report["removed"]) == ([], [], [])
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


@pytest.mark.slow
def test_status_shows_the_chunks_without_opening_chroma(
        indexed: tuple[Path, Path, dict[str, object]]) -> None:
    _, data, first = indexed
    out, imported = rag(data, "status", "--json")
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["chunks"] == first["chunks"]
    assert status["index_embedder"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert status["documents"] == len(list(KNOWLEDGE_BASE.iterdir()))
    assert status["answer_mode"] == "extract" and "not reachable" in status["llm_reason"]
    # nothing listens at RAG_OLLAMA_HOST (a closed port): known without the Ollama client
    assert not imported & {*HEAVY, "ollama", "httpx"}, sorted(imported & {*HEAVY, "ollama"})


@pytest.mark.slow
def test_the_summary_time_starts_with_the_process(
        indexed: tuple[Path, Path, dict[str, object]]) -> None:
    """What runs before the CLI's main (the interpreter, its imports; here a pause of 3 s) is
    part of the time the summary reports, and the report is not longer than the process."""
    docs, data, _ = indexed
    started = time.monotonic()
    out, _ = rag(data, "ingest", str(docs), "--json", before="import time; time.sleep(3)")
    wall = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    seconds = json.loads(out.stdout)["seconds"]
    in_main = float(out.stderr.rsplit("in main: ", 1)[1].split()[0])
    # the time before main is counted (at least the pause, less /proc's 10 ms ticks)
    assert seconds - in_main >= 2.9 and seconds <= wall, (seconds, in_main, wall)


@pytest.mark.slow
def test_changes_after_the_shortcut_are_all_noticed(
        indexed: tuple[Path, Path, dict[str, object]]) -> None:
    """Edited, added, removed and touched files, and a store that lost one file's chunks
    behind the manifest's back (deleted through Chroma, the collection kept): one sync sees
    them all, and the run after it takes the shortcut again."""
    docs, data, _ = indexed
    with (docs / "rag-overview.md").open("a") as fh:
        fh.write("\n\nA paragraph added later about the zorblax procedure.\n")
    (docs / "user-guide.md").unlink()
    shutil.copy(KNOWLEDGE_BASE / "user-guide.md", docs / "notes.md")
    pdf = docs / "vector-search-handbook.pdf"
    os.utime(pdf, ns=(pdf.stat().st_atime_ns, pdf.stat().st_mtime_ns + 10**9))
    lose = (f"import chromadb; c = chromadb.PersistentClient(path={str(data / 'chroma')!r})"
            ".get_collection('documents'); c.delete(where={'source': 'embeddings-guide.md'}); "
            "print(c.count())")
    lost = subprocess.run([sys.executable, "-c", lose], capture_output=True, text=True,
                          env=rag_env(data), timeout=300, check=True)
    status, _ = rag(data, "status", "--json")
    assert json.loads(status.stdout)["chunks"] == int(lost.stdout)  # the store's own count

    synced, _ = rag(data, "ingest", str(docs), "--json")
    assert synced.returncode == 0, synced.stderr
    report = json.loads(synced.stdout)
    assert report["updated"] == ["embeddings-guide.md", "rag-overview.md"]
    assert report["removed"] == ["user-guide.md"]
    assert report["indexed"] == ["notes.md"]  # the removed file's bytes: its chunks re-used
    assert report["unchanged"] == ["vector-search-handbook.pdf"]
    assert "indexing them again" in synced.stderr

    again, imported = rag(data, "ingest", str(docs), "--json")
    report = json.loads(again.stdout)
    assert sorted(report["unchanged"]) == sorted(p.name for p in docs.iterdir())
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
