"""`rag eval beir|qa|squad2`: the evaluation commands (registered by application.cli)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

DEFAULT_CACHE = Path(tempfile.gettempdir()) / "rag-eval"


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def _progress(quiet: bool) -> Any:
    if quiet:
        return None
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr,
                                     dynamic_ncols=True, leave=False)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def cmd_eval_beir(args: argparse.Namespace) -> int:
    from application.evaluation.beir import run_beir
    from application.evaluation.beir_data import load_beir
    from application.factory import app_for, retrieval_config

    app = app_for(args.data_dir)
    folder = Path(args.folder)
    dataset = load_beir(folder, args.split)
    config = retrieval_config(app.settings)
    if args.mode:
        config = replace(config, mode=args.mode)
    if args.mmr is not None:
        config = replace(config, mmr=args.mmr)
    if args.merge_neighbours is not None:
        config = replace(config, merge_neighbours=args.merge_neighbours)
    report = run_beir(
        dataset,
        name=folder.resolve().name,
        split=args.split,
        embedder=app.embedder,
        settings=app.settings,
        cache_dir=Path(args.cache_dir),
        config=config,
        chunks_per_query=args.chunks,
        progress=_progress(args.json or args.quiet),
        title_heading=args.title_heading,
    )
    if args.run_file:
        from application.evaluation.metrics import write_run

        write_run(Path(args.run_file), report.runs, f"{report.dataset}-{report.mode}")
    if args.json:
        _print_json(report.to_dict())
        return 0
    print(f"{report.dataset} ({report.split}): {report.queries} queries, "
          f"{report.documents} documents in {report.chunks} chunks, mode {report.mode}")
    for key, value in report.metrics.items():
        print(f"  {key:<16} {value:8.3f}" if "latency" not in key else f"  {key:<16} {value:8.1f}")
    return 0


def _answer_engine(app: Any, args: argparse.Namespace, answer_mode: str) -> Any:
    """``extract``: quoted evidence; ``generate``: the chosen LLM (the in-process one when no
    Ollama answers, whatever RAG_ANSWER_MODE says); ``auto``: as `rag ask` would."""
    from application.factory import build_llamacpp
    from rag.retriever import SearchOptions

    if answer_mode == "extract":
        engine = app.chat_engine(extract=True)
    elif answer_mode == "generate":
        engine = app.chat_engine(app.llm or build_llamacpp(app.settings))
    else:
        engine = app.chat_engine()
    options = SearchOptions(mode=args.mode, source_glob=args.source)
    return engine, lambda q: engine.ask(q, options=options)


def cmd_eval_qa(args: argparse.Namespace) -> int:
    from application.evaluation.qa import evaluate_answers, evaluate_retrieval, load_questions
    from application.factory import app_for
    from rag.retriever import SearchOptions

    app = app_for(args.data_dir)
    items = load_questions(Path(args.file))
    if args.limit:
        items = items[: args.limit]
    progress = _progress(args.json or args.quiet)
    ks = sorted({1, 3, 5, 10, app.settings.top_k})
    options = SearchOptions(k=max(ks), mode=args.mode, source_glob=args.source)

    def retrieve(question: str) -> tuple[list[Any], float | None]:
        got = app.retriever.retrieve(question, options)
        return got.hits, got.best_cosine

    report = evaluate_retrieval(items, retrieve, ks, progress)
    report["mode"] = args.mode or app.settings.retrieval_mode
    report["min_score"] = app.settings.min_score
    if args.answers:
        report["answers"] = {}
        for answer_mode in args.answer_modes.split(","):
            engine, ask = _answer_engine(app, args, answer_mode.strip())
            got = evaluate_answers(items, ask, progress)
            report["answers"][answer_mode.strip()] = {"backend": engine.backend, **got}
    if args.json:
        _print_json(report)
        return 0
    print(f"{report['questions']} questions ({report['answerable']} answerable, "
          f"{report['unanswerable']} not), mode {report['mode']}")
    for key, value in report.items():
        if "@" in key:
            print(f"  {key:<22} {_fmt(value)}")
    print("  refusal threshold on the best cosine (RAG_MIN_SCORE):")
    print("    threshold  refused unanswerable  refused answerable")
    for row in report["threshold_sweep"]:
        mark = "  <- current" if abs(row["threshold"] - app.settings.min_score) < 1e-9 else ""
        print(f"    {row['threshold']:9.2f}  {_fmt(row['refused_unanswerable']):>20}  "
              f"{_fmt(row['refused_answerable']):>18}{mark}")
    for answer_mode, got in report.get("answers", {}).items():
        print(f"  answers, {answer_mode} ({got['backend']}):")
        for key, value in got.items():
            if key != "backend":
                print(f"    {key:<22} {_fmt(value)}")
    return 0


def cmd_eval_squad2(args: argparse.Namespace) -> int:
    from application.evaluation.squad import export_squad

    out = Path(args.out)
    paragraphs, questions = export_squad(Path(args.file), out, every=args.every)
    print(f"wrote {paragraphs} paragraphs to {out / 'docs'} and {questions} questions to "
          f"{out / 'questions.jsonl'}\nnext: rag --data-dir DIR ingest {out / 'docs'} && "
          f"rag --data-dir DIR eval qa {out / 'questions.jsonl'}")
    return 0


def _flag(value: str) -> bool:
    if value.lower() in ("on", "true", "1", "yes"):
        return True
    if value.lower() in ("off", "false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, got {value!r}")


def _answer_modes(value: str) -> str:
    modes = [m.strip() for m in value.split(",") if m.strip()]
    bad = [m for m in modes if m not in ("auto", "extract", "generate")]
    if not modes or bad:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of auto, extract, generate; got {value!r}")
    return ",".join(modes)


def add_eval_parser(sub: Any) -> None:
    """Register `rag eval ...` on the top-level subparsers."""
    from rag.retriever import MODES

    p = sub.add_parser("eval", help="measure retrieval and answers (BEIR folders, question files)")
    evals = p.add_subparsers(dest="eval_command", required=True)

    b = evals.add_parser("beir", help="nDCG@10, recall, MRR and latency on a BEIR folder")
    b.add_argument("folder", help="holds corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv")
    b.add_argument("--split", default="test", help="qrels/SPLIT.tsv to score (default test)")
    b.add_argument("--mode", choices=MODES, help="override RAG_RETRIEVAL_MODE")
    b.add_argument("--mmr", type=_flag, default=None, metavar="on|off", help="override RAG_MMR")
    b.add_argument("--merge-neighbours", type=_flag, default=None, metavar="on|off",
                   help="override RAG_MERGE_NEIGHBOURS")
    b.add_argument("--title-heading", type=_flag, default=True, metavar="on|off",
                   help="give each document's title as its heading, as ingest does for a "
                   "Markdown title (default on; off: the title is only the first line)")
    b.add_argument("--chunks", type=int, default=300,
                   help="chunks retrieved per query (documents are ranked by their best chunk)")
    b.add_argument("--cache-dir", default=str(DEFAULT_CACHE),
                   help=f"where indexes and vectors are kept between runs (default {DEFAULT_CACHE})")
    b.add_argument("--run-file", metavar="PATH",
                   help="also write each query's ranked documents there (TREC run format), "
                   "to compare two runs query by query (bench/beir_compare.py)")
    b.add_argument("--json", action="store_true")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=cmd_eval_beir)

    q = evals.add_parser("qa", help="hit@k of gold sources, refusal threshold sweep, answers")
    q.add_argument("file", help="JSON Lines: question, source (null: unanswerable), page, answer")
    q.add_argument("--answers", action="store_true", help="also answer each question and check")
    q.add_argument("--answer-modes", default="auto", metavar="MODES",
                   type=_answer_modes,
                   help="with --answers: comma-separated auto, extract, generate (default auto: "
                   "as `rag ask` answers; generate uses the in-process model without Ollama)")
    q.add_argument("--mode", choices=MODES, help="override RAG_RETRIEVAL_MODE")
    q.add_argument("--source", metavar="GLOB", help="only search sources matching this glob")
    q.add_argument("--limit", type=int, default=0, help="only the first N questions")
    q.add_argument("--json", action="store_true")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=cmd_eval_qa)

    s = evals.add_parser("squad2", help="write SQuAD 2.0 as documents and a question file")
    s.add_argument("file", help="a SQuAD 2.0 JSON file (dev-v2.0.json)")
    s.add_argument("--out", required=True, help="folder for docs/ and questions.jsonl")
    s.add_argument("--every", type=int, default=1, help="keep every N-th question")
    s.set_defaults(func=cmd_eval_squad2)

