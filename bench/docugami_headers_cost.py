#!/usr/bin/env python
"""What document and table headers cost an ingest of docugami's SEC 10-Qs: chunking time, and
embedding time of the chunks with and without their headers.

    .venv/bin/python -m bench.docugami_headers_cost ../shared/data/docugami/sec-10-q/data/v1/docs \\
        [--sample 600] [--rounds 2]

The filings are read once (PDFium, as ingest reads them); chunking runs with headers off and
on; then the same ``--sample`` chunks (every n-th) are embedded as text alone and as header and
text, alternately, ``--rounds`` times each. Times are CPU seconds of this process (the ONNX
threads included), which a busy machine disturbs less than wall time; the embedded tokens are
counted too.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("docs", type=Path)
    parser.add_argument("--sample", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)

    from application.factory import build_embedder
    from bench.machine import machine
    from ingest.chunking import Chunker
    from ingest.pdf import load_pdf
    from rag.config import load_settings

    settings = load_settings()
    embedder = build_embedder(settings)
    files = sorted(args.docs.glob("*.pdf"))
    loaded = [load_pdf(path, path.name) for path in files]

    chunks = {}
    for headers in (False, True):
        chunker = Chunker(embedder.count_tokens, chunk_size=settings.chunk_size,
                          chunk_overlap=settings.chunk_overlap, max_tokens=embedder.max_tokens,
                          headers=headers)
        start = time.process_time()
        chunks[headers] = [c for docs in loaded
                           for c in chunker.chunk_documents(docs, root="/r", content_hash="h")]
        print(f"chunking, headers {'on ' if headers else 'off'}: {len(chunks[headers])} chunks "
              f"in {time.process_time() - start:.2f} s CPU ({len(files)} files)")
    if [c.text for c in chunks[False]] != [c.text for c in chunks[True]]:
        print("(the chunk texts differ: a header made some chunks smaller)")
    with_header = chunks[True]
    step = max(1, len(with_header) // args.sample)
    sample = with_header[::step][: args.sample]
    texts = {"text alone": [c.text for c in sample],
             "header + text": [c.embed_text for c in sample]}
    for name, items in texts.items():
        tokens = sum(embedder.count_tokens(t) for t in items)
        print(f"{name:<14} {len(items)} chunks, {tokens / len(items):.0f} tokens each")
    embedder.embed_documents(texts["text alone"][:32])  # warm up
    seconds: dict[str, list[float]] = {name: [] for name in texts}
    for _ in range(args.rounds):
        for name, items in texts.items():
            start = time.process_time()
            embedder.embed_documents(items)
            seconds[name].append(time.process_time() - start)
    for name, runs in seconds.items():
        best = min(runs)
        print(f"embedding {name:<14} {best:.1f} s CPU (best of {len(runs)}), "
              f"{len(sample) / best:.1f} chunks per CPU second")
    print(machine())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
