"""The command-line contract, through the installed `rag` console script."""

from __future__ import annotations

import json
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
