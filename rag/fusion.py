"""Combining and reshaping ranked lists: score fusion, reciprocal rank fusion, MMR, neighbour
merging."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rag.types import RetrievedChunk


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], weights: Sequence[float], k: float = 60.0
) -> list[tuple[str, float]]:
    """Weighted RRF: ``sum_i w_i / (k + rank_i)`` over the lists an id appears in, best first.

    Scores are divided by the best possible one (first in every list), so they lie in (0, 1]
    whatever ``k`` and the weights are. Ties keep the order of first appearance.
    """
    if len(rankings) != len(weights):
        raise ValueError("one weight per ranking")
    best = sum(w for w in weights if w > 0) / (k + 1.0)
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        if weight <= 0:
            continue
        for rank, cid in enumerate(ranking, start=1):
            scores[cid] = scores.get(cid, 0.0) + weight / (k + rank)
    fused = sorted(scores.items(), key=lambda item: -item[1])
    return [(cid, score / best if best > 0 else 0.0) for cid, score in fused]


def convex_fusion(
    lists: Sequence[Sequence[tuple[str, float]]],
    weights: Sequence[float],
    floors: Sequence[float | None] | None = None,
) -> list[tuple[str, float]]:
    """Weighted mean of scores, each list's divided by its best: ``sum_i w_i * s_i / best_i``
    over ``sum_i w_i``, best first.

    Dividing by the best puts a cosine and an unbounded BM25 score on one scale (1 for the top
    of each list), and unlike RRF the margins count: a chunk far ahead in one list stays ahead.
    An id missing from a list is given that list's floor: by default its lowest score (a list
    cut at ``n`` hits says the others scored at most that); pass 0 for a list known to hold
    every chunk that scores. Scores lie in (-inf, 1], 1 for the first of every list. Ties keep
    the order of first appearance.
    """
    if len(lists) != len(weights) or (floors is not None and len(floors) != len(lists)):
        raise ValueError("one weight (and floor) per list")
    total = sum(w for w in weights if w > 0)
    used = []
    for i, (hits, weight) in enumerate(zip(lists, weights, strict=True)):
        best = max((s for _, s in hits), default=0.0)
        if weight <= 0 or best <= 0:
            continue  # an empty list, or one where nothing scored, says nothing
        floor = floors[i] if floors is not None else None
        if floor is None:
            floor = min(s for _, s in hits)
        used.append((dict(hits), weight / best, floor))
    if total <= 0 or not used:
        return []
    ids = dict.fromkeys(cid for hits, _, _ in used for cid in hits)
    scores = {
        cid: sum(scale * hits.get(cid, floor) for hits, scale, floor in used) / total
        for cid in ids
    }
    return sorted(scores.items(), key=lambda item: -item[1])


def maximal_marginal_relevance(
    ids: Sequence[str],
    relevance: Mapping[str, float],
    vectors: Mapping[str, np.ndarray],
    k: int,
    lambda_: float = 0.7,
) -> list[str]:
    """Pick ``k`` ids, each maximising ``lambda * relevance - (1 - lambda) * max similarity``
    to those already picked, so near-duplicate chunks do not crowd out the rest.

    ``relevance`` should be on a 0..1 scale like the cosine similarities it is traded against.
    Ids without a vector keep their place by relevance alone.
    """
    if not ids:
        return []
    dim = next((len(v) for v in vectors.values()), 1)
    has = np.array([cid in vectors for cid in ids])
    matrix = np.stack([vectors.get(cid, np.zeros(dim, dtype=np.float32)) for cid in ids])
    rel = np.array([relevance.get(cid, 0.0) for cid in ids], dtype=np.float64)
    redundancy = np.zeros(len(ids))  # max similarity to anything picked so far
    free = np.ones(len(ids), dtype=bool)
    picked: list[int] = []
    while len(picked) < min(k, len(ids)):
        value = np.where(free, lambda_ * rel - (1.0 - lambda_) * redundancy, -np.inf)
        best = int(np.argmax(value))  # the first of equal values: ranking order breaks ties
        picked.append(best)
        free[best] = False
        if has[best]:
            sims = np.where(has, matrix @ matrix[best], 0.0)
            redundancy = np.maximum(redundancy, sims)
    return [ids[i] for i in picked]


def _join_overlapping(first: str, second: str, max_overlap: int = 2000) -> str:
    """``first + second`` without the text they share (chunks overlap by a few tokens)."""
    limit = min(len(first), len(second), max_overlap)
    # the longest overlap starts at the earliest position p where first[p:] begins second
    p = first.find(second[0], len(first) - limit) if limit else -1
    while p != -1:
        if second.startswith(first[p:]):
            return first + second[len(first) - p:]
        p = first.find(second[0], p + 1)
    return f"{first}\n{second}"


def merge_neighbours(hits: Sequence[RetrievedChunk]) -> list[RetrievedChunk]:
    """Hits that are consecutive chunks of one source (and page) become one context block.

    A block is every hit joined to another through a run of consecutive chunk indexes (3 and
    5 join once 4 is among the hits too). It takes the place of its best-ranked part, and the
    best score of its parts; its text runs in document order, with the overlap between chunks
    removed. Linear in the number of hits.
    """
    parent = list(range(len(hits)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # (folder, source, page, index) -> positions
    at: dict[tuple[str, str, int | None, int], list[int]] = {}
    for pos, hit in enumerate(hits):
        for step in (-1, 1):
            for other in at.get((hit.root, hit.source, hit.page, hit.chunk_index + step), []):
                a, b = root(pos), root(other)
                parent[max(a, b)] = min(a, b)  # the root is the best-ranked member
        at.setdefault((hit.root, hit.source, hit.page, hit.chunk_index), []).append(pos)
    members: dict[int, list[RetrievedChunk]] = {}
    for pos, hit in enumerate(hits):
        members.setdefault(root(pos), []).append(hit)
    groups = [members[r] for r in sorted(members)]
    out: list[RetrievedChunk] = []
    for group in groups:
        if len(group) == 1:
            out.append(group[0])
            continue
        lead = group[0]
        ordered = sorted({g.chunk_index: g for g in group}.values(), key=lambda g: g.chunk_index)
        text = ordered[0].text
        for part in ordered[1:]:
            text = _join_overlapping(text, part.text)
        out.append(
            RetrievedChunk(
                id=lead.id,
                text=text,
                source=lead.source,
                page=lead.page,
                heading=ordered[0].heading,
                score=max(g.score for g in group),
                chunk_index=ordered[0].chunk_index,
                root=lead.root,
            )
        )
    return out
