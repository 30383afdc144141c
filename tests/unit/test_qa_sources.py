"""Gold sources of `rag eval qa`: exact paths and docugami-style globs, and the docugami converter."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from application.evaluation.qa import QAItem, evaluate_retrieval, source_matches
from bench.docugami_qa import convert, main


def test_exact_gold_source_matches_only_the_same_path() -> None:
    assert source_matches("reports/2023 Q3 NVDA.pdf", "reports/2023 Q3 NVDA.pdf")
    assert not source_matches("reports/2023 Q3 NVDA.pdf", "2023 Q3 NVDA.pdf")
    assert not source_matches("a.pdf", "A.pdf")


def test_glob_gold_source_matches_the_path_or_the_file_name() -> None:
    assert source_matches("2023 Q3 NVDA.pdf", "*2023 Q3 NVDA*")
    assert source_matches("sec/10q/2023 Q3 NVDA.pdf", "*2023 Q3 NVDA*")
    assert source_matches("sec/2023 Q3 NVDA.pdf", "2023 Q3 NVDA.pdf") is False  # not a glob
    assert source_matches("sec/2023 Q3 NVDA.pdf", "2023 Q? NVDA.pdf")  # the file name matches
    assert source_matches("sec/2022 Q3 NVDA.pdf", "*NVDA*")
    # another quarter, another company, another case: not the gold filing
    assert not source_matches("2023 Q2 NVDA.pdf", "*2023 Q3 NVDA*")
    assert not source_matches("2023 Q3 AMD.pdf", "*2023 Q3 NVDA*")
    assert not source_matches("2023 q3 nvda.pdf", "*2023 Q3 NVDA*")
    assert source_matches("2023 Q3 NVDA.pdf", "*202[23] Q3 NVDA*")


def test_hit_at_k_counts_a_glob_gold_source() -> None:
    hits = [SimpleNamespace(source="2023 Q2 NVDA.pdf", page=1),
            SimpleNamespace(source="2023 Q3 NVDA.pdf", page=4)]
    report = evaluate_retrieval([QAItem("q", "*2023 Q3 NVDA*")], lambda q: (hits, 0.5), (1, 2))
    assert report["source_hit@1"] == 0.0 and report["source_hit@2"] == 1.0


def test_docugami_csv_becomes_a_question_file(tmp_path: Path) -> None:
    csv_path = tmp_path / "qna_data.csv"
    csv_path.write_text(
        "\ufeffQuestion,Source Docs,Question Type,Source Chunk Type,Answer\n"
        '"How did NVDA revenue change?",*2023 Q3 NVDA*,Single-Doc Single-Chunk RAG,Table,"Up"\n'
        '"Compare AAPL quarters",*AAPL*,Multi-Doc RAG,Text,"Down, then up"\n',
        encoding="utf-8")
    assert convert(csv_path) == [{"question": "How did NVDA revenue change?",
                                  "source": "*2023 Q3 NVDA*", "answer": "Up",
                                  "type": "Single-Doc Single-Chunk RAG"}]
    out = tmp_path / "q.jsonl"
    assert main([str(csv_path), str(out), "--all"]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["source"] for r in rows] == ["*2023 Q3 NVDA*", "*AAPL*"]
