#!/usr/bin/env python
"""Nothing changed: `rag ingest` of an unchanged folder and `rag status`, as whole processes.

    .venv/bin/python bench/noop.py [FILE_OR_FOLDER ...] [--runs N] [--search] [--json]

Copies the inputs (default: knowledge_base/ and two docugami 10-Qs from ../shared/data) into a
temporary folder, then runs, each as its own `rag` process on a fresh data dir:

1. `rag ingest DIR` once (the first ingest; the ONNX export of the model is kept in
   ``--models-dir`` between runs of the benchmark, as a second data dir would find it);
2. `rag ingest DIR` again ``--runs`` times, nothing changed;
3. `rag status` ``--runs`` times; with ``--search``, `rag search` too.

For each: wall time as the caller sees it (process start to exit), p50 and max; the time the
command's summary reports; CPU seconds and peak RSS of that process alone (``os.wait4``). The
ratio is the unchanged re-run's p50 over the first ingest. Machine, CPU flags and load are
printed with the figures: compare runs on one machine only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_flags, machine  # noqa: E402

RAG = str(Path(sys.executable).parent / "rag")
TEN_QS = ["2022 Q3 AAPL.pdf", "2023 Q1 INTC.pdf"]
DOCUGAMI_10Q = ROOT.parent / "shared" / "data" / "docugami" / "sec-10-q" / "data" / "v1" / "docs"


def timed(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One `rag` process: wall seconds, its own CPU seconds and peak RSS, its stdout."""
    with tempfile.TemporaryFile("w+") as errors:
        started = time.perf_counter()
        proc = subprocess.Popen([RAG, *args], stdout=subprocess.PIPE, stderr=errors, env=env,
                                text=True)
        # communicate() would reap the child and lose its rusage: read, then wait4 ourselves
        out = proc.stdout.read() if proc.stdout else ""
        if proc.stdout:
            proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        errors.seek(0)
        err = errors.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"rag {' '.join(args)} failed ({proc.returncode}): {err.strip()}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "rss_mb": usage.ru_maxrss / 1024.0, "stdout": out}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    walls = [r["wall_s"] for r in runs]
    out = {"runs": len(runs), "wall_p50_s": round(statistics.median(walls), 3),
           "wall_max_s": round(max(walls), 3),
           "cpu_p50_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
           "peak_rss_mb": round(max(r["rss_mb"] for r in runs), 1)}
    reported = [r["reported_s"] for r in runs if "reported_s" in r]
    if reported:
        out["reported_p50_s"] = round(statistics.median(reported), 2)
    return out


def ingest(folder: Path, env: dict[str, str]) -> dict[str, Any]:
    run = timed(["ingest", str(folder), "--json"], env)
    report = json.loads(run["stdout"])
    run["reported_s"] = report["seconds"]
    run["report"] = {k: report[k] if isinstance(report[k], int) else len(report[k])
                     for k in ("files", "chunks", "embedded", "indexed", "unchanged")}
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="*", type=Path,
                        help="files or folders to ingest (default: knowledge_base and two 10-Qs)")
    parser.add_argument("--runs", type=int, default=7, help="re-runs and status runs (default 7)")
    parser.add_argument("--search", action="store_true", help="also time `rag search`")
    parser.add_argument("--models-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "rag-bench-models",
                        help="where the ONNX export is kept between runs of the benchmark")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    inputs = args.inputs or [ROOT / "knowledge_base", *(DOCUGAMI_10Q / n for n in TEN_QS
                                                       if (DOCUGAMI_10Q / n).is_file())]
    work = Path(tempfile.mkdtemp(prefix="rag-bench-noop-"))
    try:
        folder = work / "docs"
        folder.mkdir()
        for item in inputs:
            if item.is_dir():
                shutil.copytree(item, folder / item.name)
            else:
                shutil.copy2(item, folder / item.name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
        env.update(RAG_DATA_DIR=str(work / "data"), RAG_MODELS_DIR=str(args.models_dir),
                   HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        first = ingest(folder, env)
        again = [ingest(folder, env) for _ in range(args.runs)]
        assert all(r["report"]["indexed"] == 0 and r["report"]["embedded"] == 0 for r in again)
        status = [timed(["status", "--json"], env) for _ in range(args.runs)]
        result: dict[str, Any] = {
            "machine": {**machine(), "cpu_flags": cpu_flags()},
            "inputs": [str(p) for p in inputs],
            "first_ingest": {**summary([first]), **first["report"]},
            "unchanged_ingest": summary(again),
            "status": summary(status),
        }
        if args.search:
            result["search"] = summary([timed(["search", "what is HNSW?", "--json"], env)
                                        for _ in range(args.runs)])
        result["ratio_unchanged_over_first"] = round(
            result["unchanged_ingest"]["wall_p50_s"] / first["wall_s"], 4)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    m = result["machine"]
    print(f"{m['cpu']} ({m['cores']} cores; {' '.join(m['cpu_flags'])}), load {m['loadavg_1_5_15']}")
    f = result["first_ingest"]
    print(f"first ingest: {f['files']} files, {f['chunks']} chunks, wall {f['wall_max_s']:.2f} s "
          f"(reported {f['reported_p50_s']:.1f} s), peak RSS {f['peak_rss_mb']:.0f} MB")
    for name in ("unchanged_ingest", "status", "search"):
        if name in result:
            s = result[name]
            line = (f"{name}: wall p50 {s['wall_p50_s']:.2f} s, max {s['wall_max_s']:.2f} s, "
                    f"cpu p50 {s['cpu_p50_s']:.2f} s, peak RSS {s['peak_rss_mb']:.0f} MB")
            if "reported_p50_s" in s:
                line += f", reported p50 {s['reported_p50_s']:.1f} s"
            print(line + f" ({s['runs']} runs)")
    print(f"unchanged re-run / first ingest: {result['ratio_unchanged_over_first']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
