"""Ingest against a real Chroma in a temp dir with the real embedding model."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import EmbedderMismatchError, IngestLockedError
from tests.conftest import KNOWLEDGE_BASE

pytestmark = pytest.mark.slow


def test_ingest_knowledge_base_indexes_every_file(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    report = app.pipeline.sync(KNOWLEDGE_BASE)
    files = sorted(p.name for p in KNOWLEDGE_BASE.iterdir() if p.is_file())
    assert sorted(report.indexed) == files
    assert not report.failed
    assert report.chunks == app.store.count() > 0
    assert report.embedded == report.chunks
    pdf_hits = app.retriever.search("HNSW ef_search parameter", 5)
    assert any(h.source.endswith(".pdf") and h.page is not None for h in pdf_hits)


def test_chunks_fit_the_embedding_model(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    app.pipeline.sync(KNOWLEDGE_BASE)
    texts = [text for _, text, _, _ in app.store.iter_all()]
    assert max(app.embedder.count_tokens(t) for t in texts) <= app.embedder.max_tokens


def test_rerun_syncs_changes_only(make_app, kb_copy: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    first = app.pipeline.sync(kb_copy)
    total = app.store.count()

    again = app.pipeline.sync(kb_copy)
    assert again.embedded == 0 and not again.indexed and not again.updated
    assert len(again.unchanged) == len(first.indexed)
    assert app.store.count() == total

    guide = kb_copy / "user-guide.md"
    guide.write_text(guide.read_text() + "\n\n## Zebra section\nZebras are striped horses.\n")
    (kb_copy / "rag-overview.md").unlink()
    changed = app.pipeline.sync(kb_copy)
    assert changed.updated == ["user-guide.md"]
    assert changed.removed == ["rag-overview.md"]
    assert 0 < changed.embedded < 10  # only the new text is embedded
    assert not app.store.ids_for_source("rag-overview.md")
    top = app.retriever.search("striped horses zebra", 1)[0]
    assert top.source == "user-guide.md" and "Zebras" in top.text
    ids = app.store.ids_for_source("user-guide.md")
    assert len(ids) == len(set(ids)) == len(app.manifest.get(str(kb_copy.resolve()),
                                                             "user-guide.md").chunk_ids)


def test_bad_file_is_reported_and_the_run_goes_on(make_app, kb_copy: Path) -> None:  # type: ignore[no-untyped-def]
    (kb_copy / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    (kb_copy / "image.png").write_bytes(b"\x89PNG....")
    report = make_app().pipeline.sync(kb_copy)
    assert "broken.pdf" in report.failed
    assert report.skipped == ["image.png"]
    assert "user-guide.md" in report.indexed


def test_dry_run_changes_nothing(make_app, kb_copy: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    report = app.pipeline.sync(kb_copy, dry_run=True)
    assert len(report.indexed) >= 3
    assert app.store.count() == 0 and report.embedded == 0


def test_a_different_embedder_is_refused(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    app.pipeline.sync(KNOWLEDGE_BASE)
    with pytest.raises(EmbedderMismatchError, match="RAG_EMBEDDING_MODEL"):
        app.store.check_embedder("intfloat/e5-small-v2", 384)
    assert app.store.count() > 0  # nothing lost


def test_second_ingest_is_refused_while_one_runs(tmp_path: Path) -> None:
    from ingest.lock import ingest_lock

    with (
        ingest_lock(tmp_path, "/docs"),
        pytest.raises(IngestLockedError, match="/docs"),
        ingest_lock(tmp_path, "/other"),
    ):
        pass
    with ingest_lock(tmp_path, "/other"):  # released after the first finished
        pass
