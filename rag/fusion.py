"""Combining and reshaping ranked lists: reciprocal rank fusion, MMR, neighbour merging."""

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
    for size in range(limit, 0, -1):
        if first.endswith(second[:size]):
            return first + second[size:]
    return f"{first}\n{second}"


def merge_neighbours(hits: Sequence[RetrievedChunk]) -> list[RetrievedChunk]:
    """Hits that are consecutive chunks of one source (and page) become one context block.

    The merged block takes the place of its best-ranked part and that part's score; its text
    runs in document order, with the overlap between chunks removed.
    """
    groups: list[list[RetrievedChunk]] = []
    for hit in hits:
        for group in groups:
            same_place = all(g.source == hit.source and g.page == hit.page for g in group)
            indexes = {g.chunk_index for g in group}
            if same_place and (hit.chunk_index - 1 in indexes or hit.chunk_index + 1 in indexes):
                group.append(hit)
                break
        else:
            groups.append([hit])
    # a later hit may bridge two earlier groups (3 and 5, then 4): join them too
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                a, b = groups[i], groups[j]
                if a[0].source != b[0].source or a[0].page != b[0].page:
                    continue
                ia, ib = {g.chunk_index for g in a}, {g.chunk_index for g in b}
                if any(x - 1 in ib or x + 1 in ib for x in ia):
                    a.extend(b)
                    del groups[j]
                    merged = True
                    break
            if merged:
                break
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
            )
        )
    return out
