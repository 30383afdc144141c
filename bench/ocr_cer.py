#!/usr/bin/env python
"""OCR benchmark: the loaders on scanned PDFs (and images), time per page and character error rate.

    .venv/bin/python bench/ocr_cer.py [FILE_OR_FOLDER ...] [--json]

Default input: ``../shared/data/pdf_robustness/scanned_no_text`` (15 scans without a text
layer) and docugami's scanned protocol ``NCT06155240_Prot_SAP_000.pdf``. Each file is read by
``ingest.loaders.load_file`` in this process, as a loader worker reads it (OCR on), and the
benchmark prints its pages, pages OCRed, seconds (wall, and CPU of this process: the figure to
compare on a busy machine), characters read and the first words.

Character error rate (CER): Levenshtein distance between OCR text and the gold transcription
``ocrmypdf__linn.txt``, whitespace runs collapsed to one space on both sides, divided by the
gold's length. It is computed for every page that shows the LinnSequencer brochure: the upright
scan (linn), its CCITT and JBIG2 encodings, a skewed copy (skew), one turned a quarter through
/Rotate (rotated_skew), the four pages of cardinal, turned 0, 90, 180 and 270 degrees in the
image itself, and the brochure small on a 25 x 50 inch page (poster).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import machine

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SCANS = SHARED / "pdf_robustness" / "scanned_no_text"
DOCUGAMI_SCAN = (SHARED / "docugami" / "nih-clinical-trial-protocols" / "data" / "v1" / "docs"
                 / "NCT06155240_Prot_SAP_000.pdf")
GOLD = SCANS / "ocrmypdf__linn.txt"
# file -> pages (1-based) that show the LinnSequencer brochure of GOLD
GOLD_PAGES = {
    "ocrmypdf__linn.pdf": [1],
    "ocrmypdf__ccitt.pdf": [1],
    "ocrmypdf__jbig2.pdf": [1],
    "ocrmypdf__poster.pdf": [1],
    "ocrmypdf__skew.pdf": [1],
    "ocrmypdf__rotated_skew.pdf": [1],
    "ocrmypdf__cardinal.pdf": [1, 2, 3, 4],
}


def collapse(text: str) -> str:
    return " ".join(text.split())


def levenshtein(a: str, b: str) -> int:
    """Edit distance, one row at a time with numpy (insertions through a running minimum)."""
    if not a or not b:
        return max(len(a), len(b))
    target = np.array([ord(c) for c in b])
    cols = np.arange(len(b) + 1)
    row = cols.copy()
    for i, char in enumerate(a, start=1):
        best = np.empty_like(row)
        best[0] = i
        best[1:] = np.minimum(row[:-1] + (target != ord(char)), row[1:] + 1)
        row = np.minimum.accumulate(best - cols) + cols  # insertions: best[k] + (j - k)
    return int(row[-1])


def cer(ocr_text: str, gold: str) -> float:
    gold = collapse(gold)
    return levenshtein(collapse(ocr_text), gold) / max(1, len(gold))


def read(path: Path) -> dict[str, Any]:
    from ingest import ocr
    from ingest.loaders import load_file
    from rag.errors import LoaderError

    start, cpu = time.perf_counter(), time.process_time()
    try:
        with ocr.recording() as ocred:
            docs = load_file(path, path.name, ocr=True)
        error = ""
    except LoaderError as exc:
        docs, error = [], str(exc)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    text = "\n".join(d.text for d in docs)
    row: dict[str, Any] = {
        "file": path.name, "pages": len(docs), "ocr_pages": len(ocred),
        "seconds": round(seconds, 1), "cpu_s": round(cpu, 1),
        "chars": len(text), "error": error, "start": collapse(text)[:70],
    }
    if path.name in GOLD_PAGES and GOLD.is_file():
        gold = GOLD.read_text(encoding="utf-8")
        by_page = {d.page: d.text for d in docs}
        row["cer"] = {page: round(cer(by_page.get(page, ""), gold), 4)
                      for page in GOLD_PAGES[path.name]}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    paths: list[Path] = []
    for given in args.paths or [SCANS, DOCUGAMI_SCAN]:
        paths.extend(sorted(p for p in given.iterdir() if p.suffix.lower() != ".txt")
                     if given.is_dir() else [given])
    rows = []
    for path in paths:
        row = read(path)
        rows.append(row)
        if not args.json:
            print(f"{row['file']:<34} pages {row['pages']:>2} (OCR {row['ocr_pages']:>2}) "
                  f"{row['seconds']:>6.1f} s ({row['cpu_s']:>5.1f} s CPU)  {row['chars']:>6} chars  "
                  f"{'CER ' + str(row['cer']) + '  ' if 'cer' in row else ''}"
                  f"{row['error'] or row['start']!r}", flush=True)
    cers = [v for r in rows for v in r.get("cer", {}).values()]
    ocr_pages = sum(r["ocr_pages"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    cpu = sum(r["cpu_s"] for r in rows)
    summary = {
        "machine": machine(),
        "files": len(rows),
        "with_text": sum(1 for r in rows if r["chars"]),
        "ocr_pages": ocr_pages,
        "seconds": round(seconds, 1),
        "cpu_s": round(cpu, 1),
        "cpu_s_per_ocr_page": round(cpu / ocr_pages, 1) if ocr_pages else None,
        "cer_linn_pages": cers,
        "cer_linn_upright": rows[[r["file"] for r in rows].index("ocrmypdf__linn.pdf")]["cer"][1]
        if any(r["file"] == "ocrmypdf__linn.pdf" for r in rows) else None,
    }
    if args.json:
        print(json.dumps({"rows": rows, **summary}, indent=1))
    else:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
