"""`rag eval beir`: index a BEIR corpus the way ingest would, run its queries, score the ranking.

Each corpus document is one document, its text the title line and the abstract and its
heading the title, as ingest reads a Markdown file that starts with ``# title``: every chunk
carries the title as its heading, which the lexical index reads with the chunk. Long documents
are chunked with the app's chunker and settings, and a document ranks where its best chunk
ranks. The index is kept under
the cache folder, keyed by the corpus bytes, the embedder and the chunking settings, so a second
run (another mode, other fusion weights) reuses it; passage vectors are cached by text as well.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from application.evaluation.beir_data import BeirDataset
from application.evaluation.embedding_cache import CachedEmbedder, embedder_identity
from application.evaluation.metrics import percentiles_ms, ranking_metrics
from rag.chroma_client import make_client
from rag.config import Settings
from rag.embeddings import Embedder
from rag.lexical import BM25Params, LexicalIndex
from rag.retriever import RetrievalConfig, Retriever, SearchOptions
from rag.store import ChromaStore
from rag.types import Document

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)
_CHUNKER_VERSION = 2  # bump when the chunks (texts, metadata) built for a corpus change
_UPSERT_BATCH = 2000


@dataclass
class BeirReport:
    dataset: str
    split: str
    queries: int
    documents: int
    chunks: int
    mode: str
    metrics: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)
    # each query's documents, best first (``rag eval beir --run-file``; not in to_dict)
    runs: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "queries": self.queries,
            "documents": self.documents,
            "chunks": self.chunks,
            "mode": self.mode,
            **{k: round(v, 4) for k, v in self.metrics.items()},
            "settings": self.settings,
        }


def index_key(
    dataset: BeirDataset, embedder: Embedder, settings: Settings, title_heading: bool = True
) -> str:
    spec = [dataset.fingerprint, embedder_identity(embedder), settings.chunk_size,
            settings.chunk_overlap, _CHUNKER_VERSION, title_heading]
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16]


def open_index(
    dataset: BeirDataset,
    embedder: Embedder,
    settings: Settings,
    cache_dir: Path,
    progress: Progress | None = None,
    *,
    title_heading: bool = True,
) -> tuple[ChromaStore, Path]:
    """The corpus in a Chroma collection under ``cache_dir``: reused when complete, else built.

    ``title_heading``: each document's title is also its heading (see the module docstring);
    off, the title is only the first line of the text (for comparison).
    """
    folder = cache_dir / f"beir-{index_key(dataset, embedder, settings, title_heading)}"
    done_marker = folder / "complete"
    if not done_marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    store = ChromaStore(make_client(path=str(folder / "chroma")), "beir", f"eval index {folder}")
    if done_marker.exists():
        store.check_embedder(embedder.model_id, embedder.dimension)
        return store, folder
    titles = dataset.titles if title_heading else {}
    _build_index(dataset, titles, embedder, settings, store, cache_dir, progress)
    done_marker.write_text(json.dumps({"documents": len(dataset.corpus)}), encoding="utf-8")
    return store, folder


def _build_index(
    dataset: BeirDataset,
    titles: dict[str, str],
    embedder: Embedder,
    settings: Settings,
    store: ChromaStore,
    cache_dir: Path,
    progress: Progress | None,
) -> None:
    from application.factory import build_chunker
    from ingest.chunking import text_hash

    chunker = build_chunker(settings, embedder)
    cached = CachedEmbedder(embedder, cache_dir / "embeddings.sqlite3")
    store.open_for_writing(embedder.model_id, embedder.dimension)
    total = len(dataset.corpus)
    pending = []
    for n, (doc_id, text) in enumerate(dataset.corpus.items(), start=1):
        doc = Document(text=text, source=doc_id, heading=titles.get(doc_id, ""))
        # No document header (ingest/identity.py): a corpus document is no file, its id no
        # name, and its title is already its heading and first line.
        pending.extend(chunker.chunk_documents([doc], root="beir", content_hash=text_hash(text),
                                               context=""))
        if len(pending) >= _UPSERT_BATCH or n == total:
            vectors = cached.embed_documents([c.embed_text for c in pending])
            store.upsert(pending, vectors)
            pending = []
            if progress:
                progress("indexing", n, total)
    cached.close()


def run_beir(
    dataset: BeirDataset,
    *,
    name: str,
    split: str,
    embedder: Embedder,
    settings: Settings,
    cache_dir: Path,
    config: RetrievalConfig,
    chunks_per_query: int = 300,
    progress: Progress | None = None,
    title_heading: bool = True,
) -> BeirReport:
    """Index (or reuse), run every judged query, and score the document rankings."""
    store, folder = open_index(dataset, embedder, settings, cache_dir, progress,
                               title_heading=title_heading)
    params = BM25Params(k1=settings.bm25_k1, b=settings.bm25_b, window=settings.bm25_window)
    lexical = LexicalIndex(folder / f"lexical-{params.k1}-{params.b}-w{params.window}", store, params)
    retriever = Retriever(store, embedder, lexical, config)
    if config.mode != "dense":
        lexical.ensure_current()  # built once, outside the timed queries
    options = SearchOptions(k=chunks_per_query)
    runs: dict[str, list[str]] = {}
    seconds: list[float] = []
    total = len(dataset.queries)
    for n, (qid, text) in enumerate(dataset.queries.items(), start=1):
        start = time.perf_counter()
        hits = retriever.retrieve(text, options).hits
        seconds.append(time.perf_counter() - start)
        runs[qid] = list(dict.fromkeys(h.source for h in hits))  # a document by its best chunk
        if progress and (n % 25 == 0 or n == total):
            progress("querying", n, total)
    metrics = ranking_metrics(runs, dataset.qrels) | percentiles_ms(seconds)
    return BeirReport(
        dataset=name,
        split=split,
        queries=total,
        documents=len(dataset.corpus),
        chunks=store.count(),
        mode=config.mode,
        metrics=metrics,
        settings={
            "embedding_model": embedder.model_id,
            "chunk_size": settings.chunk_size,
            "chunk_overlap": settings.chunk_overlap,
            "title_heading": title_heading,
            "fusion": config.fusion,
            "rrf_k": config.rrf_k,
            "dense_weight": config.dense_weight,
            "lexical_weight": config.lexical_weight,
            "candidates": max(config.candidates, chunks_per_query),
            "bm25_k1": params.k1,
            "bm25_b": params.b,
            "bm25_window": params.window,
            "mmr": config.mmr,
            "mmr_lambda": config.mmr_lambda,
            "merge_neighbours": config.merge_neighbours,
        },
        runs=runs,
    )
