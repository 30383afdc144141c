#!/usr/bin/env python
"""Is one retrieval run really better than another on a BEIR split, or is it noise?

    .venv/bin/rag eval beir ../shared/data/scifact --split test --run-file /tmp/a.run ...
    .venv/bin/rag eval beir ../shared/data/scifact --split test --run-file /tmp/b.run ...
    .venv/bin/python bench/beir_compare.py ../shared/data/scifact --split test /tmp/a.run /tmp/b.run

Prints each run's nDCG@10 on the judged queries, the mean difference (second minus first), its
95% interval from a paired bootstrap over the queries, the two-sided p value of a paired
randomisation test, and how many queries' scores differ at all
(``application.evaluation.metrics.paired_difference``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from application.evaluation.beir_data import load_beir  # noqa: E402
from application.evaluation.metrics import paired_difference, read_run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="the BEIR folder the runs were made on")
    ap.add_argument("runs", type=Path, nargs="+", help="TREC run files; each is compared "
                    "with the first")
    ap.add_argument("--split", default="test")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if len(args.runs) < 2:
        ap.error("give at least two run files")
    qrels = load_beir(args.folder, args.split).qrels
    first = read_run(args.runs[0])
    results = []
    for path in args.runs[1:]:
        result = paired_difference(first, read_run(path), qrels, k=args.k, samples=args.samples)
        results.append({**asdict(result), "a": str(args.runs[0]), "b": str(path),
                        "a_ndcg": result.a, "b_ndcg": result.b})
        if not args.json:
            print(f"{args.runs[0].name} nDCG@{args.k} {result.a:.4f} -> {path.name} "
                  f"{result.b:.4f}: difference {result.difference:+.4f}, 95% interval "
                  f"[{result.low:+.4f}, {result.high:+.4f}], p {result.p:.3f} "
                  f"({result.queries_differing} of {result.queries} queries "
                  "score differently)")
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
