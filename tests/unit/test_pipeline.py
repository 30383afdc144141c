"""IngestPipeline with the counting embedder over a real embedded Chroma: a sync embeds only
chunk texts it has not embedded before, and deletes what is gone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from application.factory import App
from tests.conftest import make_settings
from tests.fakes import CountingEmbedder

# Each paragraph is 13-17 tokens: with RAG_CHUNK_SIZE=20 and no overlap, one chunk each.
PARAGRAPHS = [
    "HNSW builds a layered graph of the vectors and searches it greedily from the top layer.",
    "The ef_search parameter sets how many candidates the search keeps while it descends.",
    "Product quantisation splits each vector into parts and stores a code for every part.",
    "Cosine similarity compares the directions of two vectors and ignores their lengths.",
]


def _text(paragraphs: list[str]) -> str:
    return "\n\n".join(paragraphs) + "\n"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    app = App(make_settings(tmp_path / "data", ingest_workers=0, chunk_size=20,
                            chunk_overlap=0))
    app.__dict__["embedder"] = CountingEmbedder()
    yield app
    app.pipeline.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "vectors.md").write_text(_text(PARAGRAPHS))
    (docs / "notes.txt").write_text("Recall is the share of the true neighbours a search finds.")
    return docs


def _embedder(app: App) -> CountingEmbedder:
    embedder = app.embedder
    assert isinstance(embedder, CountingEmbedder)
    return embedder


def _texts(app: App, source: str) -> list[str]:
    return sorted(c.text for c in app.store.get(app.store.ids_for_source(source)))


def test_second_sync_embeds_nothing(app: App, folder: Path) -> None:
    first = app.pipeline.sync(folder)
    assert sorted(first.indexed) == ["notes.txt", "vectors.md"] and not first.failed
    embedder = _embedder(app)
    assert embedder.documents_embedded == first.embedded == first.chunks == app.store.count()
    assert len(_texts(app, "vectors.md")) == len(PARAGRAPHS)  # one chunk per paragraph

    again = app.pipeline.sync(folder)
    assert sorted(again.unchanged) == ["notes.txt", "vectors.md"]
    assert again.embedded == 0 and embedder.documents_embedded == first.embedded
    assert app.store.count() == first.chunks


def test_changed_file_embeds_only_its_new_chunks(app: App, folder: Path) -> None:
    app.pipeline.sync(folder)
    embedder = _embedder(app)
    before = embedder.documents_embedded
    new = "Scalar quantisation stores every coordinate of a vector in a single byte instead."
    changed = [*PARAGRAPHS[:2], new, *PARAGRAPHS[3:]]
    (folder / "vectors.md").write_text(_text(changed))

    report = app.pipeline.sync(folder)
    assert report.updated == ["vectors.md"] and report.unchanged == ["notes.txt"]
    assert embedder.documents_embedded - before == report.embedded == 1
    assert embedder.embedded_texts[-1] == f"vectors\n{new}"  # the file's header, the text
    assert _texts(app, "vectors.md") == sorted(changed)  # the old paragraph's chunk is gone
    assert app.store.count() == len(changed) + 1


def test_removed_file_has_its_chunks_deleted(app: App, folder: Path) -> None:
    app.pipeline.sync(folder)
    assert _texts(app, "notes.txt")
    before = _embedder(app).documents_embedded
    (folder / "notes.txt").unlink()

    report = app.pipeline.sync(folder)
    assert report.removed == ["notes.txt"]
    assert app.store.ids_for_source("notes.txt") == []
    assert _texts(app, "vectors.md") == sorted(PARAGRAPHS)
    assert app.store.count() == len(PARAGRAPHS)
    assert _embedder(app).documents_embedded == before
