#!/usr/bin/env python
"""BM25 after a small change: how long the lexical index takes to catch up with a sync.

    .venv/bin/python bench/lexical_rebuild.py DATA_DIR [--change 0.01] [--json]

DATA_DIR is an app data dir that `rag ingest` filled; its Chroma store is copied to a
temporary folder (the original is not touched). On the copy it times:

1. a build from scratch (every chunk read from Chroma and analysed, as the first sync does);
2. after ``--change`` of the chunks are deleted and written again under new ids (what a sync
   that re-indexed those files does), the rebuild that follows: since 2026-12-07 the others'
   terms are reused and only the new chunks are read and analysed (``rag.lexical``);
3. for comparison, a build from scratch of the changed collection (what step 2 cost before).

The BM25 settings are the app's (``RAG_BM25_*``). Speed is reported, never asserted.
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
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_flags, machine, peak_rss_mb  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--change", type=float, default=0.01,
                    help="share of the chunks written again under new ids (default 0.01)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from application.factory import build_lexical, build_store
    from rag.config import Settings
    from rag.lexical import LexicalIndex
    from rag.types import Chunk

    with tempfile.TemporaryDirectory(prefix="lexical-rebuild-") as tmp:
        work = Path(tmp) / "data"
        shutil.copytree(args.data_dir, work,
                        ignore=shutil.ignore_patterns("models", "lexical", "*.lock"))
        settings = Settings(_env_file=None, data_dir=work)  # type: ignore[call-arg]
        store = build_store(settings)
        index = build_lexical(settings, store)
        out: dict[str, Any] = {"benchmark": "bench/lexical_rebuild.py", "machine": {
            **machine(), "cpu_flags": cpu_flags()}, "chunks": store.count(),
            "window": index.params.window}

        started = time.perf_counter()
        index.ensure_current()
        out["scratch_s"] = round(time.perf_counter() - started, 2)
        out["scratch_analysed"] = index.analysed

        ids = store.all_ids()
        step = max(1, round(1 / args.change)) if args.change > 0 else len(ids) + 1
        picked = ids[::step]
        records = store.records(picked)
        store.delete(picked)
        chunks = [Chunk(id=f"{cid}-again", text=text, source=str(meta["source"]),
                        page=int(meta["page"]) if meta.get("page") is not None else None,
                        heading=str(meta.get("heading", "")),
                        chunk_index=int(meta.get("chunk_index", 0)),
                        content_hash=str(meta.get("content_hash", "")),
                        chunk_hash=str(meta.get("chunk_hash", "")), root=str(meta.get("root", "")),
                        context=str(meta.get("context", "")))
                  for cid, text, meta, _ in records]
        store.upsert(chunks, np.stack([vec for *_, vec in records]))
        out["changed"] = len(chunks)

        started = time.perf_counter()
        index.ensure_current()
        out["rebuild_s"] = round(time.perf_counter() - started, 2)
        out["rebuild_analysed"] = index.analysed

        fresh = LexicalIndex(Path(tmp) / "scratch", store, index.params)
        started = time.perf_counter()
        fresh.ensure_current()
        out["scratch_after_s"] = round(time.perf_counter() - started, 2)
        question = "revenue in the quarter"
        same = ({h.id: h.score for h in index.search(question, 1000)}
                == {h.id: h.score for h in fresh.search(question, 1000)})
        out["same_scores"] = same
        out["peak_rss_mb"] = peak_rss_mb()["self"]
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        m = out["machine"]
        print(f"{m['cpu']} ({m['cores']} cores; {' '.join(m['cpu_flags'])}), load "
              f"{m['loadavg_1_5_15']}, {out['chunks']:,} chunks, BM25 window {out['window']}")
        print(f"build from scratch          {out['scratch_s']:7.2f} s  "
              f"({out['scratch_analysed']:,} chunks read and analysed)")
        print(f"rebuild after {out['changed']:,} chunks were written again under new ids: "
              f"{out['rebuild_s']:.2f} s ({out['rebuild_analysed']:,} read and analysed; "
              f"from scratch {out['scratch_after_s']:.2f} s); the same scores: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
