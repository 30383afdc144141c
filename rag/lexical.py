"""A BM25 index of the chunks (bm25s, Lucene scoring, English stemming and stop words).

The index is persisted in the data directory together with the collection id and the
*generation* it was built at. ``ChromaStore.upsert`` and ``ChromaStore.delete`` bump the
collection's generation, so whatever changed the collection (ingest, the UI, another process
on a Chroma server), the next search sees a different generation and rebuilds the index from
the chunks in Chroma. Rebuilding is cheap next to embedding: a few seconds for 100k chunks.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.store import ChromaStore
from rag.text import Analyzer

log = logging.getLogger(__name__)



def _bm25s() -> Any:
    """bm25s, imported with its logger brought back to WARNING (it sets itself to DEBUG)."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


@dataclass(frozen=True)
class LexicalHit:
    id: str
    source: str
    score: float


@dataclass(frozen=True)
class BM25Params:
    """``window``: a chunk is scored with the terms of this many chunks on either side of it
    in its file (0: the chunk alone). A term defined a sentence before a chunk then still
    counts for it; on SciFact train, window 1 gave +0.007 nDCG@10 (docs/quality.md)."""

    k1: float = 0.9
    b: float = 0.4
    method: str = "lucene"
    window: int = 1

    def key(self) -> dict[str, Any]:
        return {"k1": self.k1, "b": self.b, "method": self.method, "analyzer": 1,
                "window": self.window}


def _windowed(
    own: list[list[str]], at: dict[tuple[str, str, int], int], window: int
) -> list[list[str]]:
    """Each chunk's terms followed by those of its neighbours in the same file (``window`` on
    either side, by chunk index; pages do not stop it, text runs on across them)."""
    if window <= 0:
        return own
    corpus = [list(terms) for terms in own]
    for (root, source, index), row in at.items():
        for step in range(1, window + 1):
            for other in (index - step, index + step):
                near = at.get((root, source, other))
                if near is not None:
                    corpus[row].extend(own[near])
    return corpus


class LexicalIndex:
    """BM25 over every chunk of one collection, rebuilt when the collection's generation moves."""

    def __init__(self, directory: Path, store: ChromaStore, params: BM25Params | None = None) -> None:
        self.directory = directory
        self.store = store
        self.params = params or BM25Params()
        self.analyzer = Analyzer()
        self._bm25: Any = None
        self._ids: list[str] = []
        self._sources: list[str] = []
        self._state: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.rebuilds = 0  # how often the index was built from the store (tests, logs)

    # --- keeping in step ---------------------------------------------------------------------

    def _quick_state(self) -> dict[str, Any]:
        """What every search compares: the collection's id and generation (one metadata read)."""
        return {
            "collection": self.store.collection_id(),
            "generation": self.store.generation(),
            "params": self.params.key(),
        }

    def _wanted_state(self) -> dict[str, Any]:
        # count() scans the collection (tens of ms at 100k chunks), so it is compared only when
        # the index is opened or the generation moved, not on every search
        return {**self._quick_state(), "count": self.store.count()}

    def ensure_current(self) -> None:
        """Load the persisted index, or rebuild it when the collection changed since."""
        with self._lock:
            if self._state and self._quick_state() == {
                k: v for k, v in self._state.items() if k != "count"
            }:
                return
            wanted = self._wanted_state()
            if self._load() and self._state == wanted:
                return
            self._build(wanted)

    def _load(self) -> bool:
        meta_path = self.directory / "meta.json"
        if not meta_path.exists():
            return False
        try:
            bm25s = _bm25s()
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            bm25 = bm25s.BM25.load(str(self.directory / "bm25"), show_progress=False) if meta[
                "ids"
            ] else None
        except Exception as exc:  # a half-written or foreign index: rebuild it
            log.warning("lexical index in %s unreadable (%s); rebuilding", self.directory, exc)
            return False
        self._bm25, self._ids, self._sources = bm25, meta["ids"], meta["sources"]
        self._state = meta["state"]
        return True

    def _build(self, state: dict[str, Any]) -> None:
        bm25s = _bm25s()

        ids: list[str] = []
        sources: list[str] = []
        own: list[list[str]] = []  # each chunk's terms: its heading and its text
        at: dict[tuple[str, str, int], int] = {}  # (root, source, chunk index) -> row
        for cid, text, meta, _ in self.store.iter_all():
            source = str(meta.get("source", ""))
            at[(str(meta.get("root", "")), source, int(meta.get("chunk_index", -1)))] = len(ids)
            ids.append(cid)
            sources.append(source)
            heading = str(meta.get("heading", ""))
            own.append(self.analyzer.terms(f"{heading}\n{text}" if heading else text))
        corpus = _windowed(own, at, self.params.window)
        bm25 = None
        if ids:
            bm25 = bm25s.BM25(k1=self.params.k1, b=self.params.b, method=self.params.method)
            # an empty chunk still needs a row; a token nobody queries keeps the shapes aligned
            bm25.index([terms or ["\x00"] for terms in corpus], show_progress=False)
        self._bm25, self._ids, self._sources, self._state = bm25, ids, sources, state
        self.rebuilds += 1
        log.info("lexical index rebuilt: %d chunks (generation %s)", len(ids), state["generation"])
        self._save()

    def _save(self) -> None:
        tmp = self.directory.with_name(self.directory.name + ".tmp")
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            if self._bm25 is not None:
                self._bm25.save(str(tmp / "bm25"), show_progress=False)
            meta = {"state": self._state, "ids": self._ids, "sources": self._sources}
            (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            shutil.rmtree(self.directory, ignore_errors=True)
            tmp.rename(self.directory)
        except OSError as exc:
            # the in-memory index still serves this process; the next one rebuilds
            log.warning("cannot save the lexical index in %s: %s", self.directory, exc)

    # --- searching ---------------------------------------------------------------------------

    def sources(self) -> list[str]:
        """Every distinct source in the collection (for source filters)."""
        self.ensure_current()
        return sorted(set(self._sources))

    def unknown_share(self, terms: set[str]) -> float:
        """The share of ``terms`` (analysed terms) that no chunk of the collection holds."""
        self.ensure_current()
        if self._bm25 is None or not terms:
            return 0.0
        return sum(t not in self._bm25.vocab_dict for t in terms) / len(terms)

    def search(
        self, query: str, k: int, *, source_filter: Callable[[str], bool] | None = None
    ) -> list[LexicalHit]:
        """The ``k`` chunks with the highest BM25 score (zero scores left out), best first."""
        self.ensure_current()
        if self._bm25 is None or k <= 0:
            return []
        terms = [t for t in self.analyzer.terms(query) if t in self._bm25.vocab_dict]
        if not terms:
            return []
        scores = np.asarray(self._bm25.get_scores(terms), dtype=np.float32)
        if source_filter is not None:
            mask = np.fromiter((source_filter(s) for s in self._sources), dtype=bool,
                               count=len(self._sources))
            scores = np.where(mask, scores, 0.0)
        # only chunks holding a query term score above zero: rank those, not the whole corpus
        hits = np.flatnonzero(scores > 0)
        if hits.size == 0:
            return []
        k = min(k, hits.size)
        top = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [LexicalHit(self._ids[i], self._sources[i], float(scores[i])) for i in top]

