"""The command-line contract, through the installed `rag` console script."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import KNOWLEDGE_BASE, rag_env

pytestmark = pytest.mark.slow

RAG = shutil.which("rag") or str(Path(sys.executable).parent / "rag")


def rag(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RAG, *args], capture_output=True, text=True,
                          env=rag_env(data_dir, **env), timeout=600, check=False)


def test_search_json_contract(kb_data_dir: Path) -> None:
    out = rag("search", "What is UMAP used for?", "--k", "3", "--json", data_dir=kb_data_dir)
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)
    assert len(hits) == 3
    assert {"source", "page", "score", "text"} <= set(hits[0])
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    assert hits[0]["source"] == "embeddings-guide.md"
    assert not Path(hits[0]["source"]).is_absolute()


def test_ask_json_extracts_when_only_the_bundled_model_is_left(kb_data_dir: Path) -> None:
    out = rag("ask", "What does ef_search control?", "--json", data_dir=kb_data_dir)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["mode"] == "extract" and answer["backend"] == "extract"
    assert answer["answer"].startswith("Quoted from the documents:")
    assert [s["n"] for s in answer["sources"]] == list(range(1, len(answer["sources"]) + 1))
    first = answer["sources"][0]
    assert {"source", "page", "score", "text", "n", "evidence"} <= set(first)
    assert first["source"] == "vector-search-handbook.pdf"
    evidence = first["evidence"][0]
    assert first["text"][evidence["start"]:evidence["end"]] == evidence["text"]
    assert "ef_search" in evidence["text"] and answer["unsupported"] == []


def test_ask_streams_then_lists_sources_with_their_evidence(kb_data_dir: Path) -> None:
    out = rag("ask", "What is retrieval-augmented generation?", data_dir=kb_data_dir)
    assert out.returncode == 0, out.stderr
    body, _, sources = out.stdout.partition("\nSources:\n")
    assert body.startswith("Quoted from the documents:")
    assert "[1] " in sources and ".md" in sources and "evidence: " in sources
    assert "For written answers run Ollama" in sources  # says how to get written answers


def test_ask_refuses_what_the_documents_do_not_say(kb_data_dir: Path) -> None:
    out = rag("ask", "What is the recipe for a Sachertorte with apricot jam?", "--json",
              data_dir=kb_data_dir)
    answer = json.loads(out.stdout)
    assert answer["refused"] and answer["sources"] == []


def test_ingest_prints_one_summary_line_and_syncs(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    shutil.copytree(KNOWLEDGE_BASE, kb)
    (kb / "broken.pdf").write_bytes(b"not a pdf")
    first = rag("ingest", str(kb), data_dir=tmp_path / "data")
    assert first.returncode == 0, first.stderr
    assert "failed: broken.pdf:" in first.stderr
    assert "failed 1" in first.stdout.splitlines()[-1]
    again = rag("ingest", str(kb), "--json", data_dir=tmp_path / "data")
    report = json.loads(again.stdout)
    assert report["embedded"] == 0 and len(report["unchanged"]) == len(list(kb.iterdir())) - 1
    strict = rag("ingest", str(kb), "--strict", data_dir=tmp_path / "data")
    assert strict.returncode == 1


def test_status_reports_backend_and_counts(kb_data_dir: Path) -> None:
    out = rag("status", "--json", data_dir=kb_data_dir, RAG_LLM_BACKEND="llamacpp",
              RAG_ANSWER_MODE="generate")
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["llm"].startswith("llamacpp:") and status["answer_mode"] == "generate"
    default = json.loads(rag("status", "--json", data_dir=kb_data_dir).stdout)
    assert default["answer_mode"] == "extract" and "SmolLM2-135M" in default["llm_reason"]
    assert status["chunks"] > 0 and status["documents"] >= 4
    assert status["index_embedder"] == "sentence-transformers/all-MiniLM-L6-v2"
    # what runs the embedder, and on which CPU (its vector extensions set the speed)
    assert default["embedding_backend"] == "openvino"
    assert f", {os.cpu_count()} cores, flags: " in default["cpu"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ingest", "/no/such/folder"), "is not a folder"),
        (("search", "anything"), "Run `rag ingest DIR` first"),
    ],
)
def test_errors_are_one_line_with_a_fix(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    out = rag(*args, data_dir=tmp_path / "empty")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_ollama_backend_unreachable_says_how_to_fix(kb_data_dir: Path) -> None:
    out = rag("ask", "What is HNSW?", data_dir=kb_data_dir, RAG_LLM_BACKEND="ollama")
    assert out.returncode == 1
    assert "ollama serve" in out.stderr and "RAG_OLLAMA_HOST" in out.stderr


@pytest.mark.parametrize("args", [("search", "anything"), ("ask", "anything"), ("status",)])
def test_a_missing_data_dir_is_refused_not_created(tmp_path: Path, args: tuple[str, ...]) -> None:
    missing = tmp_path / "missing"
    out = rag("--data-dir", str(missing), *args, data_dir=tmp_path / "env-data")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: the data folder {missing} does "
                                                   "not exist"), out.stderr
    assert not missing.exists() and not (tmp_path / "env-data").exists()


def test_ingest_creates_a_data_dir_only_under_an_existing_folder(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    deep = tmp_path / "typo" / "data"
    out = rag("--data-dir", str(deep), "ingest", str(kb), data_dir=tmp_path / "env-data")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"error: the data folder {deep} cannot be created: its parent {deep.parent} does not "
        "exist; check --data-dir or RAG_DATA_DIR"]
    assert not (tmp_path / "typo").exists()
    fresh = tmp_path / "data"
    out = rag("--data-dir", str(fresh), "ingest", str(kb), data_dir=tmp_path / "env-data")
    assert out.returncode == 0, out.stderr
    assert fresh.is_dir()


def test_ingest_table_names_every_file(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    names = [f"note-{i}.md" for i in range(5)]
    for i, name in enumerate(names):
        (kb / name).write_text(f"# Note {i}\n\nNote number {i} is about topic {i}.\n")
    out = rag("ingest", str(kb), "--quiet", data_dir=tmp_path / "data")
    assert out.returncode == 0, out.stderr
    assert "(+" not in out.stdout
    indexed = next(line for line in out.stdout.splitlines() if line.startswith("  indexed"))
    assert indexed.split() == ["indexed", "5", *(f"{n}," for n in names[:-1]), names[-1]]


def test_ingest_time_is_the_whole_run_and_names_the_first_run_export(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "a.md").write_text("# A\n\nA short note about vector search.\n")
    models = tmp_path / "models"  # no export yet: this run makes it
    out = rag("ingest", str(kb), "--quiet", data_dir=tmp_path / "data",
              RAG_MODELS_DIR=str(models))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    note = re.fullmatch(r"first run: exported and quantised the embedding model "
                        r"\((\d+\.\d) s\)", lines[-2])
    # Nothing but the summary: the quantiser's progress bars do not reach the terminal.
    assert not any(c in out.stdout + out.stderr for c in "━•"), out.stdout + out.stderr
    assert note, out.stdout
    total = re.search(r"; (\d+\.\d) s$", lines[-1])
    assert total, lines[-1]
    assert float(total.group(1)) >= float(note.group(1))  # the summary's time includes it
    again = rag("ingest", str(kb), "--quiet", data_dir=tmp_path / "data",
                RAG_MODELS_DIR=str(models))
    assert again.returncode == 0, again.stderr
    assert "first run" not in again.stdout  # the export is reused
