"""`rag ingest|search|ask|status|collections|ui`: the command line.

Exit codes: 0 success, 1 a clear one-line error (``error: ...``), 2 wrong usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from application.serve import cmd_ui, port_number
from rag.errors import RagError

if TYPE_CHECKING:
    from application.factory import App
    from ingest.report import IngestReport
    from rag.retriever import SearchOptions


def _app(args: argparse.Namespace, *, writes: bool = False) -> App:
    """The App of ``--data-dir`` (or RAG_DATA_DIR). A command that only reads refuses a data
    folder that does not exist (and creates nothing), unless the index is on a Chroma server
    (the folder then only keeps this machine's BM25 index: any machine may search); ingest
    creates it when its parent exists (a mistyped path deeper down is refused, not built)."""
    from application.factory import app_for
    from rag.terminal import printable

    app = app_for(getattr(args, "data_dir", None), getattr(args, "collection", None))
    folder = app.settings.data_dir
    if not folder.is_dir():
        name = printable(str(folder))
        if not writes and not app.settings.uses_chroma_server:
            raise RagError(f"the data folder {name} does not exist (nothing was created): "
                           "check --data-dir or RAG_DATA_DIR. Run `rag ingest DIR` first to "
                           "build an index there")
        if not folder.absolute().parent.is_dir():
            raise RagError(f"the data folder {name} cannot be created: its parent "
                           f"{printable(str(folder.absolute().parent))} does not exist; "
                           "check --data-dir or RAG_DATA_DIR")
    return app


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


# --- ingest ------------------------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from application.progress import ProgressBar, parse_passwords
    from ingest.lock import ingest_lock
    from ingest.unchanged import remember_full_sync, sync_key
    from rag.terminal import printable

    started = time.perf_counter()
    app = _app(args, writes=True)
    folder = Path(args.folder)
    if not folder.is_dir():
        raise RagError(f"{printable(folder)} is not a folder: give `rag ingest` a directory to "
                       "index")
    passwords = parse_passwords(args.password or [], args.passwords_file)
    if args.watch and (args.dry_run or args.verify):
        raise RagError("--watch keeps the index in sync; run --dry-run or --verify without it")
    lock = nullcontext() if args.dry_run else ingest_lock(app.settings.data_dir,
                                                          str(folder.resolve()))
    try:
        with lock:
            if args.watch:
                app.pipeline.follow_links = args.follow_links
                return _watch(app, folder, args, passwords)
            force: list[str] = []
            verified = None
            # Nothing changed: answered from the manifest and the store's files, before the
            # store or the model is opened (--verify reads the index: it always runs in full).
            key = sync_key(app.settings.model_dump(mode="json"))
            report = None if args.verify else _unchanged(app, folder, args, passwords, key)
            if args.verify:
                from application.repair import readable_store
                from ingest.verify import verify_folder

                notes = readable_store(app, folder, repair=not args.dry_run)
                verified = verify_folder(app.store, app.manifest, folder, repair=not args.dry_run)
                verified.notes = notes
                force = sorted(verified.missing)
            if report is None:
                bar = ProgressBar(disable=args.json or args.quiet)
                try:
                    report = app.pipeline.sync(folder, dry_run=args.dry_run,
                                               passwords=passwords, on_progress=bar.update,
                                               force=force, follow_links=args.follow_links)
                finally:
                    bar.close()
                if not args.dry_run:  # a later run may take the shortcut
                    remember_full_sync(app.manifest, folder, key)
    finally:
        if "pipeline" in app.__dict__:  # built: stop its loader processes
            app.pipeline.close()
    # the whole command's time, model loading (and a first run's ONNX export) included
    report.seconds = time.perf_counter() - getattr(args, "started", started)
    exported = getattr(app.__dict__.get("embedder"), "export_seconds", None)
    if args.json:
        out = report.to_dict()
        if exported is not None:  # a first run: the summary's seconds include the export
            out["embedding_export_seconds"] = round(exported, 1)
        if verified is not None:
            out["verify"] = verified.to_dict()
        _print_json(out)
        return 1 if args.strict and report.failed else 0
    # File names and reasons come from the folder: control characters are shown escaped.
    for source, reason in report.failed.items():
        print(printable(f"failed: {source}: {reason}"), file=sys.stderr)
    for line in verified.lines() if verified is not None else []:
        print(printable(line))
    if args.dry_run:
        for label, items in (("add", report.indexed), ("update", report.updated),
                             ("remove", report.removed)):
            for item in items:
                print(printable(f"would {label}: {item}"))
    else:
        if report.removed:
            print(printable("removed: " + ", ".join(report.removed)))
        print(report.table())
    if exported is not None:
        print(f"first run: exported and quantised the embedding model ({exported:.1f} s)")
    print(report.summary())
    return 1 if args.strict and report.failed else 0


def _unchanged(app: App, folder: Path, args: argparse.Namespace, passwords: dict[str, str],
               key: str) -> IngestReport | None:
    """The report of a sync with nothing to do, or ``None`` (then the sync runs): read from the
    manifest and the embedded store's files, without opening Chroma or loading the model
    (``key``: ``sync_key`` of this run)."""
    from ingest.unchanged import unchanged_report

    peek = app.store_peek()
    if peek is None or not peek.exists or peek.embedder != app.embedder_id:
        return None  # a Chroma server, a new or renamed store, another model: the full sync
    return unchanged_report(folder, app.manifest, app.embedder_id, key=key,
                            store_count=peek.count, dry_run=args.dry_run, passwords=passwords,
                            follow_links=args.follow_links)


def _watch(app: App, folder: Path, args: argparse.Namespace, passwords: dict[str, str]) -> int:
    """`rag ingest DIR --watch`: a sync now and after every settled burst of changes."""
    from ingest.watch import watch_folder
    from rag.terminal import printable

    def on_sync(report: IngestReport) -> None:
        if args.json:  # one JSON object per line, one line per sync
            print(json.dumps(report.to_dict(), ensure_ascii=False), flush=True)
            return
        for source, reason in report.failed.items():
            print(printable(f"failed: {source}: {reason}"), file=sys.stderr)
        stamp = time.strftime("%H:%M:%S")
        print(f"[{stamp}] {report.summary()}", flush=True)

    def on_error(exc: Exception) -> None:
        message = f"sync failed: {exc}; still watching, trying again in {args.retry:g} s"
        if args.json:
            print(json.dumps({"error": str(exc), "retry_s": args.retry}), flush=True)
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    # Ctrl-C sets an event instead of raising KeyboardInterrupt: the exception could land in a
    # library call that swallows it (seen once: the watcher then never stopped); with the
    # event, a sync under way finishes and the watch ends at the next wait.
    import signal
    import threading

    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"watching {folder} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        watch_folder(app.pipeline, folder, debounce=args.debounce, stop=stop, on_sync=on_sync,
                     on_error=on_error, retry=args.retry, passwords=passwords)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, previous)
    print("stopped watching", file=sys.stderr)
    return 0


# --- search and ask ------------------------------------------------------------------------------


def _search_options(args: argparse.Namespace) -> SearchOptions:
    """--k, --mode and --source as the one search request shape."""
    from rag.retriever import SearchOptions

    return SearchOptions(k=args.k, mode=args.mode, source_glob=args.source)


def cmd_search(args: argparse.Namespace) -> int:
    app = _app(args)
    hits = app.retriever.search(args.question, _search_options(args))
    if args.json:
        _print_json([h.to_dict() for h in hits])
        return 0
    from rag.terminal import printable

    if not hits:
        print("no results")
    for rank, h in enumerate(hits, start=1):
        page = f" p.{h.page}" if h.page is not None else ""
        # document text and file names reach a terminal: control characters shown escaped
        snippet = printable(" ".join(h.text.split())[:200])
        print(f"{rank}. {printable(h.source)}{page}  score {h.score:.3f}\n   {snippet}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.chat import DoneEvent, TokenEvent, extract_note, left_out_note
    from rag.terminal import printable

    app = _app(args)
    engine = app.chat_engine(extract=args.extract)
    answer = None
    for event in engine.stream_answer(args.question, options=_search_options(args)):
        if isinstance(event, TokenEvent) and not args.json:
            sys.stdout.write(printable(event.text, lines=True))
            sys.stdout.flush()
        elif isinstance(event, DoneEvent):
            answer = event.answer
    assert answer is not None
    if args.json:
        _print_json(answer.to_dict())
        return 0
    sys.stdout.write("\n")
    if answer.refused:
        return 0
    unsupported = answer.unsupported()
    if unsupported:
        print("\nNot supported by the passages it cites (check before relying on it):")
        for sentence in unsupported:
            print(f"  ! {printable(' '.join(sentence.split()))}")
    if answer.sources:
        cited = {s.n for s in answer.cited_sources()}
        print("\nSources:")
        for s in answer.sources:
            mark = "" if s.n in cited else "  (retrieved, not cited)"
            print(f"  {printable(s.label())}{mark}")
            for e in s.evidence[:1] if s.n in cited else ():
                print(f"      evidence: \"{printable(' '.join(e.text.split()))}\"")
        if answer.left_out:
            print(f"  ({left_out_note(answer.left_out)})")
    if answer.mode == "extract":
        print(f"\n({extract_note()})")
    return 0


# --- status ----------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from application.status import collect_status
    from rag.terminal import printable

    status = collect_status(_app(args))
    if args.json:
        _print_json(status)
    else:
        width = max(len(k) for k in status)
        for key, value in status.items():
            print(f"{key.ljust(width)}  {printable(value)}")
    return 0


# --- entry point ---------------------------------------------------------------------------------


def _retrieval_modes() -> tuple[str, ...]:
    """RAG_RETRIEVAL_MODE's values, read from the settings: importing the retriever (numpy, the
    store) would slow every command, `rag status` and an unchanged `rag ingest` among them."""
    from typing import get_args

    from rag.config import Settings

    return tuple(get_args(Settings.model_fields["retrieval_mode"].annotation))


def _add_retrieval_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=_retrieval_modes(), default=None,
                   help="override RAG_RETRIEVAL_MODE")
    p.add_argument("--source", metavar="GLOB", default=None,
                   help="only search files whose path matches, e.g. 'reports/*.pdf'")


def _top_k(text: str) -> int:
    """``--k``: a whole number in RAG_TOP_K's range (a usage error otherwise)."""
    from rag.config import TOP_K_RANGE

    low, high = TOP_K_RANGE
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number: give {low} to {high}") from None
    if not low <= k <= high:
        raise argparse.ArgumentTypeError(f"{k} is out of range: give {low} to {high} "
                                         "(as RAG_TOP_K)")
    return k


def _question(text: str) -> str:
    """A question: some text, at most MAX_QUESTION_CHARS characters."""
    from rag.config import MAX_QUESTION_CHARS

    if not text.strip():
        raise argparse.ArgumentTypeError("the question is empty: ask something, e.g. "
                                         "rag ask \"what is HNSW?\"")
    if len(text) > MAX_QUESTION_CHARS:
        raise argparse.ArgumentTypeError(
            f"the question is {len(text):,} characters long; the limit is "
            f"{MAX_QUESTION_CHARS:,}: ask about one thing at a time, or search for a phrase")
    return text


def _data_dir(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: give the folder for the index, e.g. ./data")
    return text


def _collection(text: str) -> str:
    from rag.config import collection_name_problem

    problem = collection_name_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


_EVAL_HELP = "measure retrieval and answers (BEIR folders, question files)"


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The `rag` parser. ``argv``: the arguments it is built to parse; `rag eval`'s options are
    added only when they name it (or when not given), so that other commands start quickly."""
    parser = argparse.ArgumentParser(prog="rag", description="Chat with your documents, locally.")
    parser.add_argument("--data-dir", type=_data_dir, help="override RAG_DATA_DIR")
    parser.add_argument("--collection", type=_collection, metavar="NAME",
                        help="the collection (knowledge base) to use; override RAG_COLLECTION")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="index a folder (a sync: new, changed, removed files)")
    p.add_argument("folder")
    p.add_argument("--dry-run", action="store_true", help="print what a sync would do")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--strict", action="store_true", help="exit 1 when a file failed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--password", action="append", metavar="FILE=PASSWORD",
                   help="password of an encrypted PDF (path relative to the folder)")
    p.add_argument("--passwords-file", metavar="TSV",
                   help="passwords of encrypted PDFs, one FILE<TAB>PASSWORD per line")
    p.add_argument("--verify", action="store_true",
                   help="check that the manifest and the index agree, and that the index can be "
                   "read; repair (a damaged index is rebuilt from the files), then sync")
    p.add_argument("--follow-links", action="store_true",
                   help="also follow symbolic links to files and folders outside FOLDER "
                   "(default: such links are reported and not read)")
    p.add_argument("--watch", action="store_true",
                   help="keep syncing as files are added, changed and removed (Ctrl-C stops)")
    p.add_argument("--debounce", type=float, default=2.0, metavar="SECONDS",
                   help="with --watch: sync once changes have settled this long (default 2)")
    p.add_argument("--retry", type=float, default=30.0, metavar="SECONDS",
                   help="with --watch: after a failed sync (folder gone, Chroma server down), "
                   "try again this long after, or at the next change (default 30)")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("search", help="ranked chunks for a question")
    p.add_argument("question", type=_question)
    p.add_argument("--k", type=_top_k, default=None, help="how many, 1 to 100 (default RAG_TOP_K)")
    _add_retrieval_flags(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question from the documents, with sources")
    p.add_argument("question", type=_question)
    p.add_argument("--k", type=_top_k, default=None,
                   help="chunks retrieved for the model (default RAG_TOP_K; the in-process "
                   "model gets those within RAG_LOCAL_CONTEXT_TOKENS)")
    p.add_argument("--extract", action="store_true",
                   help="quote the passages' best sentences instead of asking a model "
                   "(as RAG_ANSWER_MODE=extract)")
    _add_retrieval_flags(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("status", help="backend, model, index location and size")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    from application.collections import add_collections_parser
    from application.evaluation.cli import add_eval_parser

    add_collections_parser(sub, _app)
    if argv is None or "eval" in argv:
        add_eval_parser(sub)
    else:  # `rag --help` still lists it; its options import the retriever (numpy, the store)
        sub.add_parser("eval", help=_EVAL_HELP)

    p = sub.add_parser("ui", help="serve the browser UI")
    p.add_argument("--port", type=port_number, default=8501, help="1 to 65535 (default 8501)")
    p.add_argument("--address", default="localhost")
    p.set_defaults(func=cmd_ui)
    return parser


def _process_age() -> float:
    """Seconds since this process started (Linux's /proc; 0 elsewhere): the interpreter's start
    and the imports before ``main`` are part of what a user waits for."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22, starttime: clock ticks after boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    if argv is None:  # the `rag` command: its time starts with the process
        started -= _process_age()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    args.started = started  # the ingest summary's time is the whole command's
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
