"""Chunks a second and fidelity of the embedding backends on real PDF text.

    .venv/bin/python bench/embedders.py [PDF_FOLDER] [--chunks 768] [--json]

Reads the first pages of up to 30 PDFs of PDF_FOLDER (default: docugami) with PDFium, cuts
them into pieces of 60-200 tokens with a short header (as ingest's chunks are), and embeds
the same pieces with onnxruntime's int8 export (``RAG_EMBEDDING_BACKEND=onnx``), OpenVINO's
NNCF int8 model (``openvino``, the default) and the fp32 ONNX model on onnxruntime (the
reference for the cosines). Each backend is warmed up, then timed twice; the figures depend
on the CPU (its flags are printed) and on what else runs. docs/performance.md records them.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_flags  # noqa: E402

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def pieces(folder: Path, count: int, tokenizer: Any) -> list[str]:
    import pypdfium2 as pdfium

    rng = random.Random(1)
    files = sorted(folder.rglob("*.pdf"))
    rng.shuffle(files)
    texts: list[str] = []
    for path in files[:30]:
        try:
            pdf = pdfium.PdfDocument(path)
        except Exception:
            continue  # encrypted or damaged: ingest reports those, here they are skipped
        for n in range(min(len(pdf), 10)):
            text = pdf[n].get_textpage().get_text_range()
            enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            offsets = enc["offset_mapping"]
            start = 0
            while start < len(offsets):
                size = rng.choice([60, 150, 170, 200, 200, 200, 200])
                span = offsets[start : start + size]
                texts.append(f"{path.stem[:40]}. " + text[span[0][0] : span[-1][1]])
                start += size
        pdf.close()
    rng.shuffle(texts)
    return texts[:count]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, nargs="?", default=Path("../shared/data/docugami"))
    ap.add_argument("--chunks", type=int, default=768)
    ap.add_argument("--models", type=Path, default=Path(tempfile.gettempdir()) / "rag-bench"
                    / "models", help="where the exports are cached (made once)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from rag.onnx_embedder import FP32_FILE, OnnxEmbedder
    from rag.openvino_embedder import OpenVinoEmbedder

    backends: dict[str, Any] = {
        "onnx": OnnxEmbedder(MODEL, args.models),
        "openvino": OpenVinoEmbedder(MODEL, args.models),
    }
    fp32 = OnnxEmbedder(MODEL, args.models)
    from rag.onnx_embedder import _open_session

    session = _open_session(fp32.cache_dir / FP32_FILE, fp32.threads)
    fp32._infer = lambda feeds: session.run(None, feeds)[0]
    texts = pieces(args.folder, args.chunks, fp32.tokenizer)
    tokens = sum(fp32.count_tokens(t) for t in texts) / max(len(texts), 1)
    reference = fp32.embed_documents(texts)
    result: dict[str, Any] = {"chunks": len(texts), "mean_tokens": round(tokens, 1),
                              "cpu_flags": " ".join(cpu_flags()) or "none of those", "backends": {}}
    for name, embedder in backends.items():
        embedder.embed_documents(texts[:64])  # warm up: first shapes, allocations
        rates = []
        for _ in range(2):
            wall, cpu = time.perf_counter(), time.process_time()
            vectors = embedder.embed_documents(texts)
            rates.append((len(texts) / (time.perf_counter() - wall), time.process_time() - cpu))
        cosines = (vectors * reference).sum(axis=1)
        result["backends"][name] = {
            "chunks_per_s": [round(r, 1) for r, _ in rates],
            "cpu_s": [round(c, 2) for _, c in rates],
            "cosine_to_fp32_mean": round(float(cosines.mean()), 4),
            "cosine_to_fp32_min": round(float(cosines.min()), 4),
            "cosine_to_fp32_p1": round(float(np.percentile(cosines, 1)), 4),
        }
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{result['chunks']} chunks of {result['mean_tokens']} tokens on average; "
          f"CPU flags: {result['cpu_flags']}")
    for name, r in result["backends"].items():
        print(f"{name:9s} {' / '.join(map(str, r['chunks_per_s']))} chunks/s "
              f"({' / '.join(map(str, r['cpu_s']))} CPU s); cosine to fp32 mean "
              f"{r['cosine_to_fp32_mean']}, 1st percentile {r['cosine_to_fp32_p1']}, "
              f"min {r['cosine_to_fp32_min']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
