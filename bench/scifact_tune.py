#!/usr/bin/env python
"""Hybrid fusion grid on a BEIR folder (SciFact): nDCG@10 and recall@100 per setting, one process.

    .venv/bin/python -m bench.scifact_tune ../shared/data/scifact --split train \\
        [--k1 0.9 1.2] [--b 0.4 0.75] [--dense-weight 0.5 0.6 0.65 0.7] [--rrf-k 60] \\
        [--title-heading on|off] [--json]

Ranks exactly as ``rag eval beir`` does (the same cached index under /tmp/rag-eval, the same
candidate lists of 300 chunks per query from Chroma and from BM25, ``rag.retriever.fuse``,
a document ranked by its best chunk), but embeds and searches each query once and then fuses
the two lists for every setting of the grid, so a grid of dozens of settings takes about as
long as one `rag eval beir` run. BM25 is rebuilt once per (k1, b). The weights are given as
the dense weight w (the lexical weight is 1 - w); RRF is run at each w too. Tune on the train
split only; score the chosen setting on test with `rag eval beir`.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

CHUNKS = 300  # what `rag eval beir` retrieves per query (its --chunks default)


def _flag(value: str) -> bool:
    return value.lower() in ("on", "true", "1", "yes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--split", default="train")
    parser.add_argument("--k1", type=float, nargs="+", default=[0.9])
    parser.add_argument("--b", type=float, nargs="+", default=[0.4])
    parser.add_argument("--dense-weight", type=float, nargs="+",
                        default=[0.5, 0.55, 0.6, 0.65, 0.7, 0.75])
    parser.add_argument("--rrf-k", type=float, nargs="+", default=[60.0])
    parser.add_argument("--title-heading", type=_flag, default=True, metavar="on|off")
    parser.add_argument("--norm", choices=["max", "minmax"], nargs="+", default=["max"],
                        help="convex fusion's scaling of each list: max (divide by the best, "
                        "what the app does) or minmax (best 1, last of the list 0); minmax is "
                        "an experiment, not in the app")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from application.evaluation.beir import open_index
    from application.evaluation.beir_data import load_beir
    from application.evaluation.cli import DEFAULT_CACHE
    from application.evaluation.metrics import ranking_metrics
    from application.factory import build_embedder, retrieval_config
    from rag.config import load_settings
    from rag.lexical import BM25Params, LexicalIndex
    from rag.retriever import fuse

    settings = load_settings()
    embedder = build_embedder(settings)
    dataset = load_beir(args.folder, args.split)
    cache_dir = args.cache_dir or DEFAULT_CACHE
    store, folder = open_index(dataset, embedder, settings, cache_dir,
                               title_heading=args.title_heading)
    base = retrieval_config(settings)
    queries = list(dataset.queries.items())
    vectors = [embedder.embed_query(text) for _, text in queries]
    dense_lists = [store.nearest(v, CHUNKS) for v in vectors]

    rows: list[dict[str, Any]] = []

    def score(name: str, params: BM25Params, ranked: dict[str, list[str]]) -> None:
        m = ranking_metrics(ranked, dataset.qrels)
        rows.append({"setting": name, "k1": params.k1, "b": params.b,
                     "ndcg@10": round(m["ndcg@10"], 4), "recall@100": round(m["recall@100"], 4),
                     "mrr@10": round(m["mrr@10"], 4)})
        if not args.json:
            print(f"{name:<34} k1={params.k1:<4} b={params.b:<4} nDCG@10 {m['ndcg@10']:.4f}  "
                  f"recall@100 {m['recall@100']:.4f}", flush=True)

    source_of: dict[str, str] = {}
    first = True
    for k1 in args.k1:
        for b in args.b:
            params = BM25Params(k1=k1, b=b, window=settings.bm25_window)
            lexical = LexicalIndex(folder / f"lexical-{k1}-{b}-w{params.window}", store, params)
            lexical.ensure_current()
            if not source_of:
                source_of = dict(zip(lexical._ids, lexical._sources, strict=True))
            lexical_lists = [lexical.search(text, CHUNKS) for _, text in queries]

            def docs(fused: list[tuple[str, float]], source_of: dict[str, str] = source_of
                     ) -> list[str]:
                return list(dict.fromkeys(source_of[cid] for cid, _ in fused[:CHUNKS]))

            if first:
                score("dense", params, {qid: docs(d) for (qid, _), d in
                                              zip(queries, dense_lists, strict=True)})
                first = False
            score("lexical", params, {
                qid: list(dict.fromkeys(h.source for h in lx))
                for (qid, _), lx in zip(queries, lexical_lists, strict=True)})
            minmax = ([_minmax_dense(d) for d in dense_lists],
                      [_minmax_lexical(lx) for lx in lexical_lists])
            for w in args.dense_weight:
                for norm in args.norm:
                    if norm == "minmax":
                        cfg = replace(base, mode="hybrid", fusion="convex", dense_weight=w,
                                      lexical_weight=round(1 - w, 4))
                        ranked = {qid: docs(fuse(d, lx, CHUNKS, cfg)) for (qid, _), d, lx in
                                  zip(queries, *minmax, strict=True)}
                        score(f"convex minmax w={w:g}", params, ranked)
                for fusion in ("convex", "rrf"):
                    for rrf_k in (args.rrf_k if fusion == "rrf" else [base.rrf_k]):
                        cfg = replace(base, mode="hybrid", fusion=fusion, rrf_k=rrf_k,
                                      dense_weight=w, lexical_weight=round(1 - w, 4))
                        ranked = {qid: docs(fuse(d, lx, CHUNKS, cfg)) for (qid, _), d, lx in
                                  zip(queries, dense_lists, lexical_lists, strict=True)}
                        name = f"{fusion} w={w:g}" + (f" k={rrf_k:g}" if fusion == "rrf" else "")
                        score(name, params, ranked)
    if args.json:
        sys.stdout.write(json.dumps({"split": args.split, "queries": len(queries),
                                     "title_heading": args.title_heading, "rows": rows},
                                    indent=1) + "\n")
    return 0


def _minmax_dense(hits: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Cosines rescaled so the best is 1 and the last candidate 0 (a floor just above 0)."""
    if not hits:
        return hits
    top, low = hits[0][1], hits[-1][1]
    span = max(top - low, 1e-9)
    return [(cid, max((s - low) / span, 1e-6)) for cid, s in hits]


def _minmax_lexical(hits: list[Any]) -> list[Any]:
    """BM25 scores rescaled the same way; a list shorter than the cut keeps 0 as its floor."""
    from rag.lexical import LexicalHit

    if len(hits) < CHUNKS or not hits:
        return hits
    top, low = hits[0].score, hits[-1].score
    span = max(top - low, 1e-9)
    return [LexicalHit(h.id, h.source, max((h.score - low) / span, 1e-6)) for h in hits]


if __name__ == "__main__":
    raise SystemExit(main())
