"""Ranking metrics as BEIR reports them (pytrec_eval's definitions), and latency percentiles."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class PairedDifference:
    """Two runs' mean nDCG@k on the same judged queries, and how sure their difference is."""

    queries: int  # judged queries in either run
    a: float  # mean nDCG@k of the first run
    b: float  # of the second
    difference: float  # mean of b - a per query
    low: float  # 95% interval of the difference (paired bootstrap)
    high: float
    p: float  # two-sided, paired randomisation test
    queries_differing: int  # queries whose nDCG@k differs between the runs


def paired_difference(
    a: Mapping[str, Sequence[str]],
    b: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    k: int = 10,
    samples: int = 10_000,
    seed: int = 0,
) -> PairedDifference:
    """How sure a difference in mean nDCG@k between two runs on the same queries is.

    Per judged query, nDCG@k of ``b`` minus that of ``a``; returned: both means, the mean
    difference, its 95% interval from a paired bootstrap over the queries, and the two-sided
    p value of a paired randomisation test (each query's difference flipped in sign at
    random). A query missing from a run counts as nDCG 0 there.
    """
    judged = [qid for qid in qrels if qid in a or qid in b]
    if not judged:
        raise ValueError("no judged query is in either run")
    x = np.array([ndcg_at(a.get(q, []), qrels[q], k) for q in judged])
    y = np.array([ndcg_at(b.get(q, []), qrels[q], k) for q in judged])
    diff = y - x
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (samples, len(diff)))].mean(axis=1)
    signs = rng.choice(np.array([-1.0, 1.0]), (samples, len(diff)))
    flipped = np.abs((signs * diff).mean(axis=1))
    observed = abs(float(diff.mean()))
    return PairedDifference(
        queries=len(judged),
        a=float(x.mean()),
        b=float(y.mean()),
        difference=float(diff.mean()),
        low=float(np.percentile(means, 2.5)),
        high=float(np.percentile(means, 97.5)),
        p=float((np.sum(flipped >= observed - 1e-12) + 1) / (samples + 1)),
        queries_differing=int(np.count_nonzero(np.abs(diff) > 1e-12)),
    )


def read_run(path: Path) -> dict[str, list[str]]:
    """A TREC run file (``qid Q0 doc rank score tag``) as each query's documents, best first."""
    rows: dict[str, list[tuple[int, str]]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 6 or not parts[3].isdigit():
            raise ValueError(f"{path}:{number}: not a TREC run line (qid Q0 doc rank score tag): "
                             f"{line[:80]!r}")
        rows.setdefault(parts[0], []).append((int(parts[3]), parts[2]))
    return {q: [d for _, d in sorted(r)] for q, r in rows.items()}


def write_run(path: Path, runs: Mapping[str, Sequence[str]], tag: str) -> None:
    """Each query's ranked documents as a TREC run file (score: the number of documents
    ranked below, so higher is better as the format expects)."""
    tag = "_".join(tag.split()) or "run"
    with path.open("w", encoding="utf-8") as fh:
        for qid, docs in runs.items():
            for rank, doc in enumerate(docs, start=1):
                fh.write(f"{qid} Q0 {doc} {rank} {len(docs) - rank + 1} {tag}\n")


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    if not seconds:
        return {"latency_p50_ms": 0.0, "latency_p95_ms": 0.0}
    ms = np.asarray(seconds) * 1000.0
    return {
        "latency_p50_ms": float(np.percentile(ms, 50)),
        "latency_p95_ms": float(np.percentile(ms, 95)),
    }
