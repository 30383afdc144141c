#!/usr/bin/env python
"""SciFact (BEIR) dense retrieval quality of the embedder: nDCG@10, recall@100 on the test set.

    .venv/bin/python bench/scifact_dense.py [--backend torch|onnx|both] [--json]

Embeds the 5,183 abstracts (title + " " + text, as BEIR does) and the 300 test queries with
the project's embedder (``application.factory.build_embedder``: torch fp32 or ONNX int8), ranks by
cosine similarity (exact, numpy) and scores against ``qrels/test.tsv``. Corpus vectors are
cached in ``--cache`` (default /tmp/rag-bench) per embedder identity (model, backend and, for
ONNX, the export), so a second run only embeds queries and the backends never share vectors.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "scifact"


def load_scifact(folder: Path) -> tuple[list[str], list[str], dict[str, str], dict[str, dict[str, int]]]:
    """(doc ids, doc texts, test queries by id, qrels: query id -> {doc id: grade})."""
    doc_ids, texts = [], []
    with (folder / "corpus.jsonl").open() as fh:
        for line in fh:
            row = json.loads(line)
            doc_ids.append(str(row["_id"]))
            texts.append((row.get("title", "") + " " + row.get("text", "")).strip())
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / "test.tsv").open() as fh:
        next(fh)
        for line in fh:
            qid, did, grade = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[did] = int(grade)
    queries = {}
    with (folder / "queries.jsonl").open() as fh:
        for line in fh:
            row = json.loads(line)
            if str(row["_id"]) in qrels:
                queries[str(row["_id"])] = row["text"]
    return doc_ids, texts, queries, qrels


def ndcg_at(ranked: list[str], rel: dict[str, int], k: int = 10) -> float:
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(rel.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def evaluate(backend: str, data: Path, cache: Path) -> dict[str, object]:
    from application.evaluation.embedding_cache import embedder_identity
    from application.factory import build_embedder
    from rag.config import Settings

    doc_ids, texts, queries, qrels = load_scifact(data)
    settings = Settings(data_dir=cache, embedding_backend=backend, _env_file=None)  # type: ignore[call-arg, arg-type]
    t = time.perf_counter()
    embedder = build_embedder(settings)
    load_s = time.perf_counter() - t
    identity = embedder_identity(embedder)
    key = hashlib.sha256(f"{identity}|{len(texts)}".encode()).hexdigest()[:12]
    vec_path = cache / f"scifact-{backend}-{key}.npy"
    embed_s = None
    if vec_path.is_file():
        docs = np.load(vec_path)
    else:
        t = time.perf_counter()
        docs = embedder.embed_documents(texts)
        embed_s = time.perf_counter() - t
        np.save(vec_path, docs)
    qids = sorted(queries)
    t = time.perf_counter()
    qvecs = np.stack([embedder.embed_query(queries[q]) for q in qids])
    query_s = time.perf_counter() - t
    scores = qvecs @ docs.T
    ndcg, recall = [], []
    for row, qid in enumerate(qids):
        top = np.argsort(-scores[row])[:100]
        ranked = [doc_ids[i] for i in top]
        ndcg.append(ndcg_at(ranked, qrels[qid], 10))
        relevant = {d for d, g in qrels[qid].items() if g > 0}
        recall.append(len(relevant & set(ranked)) / len(relevant))
    return {
        "backend": backend,
        "model": embedder.model_id,
        "embedder": identity,
        "documents": len(texts),
        "queries": len(qids),
        "ndcg@10": round(float(np.mean(ndcg)), 4),
        "recall@100": round(float(np.mean(recall)), 4),
        "model_load_s": round(load_s, 1),
        "corpus_embed_s": None if embed_s is None else round(embed_s, 1),
        "corpus_docs_per_s": None if embed_s is None else round(len(texts) / embed_s, 1),
        "query_embed_ms": round(1000 * query_s / len(qids), 1),
        "vectors_cached_in": str(vec_path),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["torch", "onnx", "both"], default="both")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/rag-bench"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    backends = ["torch", "onnx"] if args.backend == "both" else [args.backend]
    results = [evaluate(b, args.data, args.cache) for b in backends]
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(f"{'backend':<8} {'nDCG@10':>8} {'R@100':>7} {'docs/s':>8} {'query ms':>9}")
    for r in results:
        print(f"{r['backend']:<8} {r['ndcg@10']:>8} {r['recall@100']:>7} "
              f"{r['corpus_docs_per_s'] or '(cached)':>8} {r['query_embed_ms']:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
