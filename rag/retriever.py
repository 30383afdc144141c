"""Question -> ranked chunks: dense (Chroma), lexical (BM25) or both fused.

Modes:
- ``dense``: cosine similarity of the query vector in Chroma; ``score`` is the cosine.
- ``lexical``: BM25 over the chunk texts; ``score`` is the BM25 score.
- ``hybrid``: both lists (``candidates`` each) fused, by default by score (``convex``: the
  weighted mean of each list's scores divided by its best), or by weighted reciprocal rank
  fusion (``rrf``); ``score`` is the fused score, at most 1 (1: first in both lists).

Whatever the mode, ``Retrieval.best_cosine`` is the cosine similarity of the best dense hit:
the relevance threshold (refusal) is kept on that one scale.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from rag.embeddings import Embedder
from rag.errors import ConfigError
from rag.fusion import (
    convex_fusion,
    maximal_marginal_relevance,
    merge_neighbours,
    reciprocal_rank_fusion,
)
from rag.lexical import LexicalHit, LexicalIndex
from rag.store import ChromaStore, Where
from rag.types import RetrievedChunk

log = logging.getLogger(__name__)

Mode = Literal["dense", "lexical", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "lexical", "hybrid")
Fusion = Literal["convex", "rrf"]


@dataclass(frozen=True)
class RetrievalConfig:
    """How to rank; see the ``RAG_RETRIEVAL_*`` settings for what each field does."""

    mode: Mode = "hybrid"
    candidates: int = 100
    fusion: Fusion = "convex"
    rrf_k: float = 60.0
    dense_weight: float = 0.65
    lexical_weight: float = 0.35
    mmr: bool = False
    mmr_lambda: float = 0.7
    merge_neighbours: bool = False


@dataclass(frozen=True)
class SearchOptions:
    """One search request, the same through the retriever, the chat engine, the CLI, the UI
    and the LangChain adapter; None everywhere means the retriever's own setting.

    ``k``: how many chunks (None: the retriever's ``default_k``, RAG_TOP_K in the app).
    ``mode``: dense, lexical or hybrid (None: ``config.mode``). ``sources`` (exact paths) and
    ``source_glob`` (``*`` also crosses folders) restrict the documents searched; ``where`` is
    a Chroma metadata filter. ``config``: how to rank (None: the retriever's ``config``).
    """

    k: int | None = None
    mode: Mode | None = None
    sources: tuple[str, ...] | None = None
    source_glob: str | None = None
    where: Where | None = None
    config: RetrievalConfig | None = None

    def __post_init__(self) -> None:
        if self.k is not None:
            check_k(self.k)
        if self.mode is not None:
            check_mode(self.mode)
        if self.sources is not None and not isinstance(self.sources, tuple):
            object.__setattr__(self, "sources", tuple(self.sources))  # a list given at runtime


@dataclass
class Retrieval:
    """What a search found, and how relevant the best of it is on the cosine scale."""

    query: str
    hits: list[RetrievedChunk] = field(default_factory=list)
    best_cosine: float | None = None  # None: nothing in the dense list


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise ConfigError(f"unknown retrieval mode {mode!r}: use one of {', '.join(MODES)}")
    return mode


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be a whole number of passages, 1 or more (got {k!r})")
    return k


def _sources_in_where(where: Where | None) -> list[str] | None:
    """``{"source": X}`` or ``{"source": {"$in": [...]}}`` as a list, else None."""
    if not where or set(where) != {"source"}:
        return None
    value = where["source"]
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping) and set(value) == {"$in"}:
        return [str(v) for v in value["$in"]]
    return None


def fuse(
    dense: Sequence[tuple[str, float]],
    lexical: Sequence[LexicalHit],
    cut: int,
    cfg: RetrievalConfig,
) -> list[tuple[str, float]]:
    """The two candidate lists (each cut at ``cut`` hits) as one ranking, best first."""
    weights = [cfg.dense_weight, cfg.lexical_weight]
    if cfg.fusion == "rrf":
        return reciprocal_rank_fusion([[cid for cid, _ in dense], [h.id for h in lexical]],
                                      weights, k=cfg.rrf_k)
    # a chunk outside the lexical list scored at most its last hit when the list was cut at
    # ``cut``, and 0 when it was shorter (only chunks sharing a term with the query score)
    lexical_floor = lexical[-1].score if len(lexical) >= cut else 0.0
    return convex_fusion([list(dense), [(h.id, h.score) for h in lexical]], weights,
                         floors=[None, lexical_floor])


class Retriever:
    """Dense, lexical or hybrid retrieval, with the embedder checked against the collection."""

    def __init__(
        self,
        store: ChromaStore,
        embedder: Embedder,
        lexical: LexicalIndex | None = None,
        config: RetrievalConfig | None = None,
        default_k: int = 5,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.lexical = lexical
        self.config = config or RetrievalConfig(mode="dense" if lexical is None else "hybrid")
        self.default_k = check_k(default_k)  # k of a search that names none (RAG_TOP_K)
        self._checked = False

    def search(self, query: str, options: SearchOptions = SearchOptions()) -> list[RetrievedChunk]:
        """The ``k`` best chunks (or merged blocks of neighbouring chunks), best first."""
        return self.retrieve(query, options).hits

    def config_for(self, options: SearchOptions) -> RetrievalConfig:
        """How ``options`` is ranked: its config (or the retriever's) in its mode."""
        cfg = options.config or self.config
        return cfg if options.mode is None else replace(cfg, mode=check_mode(options.mode))

    def matching_sources(self, pattern: str) -> list[str]:
        """Sources whose path matches the glob (``*`` also crosses folders: ``*.pdf``)."""
        if self.lexical is not None:
            every = self.lexical.sources()
        else:
            every = sorted({str(m.get("source", "")) for _, _, m, _ in self.store.iter_all()})
        return [s for s in every if fnmatch.fnmatchcase(s, pattern)]

    def retrieve(self, query: str, options: SearchOptions = SearchOptions()) -> Retrieval:
        """The ``options.k`` best chunks and the cosine of the best dense hit."""
        cfg = self.config_for(options)
        k = self.default_k if options.k is None else options.k
        sources: Sequence[str] | None = options.sources
        where = options.where
        if not self._checked:
            self.store.check_embedder(self.embedder.model_id, self.embedder.dimension)
            self._checked = True
        result = Retrieval(query=query)
        if not query.strip():
            return result
        if cfg.mode != "dense" and self.lexical is None:
            raise ConfigError(
                f"retrieval mode {cfg.mode!r} needs the lexical index; use mode 'dense'"
            )

        # --- filters: a glob and an explicit list both become a set of sources ---
        allowed: set[str] | None = None
        if sources is None and (where_sources := _sources_in_where(where)) is not None:
            sources, where = where_sources, None
        if sources is not None:
            allowed = set(sources)
        if options.source_glob:
            globbed = set(self.matching_sources(options.source_glob))
            allowed = globbed if allowed is None else allowed & globbed
        if allowed is not None and not allowed:
            return result
        dense_where: dict[str, Any] | None = dict(where) if where else None
        if allowed is not None:
            clause = {"source": {"$in": sorted(allowed)}}
            dense_where = clause if dense_where is None else {"$and": [dense_where, clause]}

        # --- the two lists ---
        pool = max(k, cfg.candidates) if cfg.mode == "hybrid" else k
        if cfg.mmr or cfg.merge_neighbours:  # MMR reorders a pool; merged neighbours leave room
            pool = max(pool, 4 * k)
        vector = self.embedder.embed_query(query)
        if cfg.mode == "dense":
            dense = self.store.query(vector, pool, dense_where)
            result.best_cosine = dense[0].score if dense else None
            ranked = dense
        else:
            assert self.lexical is not None
            # ids and cosines only: the texts of the few hits kept after fusion are fetched
            nearest = self.store.nearest(vector, pool if cfg.mode == "hybrid" else 1, dense_where)
            result.best_cosine = nearest[0][1] if nearest else None
            lexical = self.lexical.search(
                query, pool, source_filter=None if allowed is None else allowed.__contains__
            )
            if cfg.mode == "lexical":
                scores = {h.id: h.score for h in lexical}
                ranked = [replace(c, score=scores[c.id])
                          for c in self.store.get([h.id for h in lexical])]
            else:
                fused = fuse(nearest, lexical, pool, cfg)
                # more than k: MMR reorders a pool, and merged neighbours leave room for more
                ranked = self._chunks(fused[: 4 * k if cfg.mmr or cfg.merge_neighbours else k])

        if cfg.mmr and len(ranked) > 1:
            ranked = self._mmr(ranked, cfg.mmr_lambda)
        result.hits = self._take(ranked, k, cfg.merge_neighbours)
        return result

    def _chunks(self, fused: list[tuple[str, float]]) -> list[RetrievedChunk]:
        """Fused ids as chunks, fetched in one read, with their fused scores."""
        known = {c.id: c for c in self.store.get([cid for cid, _ in fused])}
        return [replace(known[cid], score=score) for cid, score in fused if cid in known]

    def _mmr(self, ranked: list[RetrievedChunk], lambda_: float) -> list[RetrievedChunk]:
        """The whole pool reordered by MMR (so neighbour merging can still take more)."""
        vectors = self.store.vectors([h.id for h in ranked])
        top = max(h.score for h in ranked) or 1.0
        relevance = {h.id: h.score / top for h in ranked}  # 0..1, like the cosines it meets
        order = maximal_marginal_relevance(
            [h.id for h in ranked], relevance, vectors, len(ranked), lambda_
        )
        by_id = {h.id: h for h in ranked}
        return [by_id[cid] for cid in order]

    @staticmethod
    def _take(ranked: list[RetrievedChunk], k: int, merge: bool) -> list[RetrievedChunk]:
        if not merge:
            return ranked[:k]
        # merging shrinks the list: take more hits until there are k blocks or none left
        n = k
        while True:
            blocks = merge_neighbours(ranked[:n])
            if len(blocks) >= k or n >= len(ranked):
                return blocks[:k]
            n += k - len(blocks)
