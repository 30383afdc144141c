"""Ranking metrics, question files and answer checks of `rag eval`."""

from __future__ import annotations

from pathlib import Path

import pytest

from application.evaluation.metrics import mrr_at, ndcg_at, ranking_metrics, recall_at
from application.evaluation.qa import contains_answer, load_questions, threshold_sweep
from rag.errors import RagError


def test_ranking_metrics_match_hand_computed_values() -> None:
    relevant = {"d1": 1, "d2": 1}
    ranked = ["x", "d1", "y", "d2"]
    # DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3)
    assert ndcg_at(ranked, relevant, 10) == pytest.approx((0.63093 + 0.43068) / 1.63093, 1e-4)
    assert recall_at(ranked, relevant, 2) == 0.5
    assert recall_at(ranked, relevant, 10) == 1.0
    assert mrr_at(ranked, relevant, 10) == 0.5
    assert mrr_at(["x"], relevant, 10) == 0.0
    perfect = ranking_metrics({"q": ["d1", "d2"]}, {"q": relevant})
    assert perfect["ndcg@10"] == pytest.approx(1.0) and perfect["mrr@10"] == 1.0


def test_question_file_marks_items_without_source_unanswerable(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"question": "What is HNSW?", "source": "a.pdf", "page": 2, "answer": "a graph"}\n'
        '{"question": "Who won in 1930?", "source": null}\n', encoding="utf-8")
    answerable, unanswerable = load_questions(path)
    assert (answerable.source, answerable.page, answerable.answers) == ("a.pdf", 2, ("a graph",))
    assert unanswerable.source is None
    path.write_text('{"source": "a.pdf"}\n', encoding="utf-8")
    with pytest.raises(RagError, match="item 1"):
        load_questions(path)


def test_gold_answer_is_found_whatever_the_case_and_punctuation() -> None:
    assert contains_answer("It was built in **1889**, by Eiffel [1].", ["1889"])
    assert contains_answer("the Norman conquest.", ["Norman Conquest"])
    assert not contains_answer("In 18890.", ["1889"])


def test_threshold_sweep_counts_right_and_wrong_refusals() -> None:
    best = [(0.1, False), (0.5, False), (0.2, True), (0.6, True)]
    row = next(r for r in threshold_sweep(best, [0.3]))
    assert row == {"threshold": 0.3, "refused_unanswerable": 0.5, "refused_answerable": 0.5}
