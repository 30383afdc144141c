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


def test_a_run_file_round_trips_and_a_paired_difference_tells_noise_from_a_gain(
    tmp_path: Path,
) -> None:
    from application.evaluation.metrics import paired_difference, read_run, write_run

    qrels = {f"q{i}": {f"d{i}": 1} for i in range(40)}
    good = {q: [next(iter(rel)), "x", "y"] for q, rel in qrels.items()}  # relevant first
    worse = {q: ["x", next(iter(rel)), "y"] for q, rel in qrels.items()}  # relevant second
    # good with one query's relevant document moved down: too small a change to be sure of
    mixed = dict(good) | {"q0": ["x", "d0"], "q1": ["d1"]}
    path = tmp_path / "good.run"
    write_run(path, good, "scifact hybrid")
    assert path.read_text().splitlines()[0] == "q0 Q0 d0 1 3 scifact_hybrid"
    assert read_run(path) == good

    gain = paired_difference(worse, good, qrels, samples=2000)
    assert gain.b == pytest.approx(1.0) and gain.difference > 0.3
    assert gain.low > 0 and gain.p < 0.01 and gain.queries_differing == 40
    noise = paired_difference(good, mixed, qrels, samples=2000)
    assert noise.difference < 0 and noise.low < 0 <= noise.high
    assert noise.p > 0.05 and noise.queries_differing == 1

    (tmp_path / "bad.run").write_text("q0 d0 1\n")
    with pytest.raises(ValueError, match=r"bad\.run:1: not a TREC run line"):
        read_run(tmp_path / "bad.run")
