#!/usr/bin/env python
"""Where retrieval finds the gold filing of docugami's SEC 10-Q questions, per split, and
whether the passages hold the answer's figures.

    .venv/bin/python -m bench.docugami_qa --all \\
        ../shared/data/docugami/sec-10-q/data/v1/qna_data.csv /tmp/sec10q-all.jsonl
    RAG_DATA_DIR=DIR .venv/bin/python -m bench.docugami_splits /tmp/sec10q-all.jsonl

Each question is retrieved once (as ``rag eval qa`` does: the app's defaults, 10 hits) and
scored on: all questions; the even rows (0, 2, 4...: the split tuned on) and the odd rows (the
split reported); the single- and the multi-document questions; and the questions whose
reviewed answer quotes figures (``82,959``, ``44.5``: a number with thousands separators or
decimals). For those, ``figure@5`` is the share whose top 5 passages hold one of the answer's
figures, in a passage from the gold filing.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import json
import re
from pathlib import Path
from typing import Any

KS = (1, 3, 5, 10)
FIGURE = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+")


def figures(answer: str) -> set[str]:
    """The figures an answer quotes (years and small counts left out)."""
    return set(FIGURE.findall(answer))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", type=Path, help="from bench/docugami_qa.py --all")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from application.evaluation.qa import source_matches
    from application.factory import App
    from rag.config import load_settings
    from rag.retriever import SearchOptions

    rows = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    app = App(load_settings())
    options = SearchOptions(k=max(KS))
    scored: list[dict[str, Any]] = []
    for n, row in enumerate(rows):
        hits = app.retriever.retrieve(row["question"], options).hits
        gold = [source_matches(h.source, row["source"]) for h in hits]
        wanted = figures(row.get("answer", ""))
        scored.append({
            "row": n, "type": row.get("type", ""), "figures": bool(wanted),
            **{f"hit@{k}": any(gold[:k]) for k in KS},
            "figure@5": any(g and any(f in h.text for f in wanted)
                            for h, g in zip(hits[:5], gold[:5], strict=False)),
        })

    subsets = {
        "all": scored,
        "even rows": [s for s in scored if s["row"] % 2 == 0],
        "odd rows": [s for s in scored if s["row"] % 2 == 1],
        "single-doc": [s for s in scored if s["type"] != "Multi-Doc RAG"],
        "multi-doc": [s for s in scored if s["type"] == "Multi-Doc RAG"],
        "figures": [s for s in scored if s["figures"]],
        "fig. even": [s for s in scored if s["figures"] and s["row"] % 2 == 0],
        "fig. odd": [s for s in scored if s["figures"] and s["row"] % 2 == 1],
    }
    report: dict[str, dict[str, float]] = {}
    for name, items in subsets.items():
        if not items:
            continue
        keys = [f"hit@{k}" for k in KS] + (["figure@5"] if name.startswith("fig") else [])
        report[name] = {"n": len(items), **{k: sum(s[k] for s in items) / len(items)
                                            for k in keys}}
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"{'questions':<11} {'n':>4} " + " ".join(f"{'hit@' + str(k):>7}" for k in KS)
          + f" {'figure@5':>9}")
    for name, r in report.items():
        cells = " ".join(f"{r[f'hit@{k}']:7.3f}" for k in KS)
        extra = f" {r['figure@5']:9.3f}" if "figure@5" in r else ""
        print(f"{name:<11} {int(r['n']):4d} {cells}{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
