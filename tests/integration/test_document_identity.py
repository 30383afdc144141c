"""Which document a passage is from is not lost: two companies' reports say the same things in
the same words, and a question naming one company finds that company's passage although the
passage never names it (each chunk is embedded and indexed with its document's header). An
index built before headers existed gets them at its next sync, once."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.chunking import Chunker
from rag.retriever import SearchOptions

pytestmark = pytest.mark.slow

FILLER = [
    "Revenue is recognised when control of the goods passes to the customer.",
    "Inventories are stated at the lower of cost and net realisable value.",
    "Property and equipment are depreciated on a straight-line basis over their useful lives.",
    "Income taxes are accounted for under the asset and liability method.",
    "Leases are recognised as right-of-use assets and lease liabilities at commencement.",
    "Goodwill is tested for impairment once a year and whenever events indicate a loss.",
]
MARGIN = {
    "acme": "Gross margin was 41.2 percent, up from 39.8 percent a year earlier.",
    "globex": "Gross margin was 35.7 percent, down from 37.1 percent a year earlier.",
}


def _reports(folder: Path) -> Path:
    folder.mkdir()
    for name, title in (("acme", "Acme Corporation Quarterly Report"),
                        ("globex", "Globex Corporation Quarterly Report")):
        paragraphs = [title, *FILLER, MARGIN[name], *FILLER]
        (folder / f"{name}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return folder


def _ask(app, company: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    top = app.retriever.search(f"What was {company}'s gross margin?", SearchOptions(k=3))[0]
    return top.source, top.text


def _old_chunker(app) -> Chunker:  # type: ignore[no-untyped-def]
    """The chunker as it was before headers: the text alone."""
    s = app.settings
    return Chunker(app.embedder.count_tokens, chunk_size=s.chunk_size,
                   chunk_overlap=s.chunk_overlap, max_tokens=app.embedder.max_tokens,
                   headers=False)


def test_a_question_naming_the_company_finds_its_report(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    docs = _reports(tmp_path / "reports")
    app = make_app(chunk_size=24, chunk_overlap=0, ingest_workers=0)
    try:
        assert not app.pipeline.sync(docs).failed
    finally:
        app.pipeline.close()
    for company, name in (("Acme", "acme"), ("Globex", "globex")):
        source, text = _ask(app, company)
        assert source == f"{name}.txt" and MARGIN[name] in text
        assert f"{name} | " not in text  # what is shown and quoted is the document's own text


def test_an_index_built_without_headers_gets_them_once(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    docs = _reports(tmp_path / "reports")
    data = tmp_path / "data"
    old = make_app(data, chunk_size=24, chunk_overlap=0, ingest_workers=0)
    old.__dict__["chunker"] = _old_chunker(old)
    try:
        assert sorted(old.pipeline.sync(docs).indexed) == ["acme.txt", "globex.txt"]
    finally:
        old.pipeline.close()
    # the code before this change recorded no chunker version at all
    old.manifest._db.execute("DELETE FROM meta WHERE key LIKE 'chunks:%'")

    app = make_app(data, chunk_size=24, chunk_overlap=0, ingest_workers=0)
    try:
        first = app.pipeline.sync(docs)
        second = app.pipeline.sync(docs)
    finally:
        app.pipeline.close()
    assert first.updated == ["acme.txt", "globex.txt"] and first.embedded > 0
    assert second.unchanged == ["acme.txt", "globex.txt"] and second.embedded == 0
    root = str(docs.resolve())
    for name in ("acme", "globex"):
        row = app.manifest.get(root, f"{name}.txt")
        assert row is not None
        contexts = {meta.get("context") for _, _, meta, _ in app.store.records(row.chunk_ids)}
        assert contexts == {f"{name} | {name.capitalize()} Corporation Quarterly Report"}
        source, text = _ask(app, name.capitalize())
        assert source == f"{name}.txt" and MARGIN[name] in text
