"""An on-disk cache of passage vectors, keyed by the embedder's identity and text hash.

Evaluation indexes the same corpus many times (one per setting compared); the vectors of a
chunk text never change for a given embedder, so they are computed once and kept in SQLite.
The identity is more than the model id: the ONNX int8 export and the torch model report the
same ``model_id`` (a collection built with one is searched with the other) but their vectors
differ slightly, and comparing the two backends must not mix them.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.embeddings import Embedder


def embedder_identity(embedder: Embedder) -> str:
    """Model id, implementation and (ONNX) export key: what decides the vectors exactly."""
    from rag.onnx_embedder import OnnxEmbedder

    inner = embedder.inner if isinstance(embedder, CachedEmbedder) else embedder
    kind = f"{type(inner).__module__}.{type(inner).__qualname__}"
    if isinstance(inner, OnnxEmbedder):
        # The export key (model files and export format) and the model file run (onnxruntime's
        # int8 export or OpenVINO's, whose name carries its quantisation's version).
        kind += f":{inner.cache_dir.name}:{inner.model_path.name}"
    return f"{inner.model_id}|{kind}"


class CachedEmbedder:
    """An ``Embedder`` that looks passage vectors up in a SQLite file before computing them."""

    def __init__(self, inner: Embedder, path: Path) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.max_tokens = inner.max_tokens
        self.identity = embedder_identity(inner)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, vector BLOB, "
            "PRIMARY KEY (model, hash))"
        )
        self.computed = 0  # texts that were not in the cache

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        hashes = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT hash, vector FROM vectors WHERE model = ? AND hash IN ({marks})",
                [self.identity, *part],
            )
            for digest, blob in rows:
                found[digest] = np.frombuffer(blob, dtype=np.float32)
        missing = [i for i, h in enumerate(hashes) if h not in found]
        if missing:
            missing_unique = list(dict.fromkeys(hashes[i] for i in missing))
            first = {h: texts[i] for i, h in reversed(list(enumerate(hashes)))}
            batch = 256
            for start in range(0, len(missing_unique), batch):
                part = missing_unique[start : start + batch]
                vectors = self.inner.embed_documents([first[h] for h in part])
                self._db.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                    [(self.identity, h, v.astype(np.float32).tobytes())
                     for h, v in zip(part, vectors, strict=True)],
                )
                self._db.commit()
                found.update(zip(part, vectors, strict=True))
                self.computed += len(part)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([found[h] for h in hashes]).astype(np.float32)

    def close(self) -> None:
        self._db.close()
