"""Dense, lexical and hybrid retrieval on real Chroma with the real embedding model."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.prompts import REFUSAL
from rag.retriever import SearchOptions

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("mode", "fusion"), [("dense", "convex"), ("lexical", "convex"),
                                             ("hybrid", "convex"), ("hybrid", "rrf")])
def test_every_mode_finds_the_file_that_answers(make_app, kb_data_dir, mode: str,  # type: ignore[no-untyped-def]
                                                fusion: str) -> None:
    app = make_app(kb_data_dir, fusion=fusion)
    hits = app.retriever.search("What is UMAP used for?", SearchOptions(k=3, mode=mode))
    assert hits and hits[0].source == "embeddings-guide.md"
    assert "UMAP" in hits[0].text
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    if mode == "hybrid":
        assert 0 < scores[-1] <= scores[0] <= 1.0


def test_source_glob_restricts_the_search(make_app, kb_data_dir) -> None:  # type: ignore[no-untyped-def]
    app = make_app(kb_data_dir)
    question = "How does HNSW search work?"
    markdown = app.retriever.search(question, SearchOptions(k=5, source_glob="*.md"))
    assert {h.source for h in markdown} <= {
        "embeddings-guide.md", "rag-overview.md", "user-guide.md"}
    pdf = app.retriever.search(question, SearchOptions(k=5, source_glob="*.pdf"))
    assert pdf and {h.source for h in pdf} == {"vector-search-handbook.pdf"}
    assert app.retriever.search(question, SearchOptions(k=5, source_glob="reports/*")) == []
    only = app.retriever.search(
        question, SearchOptions(k=5, mode="lexical", sources=("user-guide.md",)))
    assert {h.source for h in only} <= {"user-guide.md"}


def test_refusal_follows_the_best_cosine_whatever_the_mode(make_app, kb_data_dir) -> None:  # type: ignore[no-untyped-def]
    class NoLLM:
        name = "none"

        def stream(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise AssertionError("the LLM must not be asked when nothing relevant is retrieved")

    app = make_app(kb_data_dir)
    question = "What does ef_search control?"
    best = app.retriever.retrieve(question, SearchOptions(k=5, mode="hybrid")).best_cosine
    assert best is not None and 0.2 < best < 1.0

    strict = make_app(kb_data_dir, min_score=best + 0.01).chat_engine(NoLLM())
    answer = strict.ask(question, options=SearchOptions(mode="hybrid"))
    assert answer.refused and answer.text == REFUSAL and not answer.sources

    lenient = make_app(kb_data_dir, min_score=best - 0.01).chat_engine(NoLLM())
    assert lenient.retrieve(question, SearchOptions(mode="hybrid")).hits
    assert lenient.retrieve(question, SearchOptions(mode="lexical")).hits


def test_lexical_index_follows_adds_updates_and_deletes(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "birds.txt").write_text("The quetzal is a bird of the cloud forest.", encoding="utf-8")
    (docs / "fish.txt").write_text("The axolotl is a salamander that stays aquatic.")
    data_dir = tmp_path / "data"
    app = make_app(data_dir)
    app.pipeline.sync(docs)
    lexical = SearchOptions(k=5, mode="lexical")
    assert app.lexical.rebuilds == 1  # built by the ingest: the first question does not wait
    assert [h.source for h in app.retriever.search("quetzal", lexical)] == ["birds.txt"]
    assert app.lexical.rebuilds == 1

    (docs / "birds.txt").write_text("The hoatzin smells of manure and eats leaves.")
    (docs / "fish.txt").unlink()
    (docs / "moths.txt").write_text("The atlas moth has no mouth as an adult.")
    app.pipeline.sync(docs)
    assert app.retriever.search("quetzal", lexical) == []
    assert app.retriever.search("axolotl", lexical) == []
    assert [h.source for h in app.retriever.search("hoatzin", lexical)] == ["birds.txt"]
    assert app.retriever.search("atlas moth", lexical)[0].source == "moths.txt"

    # a new process opens the persisted index without rebuilding it
    again = make_app(data_dir)
    assert [h.source for h in again.retriever.search("hoatzin", lexical)] == ["birds.txt"]
    assert again.lexical.rebuilds == 0


def test_a_sync_reads_only_the_new_chunks_into_bm25(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """After a sync that adds, changes and deletes files, the lexical index reads and analyses
    only the chunks new to the collection (the others keep their saved terms) and scores every
    chunk exactly as an index built from scratch does; a heading renamed over unchanged text is
    searchable under its new name, a deleted file's words are unknown."""
    from rag.lexical import LexicalIndex

    docs = tmp_path / "docs"
    docs.mkdir()
    paragraphs = [f"Paragraph {i} of the {topic} notes: the {topic} survey counted {i} nests "
                  f"near the {place} ridge in spring." for i, (topic, place) in enumerate(
                      [("heron", "north"), ("osprey", "south"), ("kestrel", "east")] * 4)]
    for n in range(3):
        (docs / f"notes-{n}.md").write_text(
            f"# Survey {n}\n\nField notes.\n\n## Methods\n\n" + "\n\n".join(paragraphs[n::3])
            + "\n", encoding="utf-8")
    (docs / "ferns.txt").write_text("Bracken and hart's-tongue ferns line the gully walls.")
    app = make_app(tmp_path / "data", chunk_size=24, chunk_overlap=0)
    first = app.pipeline.sync(docs)
    assert app.lexical.analysed == first.chunks > 8  # the first build reads every chunk

    before = set(app.store.all_ids())
    (docs / "notes-1.md").write_text((docs / "notes-1.md").read_text().replace(
        "## Methods", "## Wetland census"), encoding="utf-8")  # a heading only, not the title
    (docs / "ferns.txt").unlink()
    (docs / "lichens.txt").write_text("Map lichens crust the granite boulders above the tarn.")
    app.pipeline.sync(docs)
    new = set(app.store.all_ids()) - before  # lichens.txt's, and notes-1.md's under the heading
    assert app.lexical.rebuilds == 2 and len(new) > 2
    assert app.lexical.analysed == len(new) < app.store.count()  # not every chunk again

    scratch = LexicalIndex(tmp_path / "scratch", app.store, app.lexical.params)
    for question in ("wetland census heron", "survey osprey nests", "lichens granite tarn",
                     "kestrel east ridge spring", "paragraph 7"):
        got = {h.id: h.score for h in app.retriever.lexical.search(question, 1000)}
        assert got and got == {h.id: h.score for h in scratch.search(question, 1000)}
    wetland = app.retriever.search("wetland census", SearchOptions(k=3, mode="lexical"))
    assert wetland and {h.source for h in wetland} == {"notes-1.md"}
    assert app.retriever.search("bracken ferns gully", SearchOptions(k=3, mode="lexical")) == []
    assert app.lexical.unknown_share({"bracken", "gulli"}) == 1.0


def test_langchain_retriever_serves_a_chain(make_app, kb_data_dir) -> None:  # type: ignore[no-untyped-def]
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import RunnableLambda

    app = make_app(kb_data_dir)
    from rag.langchain_retriever import as_langchain_retriever

    retriever = as_langchain_retriever(app.retriever, k=3)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("What does ef_search control?")
    assert len(docs) == 3 and all(isinstance(d, Document) for d in docs)
    assert docs[0].metadata["source"] == "vector-search-handbook.pdf"
    assert docs[0].metadata["page"] is not None and "ef_search" in docs[0].page_content
    # the file itself can be opened from the metadata
    assert (Path(docs[0].metadata["root"]) / docs[0].metadata["source"]).is_file()

    chain = retriever | RunnableLambda(lambda found: sorted({d.metadata["source"] for d in found}))
    assert chain.invoke("What is UMAP used for?")[0] == "embeddings-guide.md"
    pdf_only = as_langchain_retriever(app.retriever, k=5, source_glob="*.pdf")
    assert {d.metadata["source"] for d in pdf_only.invoke("UMAP")} <= {
        "vector-search-handbook.pdf"}


def test_bm25_reads_a_chunk_with_its_neighbours(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A chunk that gives a company's figure without naming the company is found by a question
    that names it, because the chunk before it does (RAG_BM25_WINDOW=1, the default)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "contoso.txt").write_text(
        "Contoso Limited, annual report. Contoso builds bicycles in Oslo.\n\n"
        "Quarterly revenue grew twelve percent, driven by electric models.\n\n"
        "The board meets twice a year in the harbour office by the fjord.\n")
    (docs / "fabrikam.txt").write_text(
        "Fabrikam Incorporated, annual report. Fabrikam makes kettles.\n\n"
        "Quarterly revenue fell three percent after the product recall.\n\n"
        "The board meets every month in a rented hall near the station.\n")
    question = "Contoso quarterly revenue"
    found = {}
    for window in (0, 1):
        app = make_app(tmp_path / f"data-{window}", chunk_size=16, chunk_overlap=0,
                       bm25_window=window, merge_neighbours=False)
        report = app.pipeline.sync(docs)
        assert report.chunks == 6  # one chunk per paragraph
        found[window] = app.retriever.search(question, SearchOptions(k=3, mode="lexical"))
    top2 = {w: [(h.source, h.text) for h in hits[:2]] for w, hits in found.items()}
    # with its neighbour read, the figure's chunk is Contoso's: Contoso's two chunks lead
    assert {source for source, _ in top2[1]} == {"contoso.txt"}
    assert any("twelve percent" in text for _, text in top2[1])
    # read alone, it is just "quarterly revenue", and Fabrikam's figure scores as high
    assert any(source == "fabrikam.txt" and "three percent" in text for source, text in top2[0])
