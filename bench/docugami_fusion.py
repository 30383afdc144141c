#!/usr/bin/env python
"""Where dense, BM25 and several fusions put the gold filing of docugami's SEC 10-Q questions.

    RAG_DATA_DIR=COPY_OF_THE_SEC10Q_DATA_DIR .venv/bin/python -m bench.docugami_fusion \\
        QUESTIONS.jsonl [--weights 0.5,0.65,0.8] [--out per-question.json]

For each question (a file from ``bench/docugami_qa.py``) it embeds and searches once (100
candidates from Chroma and from BM25, as hybrid retrieval takes by default), fuses the two
lists with ``rag.retriever.fuse`` for convex and RRF fusion at each dense weight, and prints
hit@1 and hit@5 of the gold source per list. It also counts, over every question's top 5,
the chunks from the gold filing, from the same company's other filings and from another
company (file names ``YEAR QN TICKER.pdf``). It builds the BM25 index in the data dir when
it is missing: point RAG_DATA_DIR at a copy.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import collections
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

POOL = 100


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", type=Path)
    parser.add_argument("--weights", default="0.5,0.65,0.8", help="dense weights to fuse at")
    parser.add_argument("--out", type=Path, help="write the per-question top-5 sources here")
    args = parser.parse_args(argv)

    from application.evaluation.qa import load_questions, source_matches
    from application.factory import App
    from rag.config import load_settings
    from rag.retriever import fuse

    app = App(load_settings())
    retriever, lexical = app.retriever, app.lexical
    lexical.ensure_current()
    source_of = dict(zip(lexical._ids, lexical._sources, strict=True))
    weights = [float(w) for w in args.weights.split(",")]
    rows: list[dict[str, Any]] = []
    for item in load_questions(args.questions):
        dense = retriever.store.nearest(app.embedder.embed_query(item.question), POOL)
        hits = lexical.search(item.question, POOL)
        row: dict[str, Any] = {"question": item.question, "gold": item.source,
                               "dense": [source_of[c] for c, _ in dense[:5]],
                               "lexical": [h.source for h in hits[:5]]}
        for w in weights:
            for fusion in ("convex", "rrf"):
                cfg = replace(retriever.config, mode="hybrid", fusion=fusion, dense_weight=w,
                              lexical_weight=round(1 - w, 4))
                row[f"{fusion} {w:g}"] = [source_of[c] for c, _ in fuse(dense, hits, POOL, cfg)[:5]]
        rows.append(row)

    def company(source: str) -> str:
        return Path(source).stem.split()[-1]

    lists = [k for k in rows[0] if k not in ("question", "gold")]
    print(f"{'list':<12} {'hit@1':>6} {'hit@5':>6}  top-5 chunks: gold filing / same company / "
          f"other company   ({len(rows)} questions)")
    for key in lists:
        at1 = sum(any(source_matches(s, r["gold"]) for s in r[key][:1]) for r in rows)
        at5 = sum(any(source_matches(s, r["gold"]) for s in r[key][:5]) for r in rows)
        kinds: collections.Counter[str] = collections.Counter()
        for r in rows:
            gold_company = r["gold"].strip("*").split()[-1]
            for s in r[key]:
                kinds["gold" if source_matches(s, r["gold"]) else
                      "same" if company(s) == gold_company else "other"] += 1
        print(f"{key:<12} {at1:6d} {at5:6d}  {kinds['gold']:4d} / {kinds['same']:4d} / "
              f"{kinds['other']:4d}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
