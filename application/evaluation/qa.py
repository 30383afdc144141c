"""`rag eval qa`: questions with a gold source (and page, answer) against the ingested documents.

A question file is JSON Lines (or one JSON list); each item::

    {"question": "...", "source": "guide.pdf", "page": 3, "answer": "ef_search"}

``page`` and ``answer`` are optional; ``source`` may be a glob (``"*2023 Q3 NVDA*"``), matched
against the relative path and the file name. An item with ``"source": null`` (or ``"answerable":
false``) is unanswerable from the documents: the app should refuse it.

Retrieval is scored by hit@k (the gold source, and source and page, among the first k hits).
The refusal threshold is swept over the best hit's cosine similarity, which shows how often a
threshold refuses unanswerable questions and how often it wrongly refuses answerable ones.
With ``answers``, each question is answered by the LLM and checked: gold answer contained,
a citation pointing at the gold source, refusal of unanswerable questions.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import RagError

Progress = Callable[[str, int, int], None]
THRESHOLDS = (0.0, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6)


@dataclass(frozen=True)
class QAItem:
    question: str
    source: str | None  # None: not answerable from the documents
    page: int | None = None
    answer: str | None = None
    answers: tuple[str, ...] = ()  # alternatives; ``answer`` is the first


def load_questions(path: Path) -> list[QAItem]:
    """Read a question file (JSON Lines or a JSON list); errors name the line to fix."""
    if not path.is_file():
        raise RagError(f"{path} is not a file: give `rag eval qa` a JSON Lines question file")
    text = path.read_text(encoding="utf-8")
    try:
        rows = json.loads(text) if text.lstrip().startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()
        ]
    except json.JSONDecodeError as exc:
        raise RagError(f"{path}: not JSON Lines ({exc}); one object per line") from exc
    items = []
    for n, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not str(row.get("question", "")).strip():
            raise RagError(f"{path}, item {n}: needs a \"question\" (and a \"source\")")
        answerable = row.get("answerable", row.get("source") is not None)
        answers = row.get("answers") or ([row["answer"]] if row.get("answer") else [])
        items.append(
            QAItem(
                question=str(row["question"]),
                source=str(row["source"]) if answerable and row.get("source") else None,
                page=int(row["page"]) if row.get("page") is not None else None,
                answer=str(answers[0]) if answers else None,
                answers=tuple(str(a) for a in answers),
            )
        )
    if not items:
        raise RagError(f"{path} holds no questions")
    return items


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    """The answer text holds one of the gold answers (case and punctuation ignored)."""
    body = f" {_normalise(text)} "
    return any(f" {_normalise(a)} " in body for a in answers if _normalise(a))


def _rate(flags: Sequence[bool]) -> float | None:
    return float(np.mean(flags)) if flags else None


def source_matches(source: str, gold: str) -> bool:
    """A hit's source is the gold one: the same relative path, or, when the gold source is a
    glob (``*2023 Q3 NVDA*``, as docugami's question set writes them), the path or its file
    name matches it."""
    if source == gold:
        return True
    if not any(c in gold for c in "*?["):
        return False
    return fnmatch.fnmatchcase(source, gold) or fnmatch.fnmatchcase(source.rsplit("/", 1)[-1], gold)


def evaluate_retrieval(
    items: Sequence[QAItem],
    retrieve: Callable[[str], tuple[list[Any], float | None]],
    ks: Sequence[int] = (1, 3, 5, 10),
    progress: Progress | None = None,
) -> dict[str, Any]:
    """hit@k of gold source and page, and the refusal-threshold sweep over the best cosine.

    ``retrieve`` returns (hits with ``source`` and ``page``, the best dense cosine).
    """
    source_hits: dict[int, list[bool]] = {k: [] for k in ks}
    page_hits: dict[int, list[bool]] = {k: [] for k in ks}
    best: list[tuple[float, bool]] = []  # (best cosine, answerable)
    for n, item in enumerate(items, start=1):
        hits, best_cosine = retrieve(item.question)
        best.append((best_cosine if best_cosine is not None else -1.0, item.source is not None))
        if item.source is not None:
            for k in ks:
                top = hits[:k]
                source_hits[k].append(any(source_matches(h.source, item.source) for h in top))
                if item.page is not None:
                    page_hits[k].append(any(source_matches(h.source, item.source)
                                            and h.page == item.page for h in top))
        if progress and (n % 25 == 0 or n == len(items)):
            progress("retrieving", n, len(items))
    report: dict[str, Any] = {
        "questions": len(items),
        "answerable": sum(1 for i in items if i.source is not None),
        "unanswerable": sum(1 for i in items if i.source is None),
    }
    for k in ks:
        report[f"source_hit@{k}"] = _rate(source_hits[k])
        if page_hits[k]:
            report[f"page_hit@{k}"] = _rate(page_hits[k])
    report["threshold_sweep"] = threshold_sweep(best)
    return report


def threshold_sweep(
    best: Sequence[tuple[float, bool]], thresholds: Sequence[float] = THRESHOLDS
) -> list[dict[str, float | None]]:
    """For each threshold: share of unanswerable refused (good) and answerable refused (bad)."""
    rows: list[dict[str, float | None]] = []
    for t in thresholds:
        rows.append({
            "threshold": t,
            "refused_unanswerable": _rate([s < t for s, ok in best if not ok]),
            "refused_answerable": _rate([s < t for s, ok in best if ok]),
        })
    return rows


def evaluate_answers(
    items: Sequence[QAItem],
    answer: Callable[[str], Any],
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Ask each question; ``answer`` returns an ``Answer``.

    answer_contained: answerable questions whose answer holds a gold answer (refusals count as
    misses); cites_gold_source: a cited source is the gold one; supported_sentences: share of
    the answers' sentences that the passages they cite support; the refusal rates; and the
    latency of a whole answer (retrieval included), p50 and p95 in ms.
    """
    import time

    contained: list[bool] = []
    cited_gold: list[bool] = []
    supported: list[bool] = []
    refused_unanswerable: list[bool] = []
    refused_answerable: list[bool] = []
    latency: list[float] = []
    for n, item in enumerate(items, start=1):
        t0 = time.perf_counter()
        got = answer(item.question)
        latency.append((time.perf_counter() - t0) * 1000)
        if not got.refused:
            supported.extend(s.supported for s in getattr(got, "sentences", []))
        if item.source is None:
            refused_unanswerable.append(bool(got.refused))
        else:
            refused_answerable.append(bool(got.refused))
            cited_gold.append(any(source_matches(s.chunk.source, item.source)
                                  for s in got.cited_sources()))
            if item.answers:
                contained.append(not got.refused and contains_answer(got.text, item.answers))
        if progress:
            progress("answering", n, len(items))
    return {
        "answer_contained": _rate(contained),
        "cites_gold_source": _rate(cited_gold),
        "supported_sentences": _rate(supported),
        "refused_unanswerable": _rate(refused_unanswerable),
        "refused_answerable": _rate(refused_answerable),
        "latency_p50_ms": float(np.percentile(latency, 50)) if latency else None,
        "latency_p95_ms": float(np.percentile(latency, 95)) if latency else None,
    }
