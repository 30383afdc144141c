"""Score fusion, reciprocal rank fusion, MMR and neighbour merging."""

from __future__ import annotations

import numpy as np
import pytest

from rag.fusion import (
    convex_fusion,
    maximal_marginal_relevance,
    merge_neighbours,
    reciprocal_rank_fusion,
)
from rag.types import RetrievedChunk


def test_rrf_ranks_what_both_lists_agree_on_first_and_scales_to_one() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d", "a"]], [1.0, 1.0], k=60)
    ids = [cid for cid, _ in fused]
    assert ids[:2] == ["b", "a"]  # in both lists
    assert set(ids) == {"a", "b", "c", "d"}
    scores = [s for _, s in fused]
    assert scores == sorted(scores, reverse=True)
    assert reciprocal_rank_fusion([["x"], ["x"]], [1.0, 1.0])[0][1] == pytest.approx(1.0)


def test_rrf_weights_decide_between_the_lists() -> None:
    lists = [["dense_top", "shared"], ["lexical_top", "shared"]]
    assert reciprocal_rank_fusion(lists, [3.0, 1.0], k=1)[0][0] == "dense_top"
    assert reciprocal_rank_fusion(lists, [1.0, 3.0], k=1)[0][0] == "lexical_top"
    only_dense = reciprocal_rank_fusion(lists, [1.0, 0.0])
    assert [cid for cid, _ in only_dense] == ["dense_top", "shared"]


def test_score_fusion_counts_margins_that_rank_fusion_cannot_see() -> None:
    # x is far ahead in the dense list and a close second in BM25; y the reverse, narrowly
    dense = [("x", 0.90), ("y", 0.30)]
    lexical = [("y", 10.0), ("x", 9.5)]
    ranks = reciprocal_rank_fusion([["x", "y"], ["y", "x"]], [1.0, 1.0])
    assert ranks[0][1] == pytest.approx(ranks[1][1])  # ranks alone: a tie
    fused = convex_fusion([dense, lexical], [1.0, 1.0])
    assert [cid for cid, _ in fused] == ["x", "y"]
    assert fused[0][1] == pytest.approx((1.0 + 0.95) / 2)
    assert convex_fusion([[("a", 0.7)], [("a", 3.0)]], [1.0, 0.5])[0][1] == pytest.approx(1.0)


def test_score_fusion_weights_and_floors_of_missing_hits() -> None:
    dense = [("d", 0.8), ("both", 0.6), ("last", 0.4)]
    lexical = [("l", 12.0), ("both", 6.0)]
    assert convex_fusion([dense, lexical], [3.0, 1.0])[0][0] == "d"
    assert convex_fusion([dense, lexical], [1.0, 3.0])[0][0] == "l"
    # missing from a list: that list's lowest score, unless a floor says what it is
    scores = dict(convex_fusion([dense, lexical], [1.0, 1.0]))
    assert scores["d"] == pytest.approx((1.0 + 6.0 / 12.0) / 2)
    assert scores["l"] == pytest.approx((0.4 / 0.8 + 1.0) / 2)
    floored = dict(convex_fusion([dense, lexical], [1.0, 1.0], floors=[None, 0.0]))
    assert floored["d"] == pytest.approx(0.5)
    # a list where nothing matched (no query term in any chunk) leaves the other's order
    assert [c for c, _ in convex_fusion([dense, []], [1.0, 1.0])] == ["d", "both", "last"]
    assert convex_fusion([[], []], [1.0, 1.0]) == []


def test_mmr_skips_a_near_duplicate_of_what_it_already_picked() -> None:
    a = np.array([1.0, 0.0], dtype=np.float32)
    a_copy = np.array([0.999, 0.045], dtype=np.float32)
    b = np.array([0.0, 1.0], dtype=np.float32)
    vectors = {"a": a, "a_copy": a_copy / np.linalg.norm(a_copy), "b": b}
    relevance = {"a": 1.0, "a_copy": 0.95, "b": 0.7}
    ids = ["a", "a_copy", "b"]
    assert maximal_marginal_relevance(ids, relevance, vectors, 2, lambda_=0.5) == ["a", "b"]
    assert maximal_marginal_relevance(ids, relevance, vectors, 2, lambda_=1.0) == ["a", "a_copy"]


def _chunk(index: int, text: str, source: str = "a.md", page: int | None = None,
           score: float = 0.5) -> RetrievedChunk:
    return RetrievedChunk(id=f"{source}-{page}-{index}", text=text, source=source, page=page,
                          heading="", score=score, chunk_index=index)


def test_adjacent_chunks_of_one_file_become_one_block_in_document_order() -> None:
    hits = [
        _chunk(4, "the end of the middle. The last part.", score=0.9),
        _chunk(3, "The first part, then the end of the middle.", score=0.8),
        _chunk(9, "Far away.", score=0.7),
        _chunk(3, "Another file.", source="b.md", score=0.6),
    ]
    merged = merge_neighbours(hits)
    assert len(merged) == 3
    assert merged[0].text == "The first part, then the end of the middle. The last part."
    assert merged[0].score == 0.9 and merged[0].chunk_index == 3
    assert [m.text for m in merged[1:]] == ["Far away.", "Another file."]


def test_chunks_on_different_pages_or_not_adjacent_stay_apart() -> None:
    hits = [_chunk(1, "one", page=1), _chunk(2, "two", page=2), _chunk(5, "five", page=2)]
    assert merge_neighbours(hits) == hits


def test_a_later_hit_bridges_two_blocks() -> None:
    hits = [_chunk(3, "three"), _chunk(5, "five"), _chunk(4, "four")]
    merged = merge_neighbours(hits)
    assert len(merged) == 1
    assert merged[0].text == "three\nfour\nfive"
