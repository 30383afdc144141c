"""Everything against a real Chroma server (`chroma run`): the path RAG_CHROMA_HOST selects."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.retriever import SearchOptions
from tests.conftest import closed_port, rag_env

pytestmark = [pytest.mark.slow, pytest.mark.server]

BIN = Path(sys.executable).parent
RAG = shutil.which("rag") or str(BIN / "rag")
QUESTION = "What is UMAP used for?"


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A `chroma run` on a free port with its own data folder; yields the port."""
    chroma = BIN / "chroma"
    if not chroma.exists():
        pytest.fail(f"{chroma} is missing: chromadb's console script belongs to the venv")
    folder = tmp_path_factory.mktemp("chroma-server")
    port = closed_port()
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        [str(chroma), "run", "--path", str(folder / "db"), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, cwd=folder,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"chroma run exited with {server.returncode}: "
                            f"{(folder / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat",
                                            timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("chroma run did not answer its heartbeat within 60 s")
            time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def server_chunks(port: int, source: str | None = None) -> list[str]:
    """Chunk ids the server itself holds (asked with Chroma's own client, not ours)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.HttpClient(host="127.0.0.1", port=port,
                                 settings=ChromaSettings(anonymized_telemetry=False))
    collection = client.get_collection("documents")
    return list(collection.get(where={"source": source} if source else None, include=[])["ids"])


def rag(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RAG, *args], capture_output=True, text=True,
                          env=rag_env(data_dir, **env), timeout=600, check=False)


def test_ingest_search_sync_and_delete_run_against_the_server(  # type: ignore[no-untyped-def]
    make_app, chroma_server: int, kb_copy: Path, tmp_path: Path
) -> None:
    port = chroma_server
    data_dir = tmp_path / "data"
    app = make_app(data_dir, chroma_host="127.0.0.1", chroma_port=port)
    assert app.store.location == f"Chroma server http://127.0.0.1:{port}"

    report = app.pipeline.sync(kb_copy)
    assert not report.failed and len(report.indexed) == 4
    assert len(server_chunks(port)) == report.chunks == app.store.count()
    assert not (data_dir / "chroma").exists()  # nothing went to an embedded store

    for mode in ("dense", "lexical", "hybrid"):
        hits = app.retriever.search(QUESTION, SearchOptions(k=3, mode=mode))
        assert hits[0].source == "embeddings-guide.md" and "UMAP" in hits[0].text, mode

    # a changed file is re-embedded alone; a removed file's chunks leave the server
    guide_before = set(server_chunks(port, "user-guide.md"))
    with (kb_copy / "user-guide.md").open("a", encoding="utf-8") as f:
        f.write("\n\n## Quokkas\n\nThe zorbleflux setting makes every answer mention quokkas.\n")
    (kb_copy / "rag-overview.md").unlink()
    again = app.pipeline.sync(kb_copy)
    assert again.updated == ["user-guide.md"] and again.removed == ["rag-overview.md"]
    assert sorted(again.unchanged) == ["embeddings-guide.md", "vector-search-handbook.pdf"]
    guide_after = set(server_chunks(port, "user-guide.md"))
    assert 0 < again.embedded <= len(guide_after - guide_before)
    assert server_chunks(port, "rag-overview.md") == []
    found = app.retriever.search("zorbleflux", SearchOptions(k=3, mode="lexical"))
    assert found and found[0].source == "user-guide.md" and "quokkas" in found[0].text
    assert "rag-overview.md" not in {
        h.source for h in app.retriever.search("What is retrieval-augmented generation?",
                                                SearchOptions(k=10))}

    # deleting a document (the library page's button) removes it from the server
    assert app.pipeline.delete_document(str(kb_copy.resolve()), "embeddings-guide.md")
    assert server_chunks(port, "embeddings-guide.md") == []
    for mode in ("dense", "lexical", "hybrid"):
        assert "embeddings-guide.md" not in {
            h.source for h in app.retriever.search(QUESTION, SearchOptions(k=5, mode=mode))}, mode
    app.pipeline.close()

    # the CLI takes the same path, from a data dir with no index of its own; the host may be
    # written as a URL, like RAG_OLLAMA_HOST
    fresh = tmp_path / "cli-data"
    for host in ("127.0.0.1", "http://127.0.0.1"):
        out = rag("search", "What does ef_search control?", "--k", "3", "--json",
                  data_dir=fresh, RAG_CHROMA_HOST=host, RAG_CHROMA_PORT=str(port))
        assert out.returncode == 0, out.stderr
        hits = json.loads(out.stdout)
        assert hits[0]["source"] == "vector-search-handbook.pdf"
        assert "ef_search" in hits[0]["text"]
    assert not (fresh / "chroma").exists()
    lexical = rag("search", "zorbleflux", "--mode", "lexical", "--json", data_dir=fresh,
                  RAG_CHROMA_HOST="127.0.0.1", RAG_CHROMA_PORT=str(port))
    assert lexical.returncode == 0, lexical.stderr
    assert [h["source"] for h in json.loads(lexical.stdout)] == ["user-guide.md"]


def test_unreachable_server_is_one_line_error_with_the_fix(tmp_path: Path) -> None:
    port = closed_port()
    out = rag("search", "anything", data_dir=tmp_path / "data",
              RAG_CHROMA_HOST="127.0.0.1", RAG_CHROMA_PORT=str(port))
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert f"chroma run --path DIR --host 127.0.0.1 --port {port}" in lines[0]
    assert "RAG_CHROMA_HOST" in lines[0]
