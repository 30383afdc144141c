"""Valid files the textbook pipeline loses are not lost here: two Microsoft 10-Qs of the Docugami
SEC set stop pypdf with its default limits (``LimitReachedError: Reached maximum array element
count``); `rag ingest` indexes every page of both, each read in a worker under the default
memory bound, and a question from the set's qna_data.csv finds its source file."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from rag.retriever import SearchOptions
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.slow

SEC = SHARED_DATA / "docugami" / "sec-10-q" / "data" / "v1"
FILES = ("2023 Q1 MSFT.pdf", "2023 Q2 MSFT.pdf")


def _question(source: str) -> str:
    """The first single-document question of qna_data.csv about ``source``."""
    with (SEC / "qna_data.csv").open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["Source Docs"] == f"*{Path(source).stem}*":
                return row["Question"]
    raise AssertionError(f"no question about {source} in qna_data.csv")


def test_the_two_msft_10qs_pypdf_rejects_by_default_are_indexed(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if not all((SEC / "docs" / name).is_file() for name in FILES):
        pytest.skip(f"{SEC} is missing: the shared Docugami data set is not on this machine")
    import pypdf
    from pypdf.errors import LimitReachedError

    from ingest.pdf import _raised_limits

    total = {}
    for name in FILES:
        with pytest.raises(LimitReachedError):  # what the textbook pipeline runs into
            len(pypdf.PdfReader(str(SEC / "docs" / name)).pages)
        with pypdf.apply_configuration(_raised_limits()):
            total[name] = len(pypdf.PdfReader(str(SEC / "docs" / name)).pages)

    docs = tmp_path / "10q"
    docs.mkdir()
    for name in FILES:
        shutil.copy(SEC / "docs" / name, docs / name)
    app = make_app()
    assert app.settings.ingest_file_memory_mb == 2048  # the default bound, not a raised one
    try:
        report = app.pipeline.sync(docs)
    finally:
        app.pipeline.close()
    assert report.indexed == list(FILES) and not report.failed

    root = str(docs.resolve())
    for name in FILES:
        row = app.manifest.get(root, name)
        assert row is not None and row.status == "indexed" and row.pages >= 70
        pages = {meta["page"] for _, _, meta, _ in app.store.records(row.chunk_ids)}
        assert len(pages) == row.pages and total[name] - 2 <= max(pages) <= total[name]
        hits = app.retriever.search(_question(name), SearchOptions(k=5))
        assert name in {h.source for h in hits}, (name, [(h.source, h.page) for h in hits])
