#!/usr/bin/env python
"""Ingest benchmark: our real pipeline on a folder, into a fresh data dir.

    .venv/bin/python bench/ingest.py CORPUS [--backend torch|onnx|openvino] [--json] [--reference FILE]
                                            [--rerun]

Runs ``application.factory.App(settings).pipeline.sync(CORPUS)`` exactly as ``rag ingest`` does, on a
new temporary data dir, and prints pages/s, chunks/s, time per stage, peak RSS and the number of
embeddings computed. ``--reference`` takes the JSON the reference pipeline printed
(``../shared/bench/reference_ingest.py``) and adds the ratio of pages/s.

``--rerun`` then runs the same sync a second time on the same data dir, as a second
``rag ingest CORPUS`` would: a new ``App`` (model loaded again), nothing changed on disk. It
reports that run's seconds, the embeddings it computed (expected: 0) and its time as a share
of the first run's (the target: under 5%).

Stages: the pipeline parses files in worker processes, embeds in a background thread and
chunks and writes in this one, so the stages overlap and do not add up to the total. Measured
here: model load, embed (time inside ``embed_documents``, by wrapping the embedder: the
critical path), store (time inside Chroma writes, by wrapping the store; it runs while the
next batch embeds), and ``embedder_idle`` (the sync's time with no batch embedding: the first
files parsed and chunked, the last files written, planning); the workers' CPU time is reported
as ``parse_cpu_s``.

The ONNX export is a one-time cost per model and data dir (``rag`` keeps it in
``RAG_DATA_DIR/models``). The benchmark keeps one export in ``--model-cache`` and links it into
the fresh data dir, as a second ingest would find it; the export time is printed when it
happens. ``--cold`` exports inside the timed run instead.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# This file is bench/ingest.py: its folder must not shadow the ``ingest`` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.machine import children_cpu_seconds, machine, peak_rss_mb, versions  # noqa: E402

T_START = time.perf_counter()


class TimedEmbedder:
    """The Embedder protocol around a real embedder, summing the time spent embedding."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.max_tokens = inner.max_tokens
        self.batch_size = getattr(inner, "batch_size", 32)
        self.seconds = 0.0
        self.calls = 0
        self.texts = 0

    def count_tokens(self, text: str) -> int:
        return int(self.inner.count_tokens(text))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        started = time.perf_counter()
        out = self.inner.embed_documents(texts)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        self.texts += len(texts)
        return np.asarray(out)

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self.inner.embed_query(text))


def time_methods(obj: Any, names: Sequence[str], total: list[float]) -> None:
    """Wrap ``obj``'s methods so the time spent in them adds up in ``total[0]``."""
    for name in names:
        method = getattr(obj, name)

        def timed(*args: Any, _method: Callable[..., Any] = method, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                total[0] += time.perf_counter() - started

        setattr(obj, name, timed)


def link_onnx_export(settings: Any, cache: Path) -> float | None:
    """Export once into ``cache`` (timed), then link it into the fresh data dir."""
    from rag.onnx_embedder import INT8_FILE, ensure_export, ensure_int8, model_cache_key
    from rag.openvino_embedder import OV_FILE, OpenVinoEmbedder

    key = model_cache_key(settings.embedding_model)
    started = time.perf_counter()
    fresh = not (cache / key / "meta.json").is_file()
    ensure_export(settings.embedding_model, cache / key)
    if settings.embedding_backend == "onnx":  # onnxruntime's int8 is made on its first use
        fresh = fresh or not (cache / key / INT8_FILE).is_file()
        ensure_int8(cache / key)
    if settings.embedding_backend == "openvino":
        fresh = fresh or not (cache / key / OV_FILE).is_file()
        OpenVinoEmbedder(settings.embedding_model, cache)  # quantises for OpenVINO once
    export_s = time.perf_counter() - started if fresh else None
    target = settings.data_dir / "models"
    target.mkdir(parents=True, exist_ok=True)
    (target / key).symlink_to(cache / key, target_is_directory=True)
    return export_s


def run(args: argparse.Namespace) -> dict[str, Any]:
    from application.factory import App
    from rag.config import Settings

    corpus = args.corpus.resolve()
    work = Path(tempfile.mkdtemp(prefix="rag-bench-ingest-"))
    overrides: dict[str, Any] = {"data_dir": work / "data", "embedding_backend": args.backend}
    if args.workers is not None:
        overrides["ingest_workers"] = args.workers
    settings = Settings(_env_file=None, **overrides)  # type: ignore[call-arg]
    export_s = None
    if args.backend in ("onnx", "openvino") and not args.cold:
        export_s = link_onnx_export(settings, args.model_cache)
    load_before = machine()["loadavg_1_5_15"]

    t0 = time.perf_counter()
    app = App(settings)
    embedder = TimedEmbedder(app.embedder)
    t_model = time.perf_counter()
    app.__dict__["embedder"] = embedder  # cached_property: the pipeline and chunker use this one
    store_s = [0.0]
    time_methods(app.store, ["upsert", "delete", "open_for_writing"], store_s)
    report = app.pipeline.sync(corpus)
    t_end = time.perf_counter()
    close = getattr(app.pipeline, "close", None)
    if close is not None:
        close()
    rerun = second_run(settings, corpus, total=t_end - t0) if args.rerun else None

    total = t_end - t0
    sync_s = t_end - t_model
    out: dict[str, Any] = {
        "pipeline": "rag (bench/ingest.py): App.pipeline.sync",
        "corpus_dir": str(corpus),
        "backend": args.backend,
        "embedder": type(embedder.inner).__name__,
        "ingest_workers": settings.ingest_workers,
        "batch_size": settings.embedding_batch_size,
        "chunk_size_tokens": settings.chunk_size,
        "files": report.files,
        "files_indexed": len(report.indexed),
        "files_failed": len(report.failed),
        "failed": report.failed,
        "skipped": len(report.skipped),
        "pages": report.pages,
        "chunks": report.chunks,
        "embedded": report.embedded,
        "embed_calls": embedder.calls,
        "seconds": {
            "python_imports": round(t0 - T_START, 2),
            "onnx_export_once": None if export_s is None else round(export_s, 1),
            "model_load": round(t_model - t0, 2),
            "sync": round(sync_s, 2),
            "embed": round(embedder.seconds, 2),
            "store": round(store_s[0], 2),
            "embedder_idle": round(sync_s - embedder.seconds, 2),
            "total": round(total, 2),
        },
        "parse_cpu_s": children_cpu_seconds(),
        "pages_per_s": round(report.pages / total, 2) if total else None,
        "chunks_per_s": round(report.chunks / total, 2) if total else None,
        "embed_chunks_per_s": (round(embedder.texts / embedder.seconds, 1)
                               if embedder.seconds else None),
        "peak_rss_mb": peak_rss_mb(),
        "collection_count_after": app.store.count(),
        "machine": {**machine(), "loadavg_at_start": load_before},
        "versions": versions(),
    }
    if rerun is not None:
        out["rerun"] = rerun
    if args.reference:
        ref = json.loads(args.reference.read_text())
        out["reference"] = {
            "pages": ref["pages"], "chunks": ref["chunks"], "total_s": ref["seconds"]["total"],
            "pages_per_s": ref["pages_per_s"], "peak_rss_mb": ref["peak_rss_mb"],
        }
        out["speedup_pages_per_s"] = round(out["pages_per_s"] / ref["pages_per_s"], 2)
        out["speedup_wall_time"] = round(ref["seconds"]["total"] / total, 2)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        out["data_dir"] = str(settings.data_dir)
    return out


def second_run(settings: Any, corpus: Path, *, total: float) -> dict[str, Any]:
    """The same sync again on the same data dir, as a second `rag ingest` would run it."""
    from application.factory import App

    t0 = time.perf_counter()
    app = App(settings)
    embedder = TimedEmbedder(app.embedder)
    t_model = time.perf_counter()
    app.__dict__["embedder"] = embedder
    report = app.pipeline.sync(corpus)
    t_end = time.perf_counter()
    app.pipeline.close()
    seconds = t_end - t0
    return {
        "files_unchanged": len(report.unchanged),
        "files_changed": len(report.indexed) + len(report.updated) + len(report.removed),
        "files_failed": len(report.failed),  # failed before, not read again
        "embedded": report.embedded,
        "embed_calls": embedder.calls,
        "seconds": {"model_load": round(t_model - t0, 2), "sync": round(t_end - t_model, 2),
                    "total": round(seconds, 2)},
        "share_of_first_run": round(seconds / total, 4) if total else None,
    }


def table(r: dict[str, Any]) -> str:
    s = r["seconds"]
    rss = r["peak_rss_mb"]
    lines = [
        f"corpus      {r['corpus_dir']}",
        f"backend     {r['backend']} ({r['embedder']}), {r['ingest_workers']} parse workers",
        f"files       {r['files']} ({r['files_indexed']} indexed, {r['files_failed']} failed, "
        f"{r['skipped']} skipped)",
        f"pages       {r['pages']}    chunks {r['chunks']}    embedded {r['embedded']}",
        f"total       {s['total']} s    pages/s {r['pages_per_s']}    chunks/s {r['chunks_per_s']}",
        f"stages      model load {s['model_load']} s | embed {s['embed']} s | store {s['store']} s"
        f" (beside the embedding) | embedder idle {s['embedder_idle']} s (parse runs in "
        f"workers: {r['parse_cpu_s']} CPU s)",
        f"embed rate  {r['embed_chunks_per_s']} chunks/s",
        f"peak RSS    {rss['self']} MB (this process), {rss['largest_child']} MB (largest worker)",
        f"machine     {r['machine']['cores']} cores, {r['machine']['cpu']}, load "
        f"{r['machine']['loadavg_at_start']} at start, {r['machine']['loadavg_1_5_15']} at end",
    ]
    if "rerun" in r:
        again = r["rerun"]
        lines.append(
            f"rerun       {again['seconds']['total']} s (model load {again['seconds']['model_load']}"
            f" s, sync {again['seconds']['sync']} s) = {100 * again['share_of_first_run']:.1f}% of "
            f"the first run; embedded {again['embedded']}; {again['files_unchanged']} unchanged, "
            f"{again['files_changed']} changed, {again['files_failed']} failed before")
    if s["onnx_export_once"] is not None:
        lines.append(f"onnx export {s['onnx_export_once']} s (once, not in the total)")
    if "reference" in r:
        ref = r["reference"]
        lines.append(f"reference   {ref['pages']} pages in {ref['total_s']} s = "
                     f"{ref['pages_per_s']} pages/s -> ours x{r['speedup_pages_per_s']} pages/s")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--backend", choices=["torch", "onnx", "openvino"], default="openvino")
    ap.add_argument("--workers", type=int, default=None, help="RAG_INGEST_WORKERS for the run")
    ap.add_argument("--model-cache", type=Path, default=Path("/tmp/rag-bench/models"))
    ap.add_argument("--cold", action="store_true", help="export the ONNX model inside the run")
    ap.add_argument("--reference", type=Path, help="reference_ingest.py's JSON output")
    ap.add_argument("--keep", action="store_true", help="keep the data dir and print its path")
    ap.add_argument("--rerun", action="store_true",
                    help="sync the unchanged corpus again on the same data dir and report it")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not args.corpus.is_dir():
        ap.error(f"{args.corpus} is not a folder")
    result = run(args)
    print(json.dumps(result, indent=1) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
