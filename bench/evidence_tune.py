"""Choose the evidence constants of rag/evidence.py on SQuAD 2.0 questions outside the
reported sample.

`rag eval squad2 --every 10` reports questions 0, 10, 20, ...; this script tunes on questions
5, 15, 25, ... (``--offset 5``) of the same paragraphs, so the reported figures are not fitted.
For each question it retrieves as `rag ask` does, scores every sentence of the passages once
(cosine to the question, term overlap) and then sweeps, without re-embedding:

- the lexical weight of a sentence's score,
- the refusal floor on the best sentence's score (MIN_EVIDENCE),
- the share of the best score a further quoted sentence needs (RELATIVE_KEEP),

printing answer_contained, refused_answerable and refused_unanswerable of the extractive
answer for each.

    .venv/bin/python bench/evidence_tune.py ../shared/data/squad2/dev-v2.0.json --data-dir DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bench  # noqa: E402, F401  (offline, no telemetry)
from application.evaluation.qa import contains_answer  # noqa: E402
from application.evaluation.squad import export_squad  # noqa: E402
from application.factory import App  # noqa: E402
from rag.config import load_settings  # noqa: E402
from rag.types import Source  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("squad", type=Path)
    p.add_argument("--data-dir", type=Path,
                   default=Path(tempfile.gettempdir()) / "rag-squad2-tune")
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--offset", type=int, default=5, help="tune on question offset, offset+every..")
    p.add_argument("--limit", type=int, default=400)
    args = p.parse_args()

    cache = args.data_dir / f"cases-{args.every}-{args.offset}-{args.limit}.json"
    cases = json.loads(cache.read_text()) if cache.is_file() else _score(args)
    cache.write_text(json.dumps(cases))
    _sweep(cases)
    return 0


def _score(args: argparse.Namespace) -> list[tuple[bool, list[tuple[float, float, bool]]]]:
    """Per question: answerable, and each sentence's (cosine, overlap, holds a gold answer)."""
    export = args.data_dir / "export"
    export_squad(args.squad, export, every=1)
    rows = [json.loads(line) for line in (export / "questions.jsonl").open(encoding="utf-8")]
    rows = [r for i, r in enumerate(rows) if i % args.every == args.offset][: args.limit]
    app = App(load_settings(data_dir=args.data_dir / "data"))
    report = app.pipeline.sync(export / "docs")
    print(report.summary(), file=sys.stderr)
    engine = app.chat_engine(extract=True)
    finder = app.evidence

    cases: list[tuple[bool, list[tuple[float, float, bool]]]] = []
    for n, row in enumerate(rows, start=1):
        hits = engine.retrieve(row["question"]).hits
        sources = [Source(n=i + 1, chunk=h) for i, h in enumerate(hits)]
        scored = finder.score(row["question"], sources) if sources else []
        answers = row["answers"]
        cases.append((row["source"] is not None,
                      [(s.cosine, s.overlap, bool(answers) and contains_answer(s.span.text, answers))
                       for s in scored]))
        if n % 50 == 0:
            print(f"scored {n}/{len(rows)}", file=sys.stderr)
    return cases


def _sweep(cases: list[tuple[bool, list[tuple[float, float, bool]]]]) -> None:
    print("weight floor keep  contained refused_answerable refused_unanswerable")
    for weight in (0.0, 0.5, 0.7, 1.0, 1.5):
        for floor in (0.0, 0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9):
            for keep in (0.6, 0.7, 0.8, 1.01):
                contained, ref_a, ref_u = [], [], []
                for answerable, sentences in cases:
                    ranked = sorted(((c + weight * o, g) for c, o, g in sentences), reverse=True)
                    refused = not ranked or ranked[0][0] < floor
                    if not answerable:
                        ref_u.append(refused)
                        continue
                    ref_a.append(refused)
                    if refused:
                        contained.append(False)
                        continue
                    top = [g for s, g in ranked[:3] if s >= max(floor, ranked[0][0] * keep)]
                    contained.append(any(top) or ranked[0][1])
                print(f"{weight:6.1f} {floor:5.2f} {keep:4.2f}  {_rate(contained):9.3f} "
                      f"{_rate(ref_a):18.3f} {_rate(ref_u):20.3f}")


def _rate(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else float("nan")


if __name__ == "__main__":
    sys.exit(main())
