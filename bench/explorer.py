#!/usr/bin/env python
"""Explorer benchmark: the embedding map of a 50,000-chunk index.

    .venv/bin/python bench/explorer.py [--chunks 50000] [--sample 5000] [--repeat 3] [--json]

Builds a Chroma collection of ``--chunks`` chunks in a temporary data dir without embedding
50,000 texts: ``knowledge_base/`` is ingested for real (about 80 chunks), then its chunk
vectors are replicated with small Gaussian noise (renormalised) under new ids and document
names (``copy-0042/user-guide.md``), keeping each chunk's text and metadata. Then it times
what the explorer page does (``ui/pages/explorer.py``):

- ``load_points``: read the index and draw the ``--sample`` random sample (RAG_EXPLORER_MAX_POINTS)
- ``project``: PCA of the sample to 2-D
- ``figure``: the Plotly figure of the sample (``ui.explorer_map.base_figure``) and its JSON,
  which is what the browser receives
- ``embed_query`` + ``neighbours_in_index``: a typed query's top-k in the whole index (Chroma)
- ``place``: the query on the map

The page caches the projection and its figure per index state, so ``load_points`` +
``project`` + ``figure`` is paid once per change of the index; a query costs ``embed_query``
+ ``neighbours`` + a copy of the figure (to highlight on) + its JSON.
``--keep DIR`` keeps (and on the next run reuses) the built collection.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine, peak_rss_mb, versions  # noqa: E402

KNOWLEDGE_BASE = ROOT / "knowledge_base"
QUERY = "What does ef_search control?"


def build(app: Any, chunks: int, seed: int = 0) -> dict[str, Any]:
    """Ingest knowledge_base/, then replicate its chunks with noisy vectors up to ``chunks``."""
    from rag.types import Chunk

    started = time.perf_counter()
    report = app.pipeline.sync(KNOWLEDGE_BASE)
    app.pipeline.close()
    ingest_s = time.perf_counter() - started
    base = list(app.store.iter_all(embeddings=True))
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    batch: list[Chunk] = []
    vectors: list[np.ndarray] = []
    root = str(KNOWLEDGE_BASE.resolve())
    for i in range(chunks - len(base)):
        copy, (cid, text, meta, vec) = divmod(i, len(base))[0], base[i % len(base)]
        assert vec is not None
        noisy = vec + rng.normal(0.0, 0.02, vec.shape).astype(np.float32)
        page = meta.get("page")
        batch.append(Chunk(
            id=f"synthetic-{copy:04d}-{cid}", text=text,
            source=f"copy-{copy:04d}/{meta['source']}", page=None if page is None else int(page),
            heading=str(meta.get("heading", "")), chunk_index=int(meta.get("chunk_index", 0)),
            content_hash=f"synthetic-{copy}-{meta['content_hash']}",
            chunk_hash=f"synthetic-{copy}-{meta['chunk_hash']}", root=root,
        ))
        vectors.append(noisy / np.linalg.norm(noisy))
        if len(batch) == 5000:
            app.store.upsert(batch, np.vstack(vectors))
            batch, vectors = [], []
    if batch:
        app.store.upsert(batch, np.vstack(vectors))
    return {"kb_chunks": report.chunks, "ingest_kb_s": round(ingest_s, 1),
            "replicate_s": round(time.perf_counter() - started, 1)}


def timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, dict[str, float]]:
    """``fn``'s last result, and its median and best wall time over ``repeat`` runs."""
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return result, {"median_s": round(statistics.median(times), 3), "best_s": round(min(times), 3)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import plotly.graph_objects as go

    from application.explorer import load_points, neighbours_in_index, project
    from application.factory import App
    from rag.config import Settings
    from ui.explorer_map import add_highlight, base_figure

    work = args.keep or Path(tempfile.mkdtemp(prefix="rag-bench-explorer-"))
    settings = Settings(data_dir=work / "data", models_dir=args.model_cache,  # type: ignore[call-arg]
                        explorer_max_points=args.sample, _env_file=None)
    marker = work / "built.json"  # what a kept data dir holds (Chroma is not opened to check)
    built: dict[str, Any] = {"reused": True}
    if not marker.is_file() or json.loads(marker.read_text()).get("chunks") != args.chunks:
        shutil.rmtree(settings.data_dir, ignore_errors=True)
        app = App(settings)
        built = build(app, args.chunks)
        marker.write_text(json.dumps({"chunks": args.chunks}))
    else:
        app = App(settings)
    total = app.store.count()
    load_before = machine()["loadavg_1_5_15"]
    r = args.repeat

    roots = {rec.root for rec in app.manifest.records()}
    points, t_load = timed(
        lambda: load_points(app.store, settings.explorer_max_points, roots=roots), r)
    proj, t_project = timed(lambda: project(points, "pca"), r)
    fig, t_figure = timed(lambda: base_figure(proj), r)
    _, t_copy = timed(lambda: go.Figure(fig), r)
    payload, t_json = timed(lambda: fig.to_json(), r)
    vector, t_embed = timed(lambda: app.embedder.embed_query(QUERY), r)
    hits, t_neighbours = timed(lambda: neighbours_in_index(app.store, vector, args.k), r)
    origin, t_place = timed(lambda: proj.place(vector)[0], r)
    add_highlight(fig, "Your query", origin, hits, np.zeros((len(hits), 2), np.float32),
                  "#111111", "star")
    out: dict[str, Any] = {
        "benchmark": "bench/explorer.py: application.explorer at scale",
        "chunks_in_index": total,
        "sample": len(points),
        "sampled": points.sampled,
        "documents_in_sample": len(set(points.sources)),
        "k": args.k,
        "top_hit": hits[0].source if hits else None,
        "repeat": r,
        "seconds": {
            "load_points": t_load, "project_pca": t_project, "figure": t_figure,
            "figure_copy": t_copy, "figure_json": t_json, "embed_query": t_embed,
            "neighbours_in_index": t_neighbours, "place_query": t_place,
        },
        "figure_json_mb": round(len(payload) / 1e6, 2),
        "build": built,
        "peak_rss_mb": peak_rss_mb(),
        "machine": {**machine(), "loadavg_at_start": load_before},
        "versions": versions(),
    }
    if args.keep:
        out["data_dir"] = str(settings.data_dir)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return out


def table(r: dict[str, Any]) -> str:
    s = r["seconds"]
    rows = [
        ("load_points", f"read the index, draw a sample of {r['sample']:,}"),
        ("project_pca", "PCA of the sample to 2-D"),
        ("figure", "Plotly figure of the sample (cached by the page)"),
        ("figure_copy", "a copy of it to highlight on, per run"),
        ("figure_json", f"its JSON for the browser ({r['figure_json_mb']} MB)"),
        ("embed_query", "embed a typed query"),
        ("neighbours_in_index", f"its top-{r['k']} in the whole index (Chroma)"),
        ("place_query", "the query on the map"),
    ]
    lines = [f"index       {r['chunks_in_index']:,} chunks; map shows {r['sample']:,} "
             f"(sampled: {r['sampled']}) from {r['documents_in_sample']:,} documents",
             f"{'step':<20} {'median s':>9} {'best s':>8}  what"]
    lines += [f"{name:<20} {s[name]['median_s']:>9.3f} {s[name]['best_s']:>8.3f}  {what}"
              for name, what in rows]
    once = sum(s[n]["median_s"] for n in ("load_points", "project_pca", "figure"))
    query = sum(s[n]["median_s"] for n in ("embed_query", "neighbours_in_index", "figure_copy",
                                            "figure_json", "place_query"))
    m = r["machine"]
    lines += [
        f"per index change (cached after): {once:.2f} s; per query: {query:.2f} s",
        f"top hit for {QUERY!r}: {r['top_hit']}",
        f"peak RSS    {r['peak_rss_mb']['self']} MB",
        f"machine     {m['cores']} cores, {m['cpu']}, load {m['loadavg_at_start']} at start, "
        f"{m['loadavg_1_5_15']} at end",
    ]
    if r["build"].get("reused"):
        lines.append("build       reused the collection kept by --keep")
    else:
        b = r["build"]
        lines.append(f"build       knowledge_base ingested in {b['ingest_kb_s']} s "
                     f"({b['kb_chunks']} chunks), replicated in {b['replicate_s']} s")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=50_000, help="chunks in the index")
    ap.add_argument("--sample", type=int, default=5_000, help="RAG_EXPLORER_MAX_POINTS")
    ap.add_argument("--k", type=int, default=5, help="neighbours of the query")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each step (median, best)")
    ap.add_argument("--model-cache", type=Path,
                    default=Path(os.environ.get("RAG_MODELS_DIR", "/tmp/rag-bench/models")),
                    help="where the ONNX export of the embedder is kept (RAG_MODELS_DIR)")
    ap.add_argument("--keep", type=Path, help="build the index here and keep it (reused)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
