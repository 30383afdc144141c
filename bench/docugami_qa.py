"""Docugami's SEC 10-Q question set as a `rag eval qa` question file.

docugami's ``qna_data.csv`` (columns Question, Source Docs, Question Type, Source Chunk Type,
Answer) names each question's gold documents by a glob over the file names, ``*2023 Q3 NVDA*``
for one filing or ``*NVDA*`` for every filing of a company. ``rag eval qa`` matches such globs
against the file name of each hit (``application.evaluation.qa.source_matches``), so the glob is written
as the item's ``source`` unchanged.

By default only the single-document questions are kept (Question Type ``Single-Doc
Single-Chunk RAG`` and ``Single-Doc Multi-Chunk RAG``, 130 of 195): their glob names one filing
(company and quarter), so hit@k says whether retrieval found the right filing among 20 near-
identical ones. The multi-document questions name a company's four filings at once (or several
companies), where a hit says little; ``--all`` keeps them as well.

    .venv/bin/python -m bench.docugami_qa \\
        ../shared/data/docugami/sec-10-q/data/v1/qna_data.csv /tmp/sec10q-single.jsonl
    RAG_DATA_DIR=DIR .venv/bin/rag eval qa /tmp/sec10q-single.jsonl --mode hybrid

``--half even`` / ``--half odd`` keep every other question (of those kept): tune on one half,
report the other.

Each output line: ``{"question", "source" (the glob), "answer", "type"}``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

SINGLE_DOC_TYPES = ("Single-Doc Single-Chunk RAG", "Single-Doc Multi-Chunk RAG")


def convert(csv_path: Path, *, single_doc_only: bool = True) -> list[dict[str, str]]:
    """The question file's items, in the CSV's order."""
    items = []
    with csv_path.open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            kind = row["Question Type"].strip()
            if single_doc_only and kind not in SINGLE_DOC_TYPES:
                continue
            question, source = row["Question"].strip(), row["Source Docs"].strip()
            if not question or not source:
                continue
            items.append({"question": question, "source": source,
                          "answer": row["Answer"].strip(), "type": kind})
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", type=Path, help="docugami's qna_data.csv")
    parser.add_argument("out", type=Path, help="JSON Lines question file to write")
    parser.add_argument("--all", action="store_true",
                        help="keep the multi-document questions too (default: single-doc only)")
    parser.add_argument("--half", choices=("even", "odd"),
                        help="only every other question: rows 0, 2, 4... (even: the split to "
                             "tune on) or 1, 3, 5... (odd: the split to report)")
    args = parser.parse_args(argv)
    items = convert(args.csv, single_doc_only=not args.all)
    if args.half:
        items = items[0 if args.half == "even" else 1::2]
    with args.out.open("w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"wrote {len(items)} questions to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
