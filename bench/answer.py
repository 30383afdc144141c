#!/usr/bin/env python
"""First-token latency of an answer from the embedded model (llama.cpp, bundled SmolLM2-135M).

    .venv/bin/python bench/answer.py [--k 5,3,2] [--data-dir DIR] [--json]

The real ``App`` with ``RAG_LLM_BACKEND=llamacpp`` answers questions about knowledge_base/
(ingested into a fresh data dir, or ``--data-dir``) through ``ChatEngine.stream_answer``, as
``rag ask`` and the UI do. The model and the clients are loaded once, before the clock starts,
and one untimed answer warms them up. For each question it records, from the call:

- ``retrieval``: until the sources are known (search query, embed, dense + lexical, fuse);
- ``first token``: until the first piece of the answer (the above, building the prompt, and
  llama.cpp evaluating it);
- ``answer``: until the last piece (at most ``--max-tokens``, 64 by default), with the answer's
  length and the prompt's size in tokens (the system prompt's tokens included; llama.cpp keeps
  them from the previous answer, so they are not evaluated again).

``--k`` compares how many chunks are retrieved (``SearchOptions.k`` given to ``stream_answer``,
as the UI's top-k slider passes it) and ``--budget`` the most tokens of passages the model is given
(``RAG_LOCAL_CONTEXT_TOKENS``; 0: all k), one pass over the questions per pair (see ``run``). Questions the app refuses (nothing relevant retrieved) answer without the model and are left
out of the first-token figures; their count is printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# This file is in bench/, next to bench/ingest.py, which must not shadow the ``ingest`` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.machine import load_average, machine, versions  # noqa: E402
from bench.query import KB_QUESTIONS, KNOWLEDGE_BASE, ingest  # noqa: E402


def stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p95_ms": None, "max_ms": None}
    a = np.asarray(values) * 1000.0
    return {"p50_ms": round(float(np.percentile(a, 50)), 1),
            "p95_ms": round(float(np.percentile(a, 95)), 1),
            "max_ms": round(float(a.max()), 1)}


def ask(engine: Any, question: str, k: int | None, budget: int,
        count_tokens: Any) -> dict[str, Any]:
    """One answer, timed from the call: sources known, first piece, last piece."""
    from rag.chat import SourcesEvent, TokenEvent
    from rag.prompts import build_messages
    from rag.retriever import SearchOptions

    t0 = time.perf_counter()
    t_sources = t_first = None
    pieces: list[str] = []
    given: list[Any] = []
    left_out = 0
    for event in engine.stream_answer(question, options=SearchOptions(k=k)):
        now = time.perf_counter()
        if isinstance(event, SourcesEvent):
            t_sources, given, left_out = now, event.sources, event.left_out
        elif isinstance(event, TokenEvent):
            if t_first is None:
                t_first = now
            pieces.append(event.text)
    t_end = time.perf_counter()
    prompt_tokens = None  # counted after the clock stopped
    if count_tokens is not None and given:
        prompt_tokens = sum(count_tokens(m.content) for m in build_messages(question, given))
    return {
        "question": question,
        "k": k or engine.top_k,
        "budget": budget,
        "given": len(given),
        "left_out": left_out,
        "refused": not given,
        "retrieval_s": (t_sources or t_end) - t0,
        "first_token_s": (t_first or t_end) - t0,
        "answer_s": t_end - t0,
        "answer_chars": len("".join(pieces)),
        "prompt_tokens": prompt_tokens,
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answered = [r for r in rows if not r["refused"]]
    tokens = [r["prompt_tokens"] for r in answered if r["prompt_tokens"]]
    return {
        "questions": len(rows),
        "refused": len(rows) - len(answered),
        "retrieval": stats([r["retrieval_s"] for r in answered]),
        "first_token": stats([r["first_token_s"] for r in answered]),
        "answer": stats([r["answer_s"] for r in answered]),
        "prompt_tokens": {"median": int(np.median(tokens)), "max": max(tokens)}
        if tokens else None,
        "passages_given": {"median": float(np.median([r["given"] for r in answered])),
                           "min": min(r["given"] for r in answered)} if answered else None,
        "chunks_left_out": {"median": float(np.median([r["left_out"] for r in answered])),
                            "max": max(r["left_out"] for r in answered)} if answered else None,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from application.factory import App
    from rag.chat import ContextBudget
    from rag.config import Settings

    work = Path(tempfile.mkdtemp(prefix="rag-bench-answer-"))
    try:
        data_dir = args.data_dir or work / "data"
        if args.data_dir is None:
            print("ingesting knowledge_base/ ...", file=sys.stderr, flush=True)
            ingest(KNOWLEDGE_BASE, data_dir, args.model_cache)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, data_dir=data_dir, models_dir=args.model_cache,
            llm_backend="llamacpp", max_answer_tokens=args.max_tokens,
        )
        started = time.perf_counter()
        app = App(settings)
        engine = app.chat_engine()  # loads the GGUF model, the embedder and the stores
        load_s = time.perf_counter() - started
        llm = app.llm
        count_tokens = getattr(llm, "count_tokens", None)
        for _ in engine.stream_answer(KB_QUESTIONS[0]):  # warm-up, untimed
            pass

        ks: list[int | None] = list(args.k) if args.k else [None]  # None: the app's default
        budgets = list(args.budget) if args.budget else [settings.local_context_tokens]
        load_before = load_average()
        rows: list[dict[str, Any]] = []
        # One pass over the questions per k: llama.cpp reuses the longest prompt prefix it still
        # holds, so asking one question at several k in a row would find its first chunks
        # already read. Between two different questions only the system prompt is shared, as
        # in a conversation.
        for _ in range(args.repeat):
            for budget in budgets:
                engine.context_budget = ContextBudget(budget, count_tokens) if budget else None
                for k in ks:
                    for question in KB_QUESTIONS:
                        rows.append(ask(engine, question, k, budget, count_tokens))
        by_k = {f"{k or engine.top_k}/{b}": summary(
                    [r for r in rows if r["k"] == (k or engine.top_k) and r["budget"] == b])
                for b in budgets for k in ks}
        return {
            "benchmark": "bench/answer.py: ChatEngine.stream_answer, RAG_LLM_BACKEND=llamacpp",
            "llm": llm.name,
            "threads": getattr(llm, "threads", None),
            "default_top_k": engine.top_k,
            "default_budget": settings.local_context_tokens,
            "merge_neighbours": settings.merge_neighbours,
            "max_answer_tokens": settings.max_answer_tokens,
            "load_s": round(load_s, 2),
            "by_k": by_k,
            "rows": [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}
                     for r in rows] if args.rows else None,
            "machine": {**machine(), "loadavg_before": load_before},
            "versions": versions(),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def table(r: dict[str, Any]) -> str:
    m = r["machine"]

    def line(name: str, s: dict[str, Any]) -> str:
        return f"  {name:14} {s['p50_ms']:>8} {s['p95_ms']:>8} {s['max_ms']:>8}"

    lines = [
        f"llm          {r['llm']} ({r['threads']} threads), load {r['load_s']} s, default top_k "
        f"{r['default_top_k']}, default budget {r['default_budget']} tokens, merge_neighbours "
        f"{r['merge_neighbours']}",
    ]
    for k, v in r["by_k"].items():
        pt = v["prompt_tokens"] or {}
        pg = v["passages_given"] or {}
        top_k, budget = k.split("/")
        lines += [
            f"k={top_k}, budget {budget}: {v['questions']} questions ({v['refused']} refused, "
            f"left out); passages given median {pg.get('median')}, min {pg.get('min')}; prompt "
            f"tokens median {pt.get('median')}, max {pt.get('max')}",
            f"  {'ms':14} {'p50':>8} {'p95':>8} {'max':>8}",
            line("retrieval", v["retrieval"]),
            line("first token", v["first_token"]),
            line(f"answer<={r['max_answer_tokens']}t", v["answer"]),
        ]
    lines.append(f"machine      {m['cores']} cores, {m['cpu']}, {m['date_utc']}, load "
                 f"{m['loadavg_before']} before, {m['loadavg_1_5_15']} after")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, help="an existing data dir (default: fresh ingest)")
    ap.add_argument("--repeat", type=int, default=1, help="ask every question this many times")
    ap.add_argument("--max-tokens", type=int, default=64,
                    help="RAG_MAX_ANSWER_TOKENS for the run (the first token does not depend "
                    "on it; the app's default is 512)")
    ap.add_argument("--k", type=lambda v: [int(x) for x in v.split(",")], default=None,
                    help="chunks given to the model, e.g. 5,3,2 (compared question by question); "
                    "default: the app's")
    ap.add_argument("--budget", type=lambda v: [int(x) for x in v.split(",")], default=None,
                    help="RAG_LOCAL_CONTEXT_TOKENS values to compare, e.g. 0,600,800 (0: no "
                    "limit); default: the app's")
    ap.add_argument("--model-cache", type=Path, default=Path("/tmp/rag-bench/models"))
    ap.add_argument("--rows", action="store_true", help="include each question's figures")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = run(args)
    print(json.dumps(result, indent=1) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
