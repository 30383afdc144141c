"""Ranking metrics as BEIR reports them (pytrec_eval's definitions), and latency percentiles."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def ndcg_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """nDCG@k with linear gains (``rel / log2(rank + 1)``), as pytrec_eval's ndcg_cut."""
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in relevant.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    wanted = {d for d, r in relevant.items() if r > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def mrr_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    for i, d in enumerate(ranked[:k]):
        if relevant.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def ranking_metrics(
    runs: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, float]:
    """Mean nDCG@10, recall@5/10/100 and MRR@10 over the judged queries."""
    names = {
        "ndcg@10": lambda r, q: ndcg_at(r, q, 10),
        "recall@5": lambda r, q: recall_at(r, q, 5),
        "recall@10": lambda r, q: recall_at(r, q, 10),
        "recall@100": lambda r, q: recall_at(r, q, 100),
        "mrr@10": lambda r, q: mrr_at(r, q, 10),
    }
    judged = [qid for qid in qrels if qid in runs]
    return {
        name: float(np.mean([fn(runs[qid], qrels[qid]) for qid in judged])) if judged else 0.0
        for name, fn in names.items()
    }


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    if not seconds:
        return {"latency_p50_ms": 0.0, "latency_p95_ms": 0.0}
    ms = np.asarray(seconds) * 1000.0
    return {
        "latency_p50_ms": float(np.percentile(ms, 50)),
        "latency_p95_ms": float(np.percentile(ms, 95)),
    }
