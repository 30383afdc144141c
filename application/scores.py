"""One relevance scale for every score the UI shows: the cosine similarity of the query and the
passage, as the embedding model and the index measure it.

Why this scale: a hybrid (fused) score is divided by the best one, so the top passage always
reads 1.00 however unrelated it is, and a BM25 score has no fixed range at all. The cosine of
the query's vector and the passage's stored vector means the same thing in every mode and on
every page: the explorer's "nearest passages" are ranked by it, and RAG_MIN_SCORE (default 0.2)
is the line below which the chat says the documents do not answer.

Both the chat page (its source cards) and the explorer (its tables) use these functions:

- ``similarities(embedder, store, query, chunks)``: each chunk's cosine to the query (None for
  a chunk whose vector is not in the index any more);
- ``with_similarity(...)``: the same chunks with ``score`` replaced by that cosine;
- ``similarity_text(score, min_score)``: how a score reads ("similarity 0.55", and "below the
  relevance threshold" under ``min_score``); ``SIMILARITY_HELP`` says what it means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from rag.embeddings import Embedder
from rag.store import ChromaStore
from rag.types import RetrievedChunk, Source

SIMILARITY_HELP = (
    "Cosine similarity of your question and the passage, as the embedding model measures "
    "meaning: 1 is the same meaning, about 0 unrelated. The same scale on every page; below "
    "RAG_MIN_SCORE a passage counts as unrelated.")


def similarities(embedder: Embedder, store: ChromaStore, query: str,
                 chunks: Sequence[RetrievedChunk]) -> list[float | None]:
    """The cosine of ``query`` and each chunk's stored vector, in order; None where the index
    no longer holds the chunk. A block of merged neighbours is measured by its first (best
    ranked) chunk, whose id it carries."""
    if not chunks or not query.strip():
        return [None] * len(chunks)
    vectors = store.vectors(list(dict.fromkeys(c.id for c in chunks)))
    q = np.asarray(embedder.embed_query(query), dtype=np.float32)
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    out: list[float | None] = []
    for c in chunks:
        v = vectors.get(c.id)
        if v is None:
            out.append(None)
            continue
        out.append(float(np.dot(q, v / max(float(np.linalg.norm(v)), 1e-12))))
    return out


def with_similarity(embedder: Embedder, store: ChromaStore, query: str,
                    chunks: Sequence[RetrievedChunk]) -> list[RetrievedChunk]:
    """``chunks`` with ``score`` set to their cosine to ``query`` (unchanged when unknown)."""
    return [c if s is None else replace(c, score=s)
            for c, s in zip(chunks, similarities(embedder, store, query, chunks), strict=True)]


def sources_with_similarity(embedder: Embedder, store: ChromaStore, query: str,
                            sources: Sequence[Source]) -> list[Source]:
    """An answer's sources with their chunks' ``score`` set to the cosine to ``query``."""
    chunks = with_similarity(embedder, store, query, [s.chunk for s in sources])
    return [replace(s, chunk=c) for s, c in zip(sources, chunks, strict=True)]


def similarity_text(score: float, min_score: float | None = None) -> str:
    """How a similarity reads in the UI: "similarity 0.55", with a note under ``min_score``."""
    text = f"similarity {score:.2f}"
    if min_score is not None and score < min_score:
        text += " (below the relevance threshold)"
    return text
