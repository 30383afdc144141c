"""Collections (knowledge bases) through the installed `rag` console script: `rag --collection NAME
ingest|search|status`, `rag collections` and `rag collections delete NAME`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import rag_env

pytestmark = pytest.mark.slow

RAG = shutil.which("rag") or str(Path(sys.executable).parent / "rag")

TIDES = ("# Tides of the Northern Bay\n\nThe harbour master records a spring tide of 5.2 metres "
         "at the Northern Bay pier. Neap tides there rarely exceed 2.1 metres.\n")
BEES = ("Beekeeping notes.\n\nA healthy colony of Carniolan bees overwinters on about eighteen "
        "kilograms of honey. The queen starts laying again in late January.\n")


def rag(*args: str, data_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RAG, "--data-dir", str(data_dir), *args], capture_output=True,
                          text=True, env=rag_env(data_dir), timeout=600, check=False,
                          input=stdin if stdin is not None else "")


def _sources(out: subprocess.CompletedProcess[str]) -> set[str]:
    assert out.returncode == 0, out.stderr
    return {hit["source"] for hit in json.loads(out.stdout)}


def _listed(data_dir: Path) -> dict[str, dict[str, object]]:
    out = rag("collections", "--json", data_dir=data_dir)
    assert out.returncode == 0, out.stderr
    return {c["name"]: c for c in json.loads(out.stdout)}


def test_two_collections_keep_their_documents_apart_and_delete_asks(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "sea").mkdir()
    (tmp_path / "sea" / "tides.md").write_text(TIDES)
    (tmp_path / "hives").mkdir()
    (tmp_path / "hives" / "bees.md").write_text(BEES)

    out = rag("ingest", str(tmp_path / "sea"), "--quiet", data_dir=data)
    assert out.returncode == 0, out.stderr
    out = rag("--collection", "bees", "ingest", str(tmp_path / "hives"), "--quiet",
              data_dir=data)
    assert out.returncode == 0, out.stderr
    assert "indexed         1  bees.md" in out.stdout

    # A search in one collection never returns the other's files, whatever it asks.
    honey = "How much honey does a colony need in winter?"
    assert _sources(rag("--collection", "bees", "search", honey, "--json", data_dir=data)) == {
        "bees.md"}
    assert _sources(rag("search", honey, "--json", data_dir=data)) == {"tides.md"}
    status = rag("--collection", "bees", "status", "--json", data_dir=data)
    assert json.loads(status.stdout)["collection"] == "bees"

    # The default collection keeps the files where a data folder kept them before collections.
    assert (data / "manifest.sqlite3").exists() and (data / "lexical" / "documents").is_dir()
    assert (data / "collections" / "bees" / "manifest.sqlite3").exists()

    listed = _listed(data)
    assert set(listed) == {"documents", "bees"}
    assert listed["bees"]["documents"] == 1 and listed["bees"]["chunks"] == 1
    assert listed["bees"]["embedder"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert listed["documents"]["current"] and not listed["bees"]["current"]
    table = rag("collections", data_dir=data)
    assert "documents *" in table.stdout and "bees" in table.stdout

    # Deleting asks first: "n" keeps it, no answer keeps it (and says --yes), "y" deletes.
    out = rag("collections", "delete", "bees", data_dir=data, stdin="n\n")
    assert out.returncode == 1
    assert "Delete collection 'bees' (1 document, 1 chunk)" in out.stderr
    assert "not deleted" in out.stderr
    out = rag("collections", "delete", "bees", data_dir=data, stdin="")
    assert out.returncode == 1 and "--yes" in out.stderr
    assert "bees" in _listed(data)
    out = rag("collections", "delete", "bees", data_dir=data, stdin="y\n")
    assert out.returncode == 0, out.stderr
    assert "deleted collection 'bees' (1 document, 1 chunk)" in out.stdout
    assert set(_listed(data)) == {"documents"}
    assert not (data / "collections" / "bees").exists()
    assert not (data / "lexical" / "bees").exists()
    out = rag("--collection", "bees", "search", honey, data_dir=data)
    assert out.returncode == 1 and "no collection 'bees'" in out.stderr
    assert _listed(data)["documents"]["chunks"] == 1  # the other collection is untouched

    out = rag("collections", "delete", "bees", "--yes", data_dir=data)
    assert out.returncode == 1 and "there is no collection 'bees'" in out.stderr
    out = rag("--collection", "no way", "status", data_dir=data)
    assert out.returncode == 2 and "cannot name a collection" in out.stderr


def test_a_collection_built_with_another_model_is_refused_clearly(tmp_path: Path) -> None:
    """Each collection records its embedding model; searching one built with another model
    with this one is refused in one line that says what to do."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    data = tmp_path / "data"
    client = chromadb.PersistentClient(path=str(data / "chroma"),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    client.create_collection("e5-papers", metadata={
        "hnsw:space": "cosine", "embedder": "intfloat/e5-small-v2", "dimension": 384})
    del client

    assert _listed(data)["e5-papers"]["embedder"] == "intfloat/e5-small-v2"
    out = rag("--collection", "e5-papers", "search", "anything", data_dir=data)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1
    assert "'e5-papers' was built with embedding model 'intfloat/e5-small-v2'" in out.stderr
    assert "Set RAG_EMBEDDING_MODEL=intfloat/e5-small-v2" in out.stderr


def test_a_data_folder_from_before_collections_is_the_default_collection(
        kb_data_dir: Path, tmp_path: Path, make_app: Any) -> None:
    """The layout the single-collection version wrote (Chroma collection "documents",
    DATA_DIR/manifest.sqlite3, DATA_DIR/uploads, DATA_DIR/lexical/documents) is read as the
    default collection: nothing to re-ingest, nothing moved; another collection beside it
    leaves it as it was."""
    from application.collections import collection_app, create_collection, list_collections
    from tests.conftest import KNOWLEDGE_BASE

    data = tmp_path / "data"
    shutil.copytree(kb_data_dir, data)
    app = make_app(data)
    assert app.settings.manifest_path == data / "manifest.sqlite3"
    assert app.settings.uploads_dir == data / "uploads"
    before = {r.source: r.chunk_ids for r in app.manifest.records()}
    [info] = list_collections(app)
    assert (info.name, info.documents, info.chunks) == (
        "documents", len(before), sum(len(c) for c in before.values()))

    other = create_collection(app, "notes")
    assert other.settings.manifest_path == data / "collections" / "notes" / "manifest.sqlite3"
    report = app.pipeline.sync(KNOWLEDGE_BASE)
    assert report.unchanged and not (report.indexed or report.updated or report.removed)
    assert {r.source: r.chunk_ids for r in app.manifest.records()} == before
    assert app.retriever.search("What does ef_search control?")[0].source == (
        "vector-search-handbook.pdf")
    assert collection_app(app, "notes").store.count() == 0


def test_a_collection_name_chroma_would_refuse_is_refused_in_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.config import load_settings
    from rag.errors import ConfigError

    for bad in ("a b", "x", "-lead", "two..dots", "ü" * 4):
        monkeypatch.setenv("RAG_COLLECTION", bad)
        with pytest.raises(ConfigError, match=r"RAG_COLLECTION: .*cannot name a collection"):
            load_settings()
    monkeypatch.setenv("RAG_COLLECTION", "research-papers.2024")
    assert load_settings().collection == "research-papers.2024"
