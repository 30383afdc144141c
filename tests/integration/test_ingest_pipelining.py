"""Ingest embeds one batch in a background thread while it chunks and writes the others
(ingest/run.py), with the real embedding model and a real Chroma in a temp dir."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.retriever import SearchOptions

pytestmark = pytest.mark.slow


class _Watched:
    """The session's embedder; ``during`` is set when a file is chunked while a batch embeds.
    ``fail_on``: the embedding call (1-based) that raises instead."""

    def __init__(self, inner: Any, *, fail_on: int = 0) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.max_tokens = inner.max_tokens
        self.batch_size = 32
        self.fail_on = fail_on
        self.calls = 0
        self.embedding = threading.Event()
        self.during = threading.Event()

    def count_tokens(self, text: str) -> int:
        return int(self.inner.count_tokens(text))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("the embedding model stopped")
        self.embedding.set()
        try:
            if self.calls == 1:  # the first batch waits until the next file is chunked
                self.during.wait(timeout=30)
            return np.asarray(self.inner.embed_documents(texts))
        finally:
            self.embedding.clear()

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self.inner.embed_query(text))


def _app(make_app, watched: _Watched, data_dir: Path):  # type: ignore[no-untyped-def]
    app = make_app(data_dir, ingest_embed_pool=1, ingest_workers=0)
    app.__dict__["embedder"] = watched
    chunk_documents = app.chunker.chunk_documents

    def chunk_and_watch(*args: Any, **kwargs: Any) -> Any:
        if watched.embedding.is_set():
            watched.during.set()
        return chunk_documents(*args, **kwargs)

    app.chunker.chunk_documents = chunk_and_watch
    return app


_TOPICS = [
    "The pump at the north station was serviced and its filter replaced.",
    "Clay roof tiles cracked in the frost and were replaced before the spring rains.",
    "The orchard's apple trees were pruned in February and gave a larger harvest.",
    "A violin's strings are tuned in fifths; the bow hair is rubbed with rosin.",
]


def _folder(tmp_path: Path, files: int) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for n, topic in enumerate(_TOPICS[:files]):
        (folder / f"note-{n}.md").write_text(f"# Note {n}\n\n{topic}\n")
    return folder


def test_the_next_files_are_chunked_while_a_batch_embeds(make_app, embedder,  # type: ignore[no-untyped-def]
                                                         tmp_path: Path) -> None:
    folder = _folder(tmp_path, 4)
    watched = _Watched(embedder)
    app = _app(make_app, watched, tmp_path / "data")
    report = app.pipeline.sync(folder)

    assert watched.during.is_set()  # chunking did not wait for the embedding
    assert sorted(report.indexed) == [f"note-{n}.md" for n in range(4)]
    assert report.embedded == report.chunks == app.store.count()
    hits = app.retriever.search("pruning apple trees in the orchard", SearchOptions(k=1, mode="dense"))
    assert hits and hits[0].source == "note-2.md"


def test_an_embedding_error_stops_the_run_and_a_rerun_completes_it(make_app, embedder,  # type: ignore[no-untyped-def]
                                                                   tmp_path: Path) -> None:
    folder = _folder(tmp_path, 4)
    data_dir = tmp_path / "data"
    watched = _Watched(embedder, fail_on=3)
    app = _app(make_app, watched, data_dir)
    with pytest.raises(RuntimeError, match="stopped"):
        app.pipeline.sync(folder)
    assert not [t for t in threading.enumerate() if t.name.startswith("rag-embed")]
    written = {r.source for r in app.manifest.records(str(folder.resolve()))
               if r.status == "indexed"}
    assert written and written < {f"note-{n}.md" for n in range(4)}  # what was written stays

    again = make_app(data_dir).pipeline.sync(folder)
    assert sorted(again.indexed) == sorted({f"note-{n}.md" for n in range(4)} - written)
    assert make_app(data_dir).store.count() == 4


class _Recorded(_Watched):
    """The session's embedder; ``sizes``: how many texts each embedding call was given."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.sizes: list[int] = []

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.sizes.append(len(texts))
        return np.asarray(self.inner.embed_documents(texts))


def test_an_idle_embedder_gets_the_first_file_without_waiting_for_a_full_pool(  # type: ignore[no-untyped-def]
        make_app, embedder, tmp_path: Path) -> None:
    # Three files of 80 sections each, far less than a pool (512 chunks): the first file goes
    # to the embedder as soon as it is chunked instead of after the last one is read.
    folder = tmp_path / "docs"
    folder.mkdir()
    for n in range(3):
        sections = [f"## Part {k}\n\n{_TOPICS[(n + k) % len(_TOPICS)]} Item {n}-{k}.\n"
                    for k in range(80)]
        (folder / f"manual-{n}.md").write_text(f"# Manual {n}\n\n" + "\n".join(sections))
    recorded = _Recorded(embedder)
    app = make_app(tmp_path / "data", ingest_workers=0)
    assert app.settings.ingest_embed_pool > 3 * 81
    app.__dict__["embedder"] = recorded
    report = app.pipeline.sync(folder)

    first = len(app.manifest.get(str(folder.resolve()), "manual-0.md").chunk_ids)
    assert first >= 64 and recorded.sizes[0] == first
    assert sum(recorded.sizes) == report.embedded == report.chunks == app.store.count()
    assert sorted(report.indexed) == [f"manual-{n}.md" for n in range(3)]
