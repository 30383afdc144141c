#!/usr/bin/env python
"""Query latency benchmark: ``Retriever.retrieve`` as ``rag search`` runs it, per mode.

    .venv/bin/python bench/query.py [--n 100000] [--data-dir DIR] [--json]

Each measured query is one ``app.retriever.retrieve(question, SearchOptions(k, mode))``: embed the
question, dense search in Chroma, BM25 search (with its check that the index is current),
fusion, fetching the texts of the hits kept and merging neighbours, exactly the work of
``rag search``. The model and the clients are loaded once; a few warm-up queries run first.
Modes are interleaved query by query, so a burst of load on the machine hits all of them alike.

Two indexes are measured:

- current size: knowledge_base/ ingested into a fresh data dir (or ``--data-dir``, an existing
  one), with questions about knowledge_base/;
- ``--n`` chunks (default 100,000): a real corpus (docugami's SEC 10-Q filings, or
  knowledge_base/ when that data is absent) ingested once, then replicated without embedding N
  texts: each copy drops a tenth of the words and changes half of the numbers, and its vector
  is the original plus Gaussian noise (sigma 0.01 per dimension, renormalised; cosine to the
  original about 0.98). Copies are written with ``ChromaStore.upsert`` under their own ids and
  sources, then the BM25 index is built. Questions: the 195 of docugami's QA set.

The built indexes are cached under ``--cache`` (default /tmp/rag-bench/query), so a re-run
only measures; ``--rebuild`` builds them again. ``--store-only`` stops once the big index's
Chroma collection is written (a later run builds BM25 and measures). ``--lexical-only N``
measures BM25 alone at N chunks replicated the same way but never written to Chroma (its
build time, peak memory, disk size and search latency): at a million chunks Chroma could not
be built on the shared 2-core machine (docs/performance.md).

The breakdown times the calls inside one retrieval: ``embed`` (``embed_query``), ``dense``
(``ChromaStore.query`` or ``nearest``), ``lexical`` (``LexicalIndex.search``), ``fetch``
(``ChromaStore.get`` of the texts of the hits kept) and ``rest`` (fusion, neighbour merging).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# This file is in bench/, next to bench/ingest.py, which must not shadow the ``ingest`` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.machine import load_average, machine, peak_rss_mb, versions  # noqa: E402

KNOWLEDGE_BASE = ROOT / "knowledge_base"
DOCUGAMI = ROOT.parent / "shared" / "data" / "docugami" / "sec-10-q" / "data" / "v1"
MODES = ("dense", "lexical", "hybrid")
STAGES = ("embed", "dense", "lexical", "fetch")
BUILD_FORMAT = 2  # bump when the replication changes, so cached indexes are rebuilt

# Questions a reader of knowledge_base/ asks (the current-size index).
KB_QUESTIONS = [
    "What is UMAP used for?",
    "What does ef_search control?",
    "How does HNSW search work?",
    "What is cosine similarity?",
    "When is the dot product the same as cosine similarity?",
    "What is the difference between word embeddings and sentence embeddings?",
    "How do I ingest a folder of documents?",
    "What does rag status show?",
    "How is chunk overlap chosen?",
    "What is reciprocal rank fusion?",
    "How does BM25 score a document?",
    "Why rerank the retrieved chunks?",
    "What happens when the answer is not in the documents?",
    "How do I change the embedding model?",
    "What do I do when Ollama is not reachable?",
    "Which file formats are supported?",
    "How are citations checked?",
    "What is t-SNE?",
    "How do image embeddings work?",
    "What is product quantization?",
]


def docugami_questions() -> list[str]:
    with (DOCUGAMI / "qna_data.csv").open(encoding="utf-8-sig", newline="") as f:
        return [row["Question"].strip() for row in csv.DictReader(f) if row["Question"].strip()]


# --- building the indexes ----------------------------------------------------------------------


def settings_for(data_dir: Path, model_cache: Path) -> Any:
    from rag.config import Settings

    return Settings(_env_file=None, data_dir=data_dir, models_dir=model_cache)  # type: ignore[call-arg]


def ingest(folder: Path, data_dir: Path, model_cache: Path) -> dict[str, Any]:
    from application.factory import App

    app = App(settings_for(data_dir, model_cache))
    try:
        report = app.pipeline.sync(folder)
    finally:
        app.pipeline.close()
    if report.failed:
        print(f"warning: {len(report.failed)} files failed: {report.failed}", file=sys.stderr)
    return {"folder": str(folder), "files": len(report.indexed), "pages": report.pages,
            "chunks": report.chunks, "seconds": round(report.seconds, 1)}


_NUMBER = re.compile(r"\d+")


def vary_text(text: str, rng: np.random.Generator) -> str:
    """The text with about a tenth of its words dropped and half of its numbers changed."""
    words = text.split(" ")
    kept = [w for w, keep in zip(words, rng.random(len(words)) >= 0.1, strict=True) if keep]

    def number(m: re.Match[str]) -> str:
        if rng.random() < 0.5:
            return m.group()
        width = len(m.group())
        return str(int(rng.integers(10 ** (width - 1) if width > 1 else 0, 10**width)))

    return _NUMBER.sub(number, " ".join(kept))


def replicate(base_dir: Path, target_dir: Path, n: int, model_cache: Path,
              noise: float = 0.01, batch: int = 5000,
              sync_threshold: int = 250_000) -> dict[str, Any]:
    """Write ``n`` chunks into a fresh collection: the base's chunks, then varied copies."""
    from application.factory import build_store
    from rag.types import Chunk

    base = build_store(settings_for(base_dir, model_cache))
    records = list(base.iter_all(embeddings=True))
    if not records:
        raise SystemExit(f"no chunks in {base_dir}: the base ingest failed")
    embedder_id = base.embedder_id() or ""
    vectors = np.stack([r[3] for r in records]).astype(np.float32)
    target = build_store(settings_for(target_dir, model_cache))
    # Chroma writes its whole HNSW index to disk every ``sync_threshold`` (default 1,000) added
    # vectors: at a million chunks that is a thousand writes of up to 1.5 GB, and the build
    # slowed from 400 to 80 chunks a second by 25,000. The collection is created first with a
    # threshold of 250,000 (writes at 250k, 500k, 750k, 1M); the search settings are Chroma's
    # defaults (ef_search 100, M 16, ef_construction 100), as in the app.
    target._client.get_or_create_collection(  # a bench-only setting
        target.collection_name,
        metadata={"hnsw:space": "cosine", "embedder": embedder_id, "dimension": vectors.shape[1]},
        configuration={"hnsw": {"space": "cosine", "sync_threshold": sync_threshold}},
    )
    target.open_for_writing(embedder_id, vectors.shape[1])
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    written = 0
    copy = 0
    while written < n:
        take = min(len(records), n - written)
        if copy == 0:
            vecs = vectors[:take]
        else:
            vecs = vectors[:take] + rng.normal(0.0, noise, (take, vectors.shape[1])).astype(
                np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        chunks: list[Chunk] = []
        for cid, text, meta, _ in records[:take]:
            page = meta.get("page")
            if copy:
                text = vary_text(text, rng)
            chunks.append(Chunk(
                id=cid if copy == 0 else f"{cid}~{copy}",
                text=text,
                source=str(meta["source"]) if copy == 0 else f"copy-{copy:03d}/{meta['source']}",
                page=int(page) if page is not None else None,
                heading=str(meta.get("heading", "")),
                chunk_index=int(meta.get("chunk_index", 0)),
                content_hash=hashlib.sha256(f"{meta.get('content_hash')}:{copy}".encode())
                .hexdigest(),
                chunk_hash=hashlib.sha256(text.encode()).hexdigest(),
                root=str(meta.get("root", "")),
            ))
        for start in range(0, take, batch):
            target.upsert(chunks[start : start + batch], vecs[start : start + batch])
        written += take
        copy += 1
        print(f"  {written:,}/{n:,} chunks written ({time.perf_counter() - started:.0f} s)",
              file=sys.stderr, flush=True)
    return {"base_chunks": len(records), "copies": copy, "chunks": target.count(),
            "store_s": round(time.perf_counter() - started, 1)}


def cached_index(args: argparse.Namespace) -> tuple[Path, dict[str, Any], list[str]]:
    """The replicated index of ``args.n`` chunks (built and cached on first use)."""
    use_docugami = (DOCUGAMI / "docs").is_dir() and not args.base_kb
    name = "sec10q" if use_docugami else "kb"
    questions = docugami_questions() if use_docugami else KB_QUESTIONS
    base_dir = args.cache / f"base-{name}" / "data"
    target = args.cache / f"n{args.n}-{name}-v{BUILD_FORMAT}"
    marker = target / "built.json"
    stored = target / "stored.json"  # the Chroma collection is complete (BM25 maybe not yet)
    if marker.is_file() and not args.rebuild:
        return target / "data", json.loads(marker.read_text()), questions
    if args.rebuild or not stored.is_file():
        shutil.rmtree(target, ignore_errors=True)
        info: dict[str, Any] = {
            "base": "docugami sec-10-q PDFs" if use_docugami else "knowledge_base"}
        if not (base_dir.parent / "ingested.json").is_file() or args.rebuild:
            shutil.rmtree(base_dir.parent, ignore_errors=True)
            print(f"ingesting the base corpus into {base_dir} ...", file=sys.stderr, flush=True)
            base_info = ingest(DOCUGAMI / "docs" if use_docugami else KNOWLEDGE_BASE, base_dir,
                               args.model_cache)
            (base_dir.parent / "ingested.json").write_text(json.dumps(base_info))
        info["base_ingest"] = json.loads((base_dir.parent / "ingested.json").read_text())
        print(f"replicating to {args.n:,} chunks in {target} ...", file=sys.stderr, flush=True)
        info.update(replicate(base_dir, target / "data", args.n, args.model_cache))
        info["store_peak_rss_mb"] = peak_rss_mb()["self"]
        stored.write_text(json.dumps(info, indent=1))
        if args.store_only:
            raise SystemExit(f"collection stored in {target}; BM25 not built (--store-only)")
    info = json.loads(stored.read_text())

    from application.factory import App

    app = App(settings_for(target / "data", args.model_cache))
    started = time.perf_counter()
    app.lexical.ensure_current()
    info["lexical_build_s"] = round(time.perf_counter() - started, 1)
    info["built_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    marker.write_text(json.dumps(info, indent=1))
    return target / "data", info, questions


# --- BM25 alone at sizes Chroma cannot be built to here --------------------------------------


class SyntheticStore:
    """What ``LexicalIndex`` reads of a store, for ``n`` chunks replicated from ``records`` as
    ``replicate`` makes them (copies with a tenth of the words dropped and half of the numbers
    changed, under their own ids and sources), streamed, never written to Chroma."""

    def __init__(self, records: list[tuple[str, str, dict[str, Any], Any]], n: int) -> None:
        self.records, self.n = records, n

    def collection_id(self) -> str:
        return "synthetic"

    def generation(self) -> str:
        return f"n{self.n}"

    def count(self) -> int:
        return self.n

    def all_ids(self) -> list[str]:
        return [cid for cid, *_ in self.iter_all()]

    def read_chunks(self, ids: Any) -> Any:
        wanted = set(ids)
        return ((cid, text, meta) for cid, text, meta, _ in self.iter_all() if cid in wanted)

    def iter_all(self, *, embeddings: bool = False, page_size: int = 2000) -> Any:
        rng = np.random.default_rng(0)
        written, copy = 0, 0
        while written < self.n:
            take = min(len(self.records), self.n - written)
            for cid, text, meta, _ in self.records[:take]:
                if copy:
                    yield (f"{cid}~{copy}", vary_text(text, rng),
                           {**meta, "source": f"copy-{copy:03d}/{meta['source']}"}, None)
                else:
                    yield cid, text, meta, None
            written += take
            copy += 1


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024.0, 1)
    return 0.0


def lexical_only(args: argparse.Namespace) -> dict[str, Any]:
    """BM25 (``LexicalIndex``) at ``args.lexical_only`` chunks: build time, peak memory and
    disk, then ``search`` latency for docugami's questions at the hybrid pool (candidates),
    against bm25s's own ``get_scores`` on the same index (what ``search`` called before)."""
    from application.factory import build_store
    from rag.lexical import LexicalIndex

    n = args.lexical_only
    base_dir = args.cache / "base-sec10q" / "data"
    if not (base_dir.parent / "ingested.json").is_file():
        raise SystemExit(f"no base corpus in {base_dir}: run with --n first (it ingests it)")
    settings = settings_for(base_dir, args.model_cache)
    records = list(build_store(settings).iter_all())
    store = SyntheticStore(records, n)
    directory = args.cache / f"lexical-n{n}"
    out: dict[str, Any] = {"chunks": n, "base_chunks": len(records), "dir": str(directory)}
    started = time.perf_counter()
    index = LexicalIndex(directory, store)  # type: ignore[arg-type]
    index.ensure_current()
    out["open_or_build_s"] = round(time.perf_counter() - started, 1)
    out["built_now"] = index.rebuilds == 1
    out["peak_rss_mb"] = peak_rss_mb()["self"]
    out["rss_after_open_mb"] = rss_mb()
    out["disk_mb"] = round(sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
                           / 2**20, 1)
    out["nnz"] = len(index._bm25.scores["data"])
    out["vocabulary"] = len(index._bm25.vocab_dict)
    questions = args.queries or docugami_questions()
    pool = settings.retrieval_candidates
    for q in questions[: args.warmup]:
        index.search(q, pool)
    new, old = [], []
    bm25 = index._bm25
    for i in range(max(args.samples, len(questions))):
        q = questions[i % len(questions)]
        t0 = time.perf_counter()
        index.search(q, pool)
        new.append(time.perf_counter() - t0)
        t0 = time.perf_counter()  # before: bm25s's get_scores (np.add.at), then the same top-k
        terms = [t for t in index.analyzer.terms(q) if t in bm25.vocab_dict]
        if terms:
            scores = np.asarray(bm25.get_scores(terms), dtype=np.float32)
            hits = np.flatnonzero(scores > 0)
            k = min(pool, hits.size)
            if k:
                top = hits[np.argpartition(-scores[hits], k - 1)[:k]]
                top = top[np.argsort(-scores[top], kind="stable")]
        old.append(time.perf_counter() - t0)
    out["search"] = percentiles(new)
    out["search_bm25s_get_scores"] = percentiles(old)
    out["rss_after_queries_mb"] = rss_mb()
    out["peak_rss_mb_after_queries"] = peak_rss_mb()["self"]
    return out


# --- measuring ---------------------------------------------------------------------------------


class StageClock:
    """Wraps methods of the app's components and adds their time to the current query's stages."""

    def __init__(self) -> None:
        self.current: dict[str, float] = {}

    def wrap(self, obj: Any, method: str, stage: str) -> None:
        inner: Callable[..., Any] | None = getattr(obj, method, None)
        if inner is None:  # an older version of the component (comparing before and after)
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.current[stage] = (self.current.get(stage, 0.0)
                                       + time.perf_counter() - started)

        setattr(obj, method, timed)


def percentiles(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values) * 1000.0
    return {"p50_ms": round(float(np.percentile(a, 50)), 2),
            "p95_ms": round(float(np.percentile(a, 95)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2),
            "mean_ms": round(float(a.mean()), 2)}


def measure(data_dir: Path, questions: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Latency of ``retrieve`` per mode on the index in ``data_dir``, after warm-up."""
    from application.factory import App
    from rag.retriever import SearchOptions

    load_before = load_average()
    started = time.perf_counter()
    app = App(settings_for(data_dir, args.model_cache))
    retriever = app.retriever  # builds the store, the embedder and the lexical index object
    load_s = time.perf_counter() - started
    chunks = app.store.count()
    k = app.settings.top_k
    options = {mode: SearchOptions(k=k, mode=mode) for mode in MODES}

    first = time.perf_counter()
    retriever.retrieve(questions[0], options["hybrid"])  # opens the persisted BM25 index
    first_query_s = time.perf_counter() - first
    for q in questions[: args.warmup]:
        for mode in MODES:
            retriever.retrieve(q, options[mode])

    clock = StageClock()
    clock.wrap(app.embedder, "embed_query", "embed")
    clock.wrap(app.store, "query", "dense")  # dense mode: ids, texts, metadata
    clock.wrap(app.store, "nearest", "dense")  # lexical, hybrid: ids and cosines only
    clock.wrap(app.lexical, "search", "lexical")
    clock.wrap(app.store, "get", "fetch")
    totals: dict[str, list[float]] = {m: [] for m in MODES}
    stages: dict[str, dict[str, list[float]]] = {
        m: {s: [] for s in (*STAGES, "rest")} for m in MODES}
    samples = max(args.samples, len(questions))
    for i in range(samples):
        q = questions[i % len(questions)]
        for mode in MODES:
            clock.current = {}
            t0 = time.perf_counter()
            retriever.retrieve(q, options[mode])
            total = time.perf_counter() - t0
            totals[mode].append(total)
            for stage in STAGES:
                stages[mode][stage].append(clock.current.get(stage, 0.0))
            stages[mode]["rest"].append(total - sum(clock.current.values()))
    return {
        "chunks": chunks,
        "queries": len(questions),
        "samples_per_mode": samples,
        "k": k,
        "candidates": app.settings.retrieval_candidates,
        "load_s": round(load_s, 2),
        "first_query_ms": round(first_query_s * 1000, 1),
        "modes": {
            mode: {**percentiles(totals[mode]),
                   "stages_median_ms": {s: round(float(np.median(v)) * 1000, 2)
                                        for s, v in stages[mode].items()},
                   "stages_p95_ms": {s: round(float(np.percentile(v, 95)) * 1000, 2)
                                     for s, v in stages[mode].items()}}
            for mode in MODES
        },
        "loadavg_before": load_before,
        "loadavg_after": load_average(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"benchmark": "bench/query.py: App.retriever.retrieve per mode",
                           "machine": machine(), "runs": []}
    work = Path(tempfile.mkdtemp(prefix="rag-bench-query-"))
    try:
        if not args.skip_current:
            if args.data_dir:
                data_dir, index = args.data_dir, {"index": f"existing data dir {args.data_dir}"}
            else:
                data_dir = work / "data"
                print("ingesting knowledge_base/ ...", file=sys.stderr, flush=True)
                index = {"index": "knowledge_base/, fresh ingest",
                         "ingest": ingest(KNOWLEDGE_BASE, data_dir, args.model_cache)}
            questions = args.queries or KB_QUESTIONS
            out["runs"].append({**index, **measure(data_dir, questions, args)})
        if args.n > 0:
            data_dir, info, questions = cached_index(args)
            questions = args.queries or questions
            out["runs"].append({"index": f"{args.n:,} chunks replicated from {info['base']}",
                                "build": info, **measure(data_dir, questions, args)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["peak_rss_mb"] = peak_rss_mb()["self"]
    out["versions"] = versions()
    return out


def table(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [f"machine  {m['cores']} cores, {m['cpu']}, {m['date_utc']}"]
    for r in result["runs"]:
        lines += [
            "",
            f"index    {r['index']}: {r['chunks']:,} chunks; {r['queries']} questions, "
            f"{r['samples_per_mode']} timed per mode, k={r['k']}, candidates={r['candidates']}",
            f"         load {r['load_s']} s, first query {r['first_query_ms']} ms; load average "
            f"{r['loadavg_before']} before, {r['loadavg_after']} after",
            f"{'mode':8} {'p50':>7} {'p95':>7} {'p99':>7}   median ms: "
            + " ".join(f"{s:>7}" for s in (*STAGES, "rest")),
        ]
        for mode, v in r["modes"].items():
            st = v["stages_median_ms"]
            lines.append(f"{mode:8} {v['p50_ms']:7.1f} {v['p95_ms']:7.1f} {v['p99_ms']:7.1f}"
                         "              " + " ".join(f"{st[s]:7.2f}" for s in (*STAGES, "rest")))
        if "build" in r:
            b = r["build"]
            lines.append(f"build    base {b['base_chunks']:,} chunks x {b['copies']} copies; "
                         f"store {b['store_s']} s, BM25 {b['lexical_build_s']} s "
                         f"({b['built_utc']})")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="chunks in the big index (0: skip)")
    ap.add_argument("--data-dir", type=Path, help="measure this existing data dir as 'current'")
    ap.add_argument("--skip-current", action="store_true", help="only the big index")
    ap.add_argument("--base-kb", action="store_true",
                    help="replicate knowledge_base/ instead of docugami's 10-Q filings")
    ap.add_argument("--queries", type=lambda p: [q.strip() for q in Path(p).read_text(
        encoding="utf-8").splitlines() if q.strip()], help="a file of questions, one a line")
    ap.add_argument("--samples", type=int, default=200, help="timed queries per mode and index")
    ap.add_argument("--warmup", type=int, default=5, help="untimed questions first")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/rag-bench/query"))
    ap.add_argument("--model-cache", type=Path, default=Path("/tmp/rag-bench/models"))
    ap.add_argument("--rebuild", action="store_true", help="build the cached indexes again")
    ap.add_argument("--store-only", action="store_true",
                    help="build the big index's Chroma collection and stop (BM25 on a later run)")
    ap.add_argument("--lexical-only", type=int, default=0, metavar="N",
                    help="only BM25, at N replicated chunks never written to Chroma (build, "
                    "memory, disk, search latency); needs the base corpus of a --n run")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.lexical_only:
        lex = {"benchmark": "bench/query.py --lexical-only", "machine": machine(),
               **lexical_only(args), "versions": versions()}
        print(json.dumps(lex, indent=1))
        return 0
    result = run(args)
    print(json.dumps(result, indent=1) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
