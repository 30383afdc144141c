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
import math
import shutil
import threading
from array import array
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
    either side, by chunk index; pages do not stop it, text runs on across them).

    What BM25 indexes for each chunk; ``bm25_matrix`` builds the same index without these
    lists (which at a million chunks would take more memory than the machine has)."""
    if window <= 0:
        return own
    corpus = [list(terms) for terms in own]
    for row, near in enumerate(_neighbours(at, len(own), window)):
        for other in near:
            corpus[row].extend(own[other])
    return corpus


def _neighbours(at: dict[tuple[str, str, int], int], rows: int, window: int) -> list[list[int]]:
    """For each row, the rows of its neighbours in the same file (``window`` on either side,
    nearest first, before then after)."""
    near: list[list[int]] = [[] for _ in range(rows)]
    if window <= 0:
        return near
    for (root, source, index), row in at.items():
        for step in range(1, window + 1):
            for other in (index - step, index + step):
                found = at.get((root, source, other))
                if found is not None:
                    near[row].append(found)
    return near


# A document holds at most this many distinct terms in one block of ``bm25_matrix`` (memory).
_BLOCK_TERMS = 4_000_000


def bm25_matrix(
    own: np.ndarray,
    ends: np.ndarray,
    neighbours: list[list[int]],
    vocab: dict[str, int],
    params: BM25Params,
) -> dict[str, Any]:
    """The BM25 index of bm25s (``BM25.scores``: the term x document score matrix, CSC) for
    documents made of each row's terms and its neighbours' (``own[ends[r-1]:ends[r]]``, term
    ids of ``vocab``); a document without terms gets one term nobody queries (``"\\x00"``).

    The scores are those ``bm25s.BM25(k1, b, method="lucene").index`` computes for the same
    documents, bit for bit (same float32 and float64 steps), but built in blocks of documents
    from integer arrays: bm25s's own build holds every document as a list of Python strings,
    about 20 GB at a million chunks of 200 tokens with their neighbours. Two passes: document
    frequencies and lengths, then each score written straight into its column.
    """
    if params.method != "lucene":
        raise ValueError(f"bm25_matrix computes lucene scores, not {params.method!r}")
    rows = len(ends)
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    lengths = ends - starts
    filler = -1  # the "\x00" term of an empty document, given an id when one is needed

    def blocks() -> Any:
        """(first row, doc of each term, term ids) for consecutive blocks of documents."""
        first = 0
        while first < rows:
            last, size = first, 0
            while last < rows and (last == first or size < _BLOCK_TERMS):
                size += int(lengths[last]) + sum(int(lengths[o]) for o in neighbours[last])
                last += 1
            parts: list[np.ndarray] = []
            docs: list[np.ndarray] = []
            for row in range(first, last):
                segments = [own[starts[row]:ends[row]]] + [own[starts[o]:ends[o]]
                                                           for o in neighbours[row]]
                n = sum(len(seg) for seg in segments)
                if n == 0:
                    segments, n = [np.asarray([filler], dtype=np.int32)], 1
                parts.extend(segments)
                docs.append(np.full(n, row - first, dtype=np.int64))
            yield first, last, np.concatenate(docs), np.concatenate(parts).astype(np.int64)
            first = last

    # does any document need the filler term? (its own terms and its neighbours' all empty)
    if any(lengths[r] == 0 and all(lengths[o] == 0 for o in neighbours[r]) for r in range(rows)):
        filler = vocab.setdefault("\x00", len(vocab))
    n_vocab = len(vocab)

    # pass 1: document frequencies and document lengths (terms counted with repeats)
    df = np.zeros(n_vocab, dtype=np.int64)
    doc_len = np.zeros(rows, dtype=np.int64)
    for first, last, docs, terms in blocks():
        doc_len[first:last] = np.bincount(docs, minlength=last - first)
        keys = np.unique(docs * n_vocab + terms)
        df += np.bincount(keys % n_vocab, minlength=n_vocab)
    # as bm25s: the mean of the lengths, idf with math.log stored as float32
    avg_doc_len = doc_len.mean()
    idf = np.zeros(n_vocab, dtype=np.float32)
    for t in np.flatnonzero(df).tolist():
        d = int(df[t])
        idf[t] = math.log(1 + (rows - d + 0.5) / (d + 0.5))
    norm = params.k1 * ((1 - params.b) + params.b * doc_len / avg_doc_len)

    # pass 2: each (document, term) score written at its place in the term's column
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    data = np.empty(int(indptr[-1]), dtype=np.float32)
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    written = indptr[:-1].copy()  # next free place in each column
    for first, _last, docs, terms in blocks():
        keys, tf = np.unique(docs * n_vocab + terms, return_counts=True)
        doc = keys // n_vocab + first
        term = keys % n_vocab
        tf32 = tf.astype(np.float32)
        # bm25s: tf / (k1 * ((1 - b) + b * l_d / l_avg) + tf) in float64, times the float32 idf
        score = (idf[term] * (tf32 / (norm[doc] + tf32))).astype(np.float32)
        order = np.argsort(term, kind="stable")  # by term, documents ascending within each
        term, doc, score = term[order], doc[order], score[order]
        group = np.flatnonzero(np.r_[True, term[1:] != term[:-1]])
        rank = np.arange(len(term)) - np.repeat(group, np.diff(np.r_[group, len(term)]))
        place = written[term] + rank
        data[place] = score
        indices[place] = doc
        np.add.at(written, term[group], np.diff(np.r_[group, len(term)]))
    return {"data": data, "indices": indices, "indptr": indptr, "num_docs": rows}


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
        self._distinct: list[str] = []  # the distinct sources, and each chunk's among them:
        self._source_of: np.ndarray | None = None  # filters test each source once, not per chunk
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
            # memory-mapped: a search reads only the columns of its terms, the page cache keeps
            # them, and processes opening the same index share its pages
            bm25 = bm25s.BM25.load(str(self.directory / "bm25"), mmap=True,
                                   show_progress=False) if meta["ids"] else None
        except Exception as exc:  # a half-written or foreign index: rebuild it
            log.warning("lexical index in %s unreadable (%s); rebuilding", self.directory, exc)
            return False
        self._bm25, self._ids, self._sources = bm25, meta["ids"], meta["sources"]
        self._source_of = None
        self._state = meta["state"]
        return True

    def _build(self, state: dict[str, Any]) -> None:
        bm25s = _bm25s()

        ids: list[str] = []
        sources: list[str] = []
        vocab: dict[str, int] = {}
        own = array("i")  # each chunk's term ids (its heading and its text), end to end
        ends = array("q")  # where each chunk's terms end in ``own``
        at: dict[tuple[str, str, int], int] = {}  # (root, source, chunk index) -> row
        for cid, text, meta, _ in self.store.iter_all():
            source = str(meta.get("source", ""))
            at[(str(meta.get("root", "")), source, int(meta.get("chunk_index", -1)))] = len(ids)
            ids.append(cid)
            sources.append(source)
            # the document's header (``Chunk.context``) and the heading go with the text
            heading = "\n".join(str(meta[k]) for k in ("context", "heading") if meta.get(k))
            terms = self.analyzer.terms(f"{heading}\n{text}" if heading else text)
            own.extend([vocab.setdefault(t, len(vocab)) for t in terms])
            ends.append(len(own))
        bm25 = None
        if ids:
            bm25 = bm25s.BM25(k1=self.params.k1, b=self.params.b, method=self.params.method)
            bm25.scores = bm25_matrix(np.frombuffer(own, dtype=np.int32),
                                      np.frombuffer(ends, dtype=np.int64),
                                      _neighbours(at, len(ids), self.params.window),
                                      vocab, self.params)
            vocab.setdefault("", len(vocab))  # as bm25s.BM25.index leaves its vocabulary
            bm25.vocab_dict = vocab
            bm25.unique_token_ids_set = set(vocab.values())
            bm25.nonoccurrence_array = None  # lucene needs none
        self._bm25, self._ids, self._sources, self._state = bm25, ids, sources, state
        self._source_of = None
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

    def _source_index(self) -> tuple[list[str], np.ndarray]:
        """The distinct sources and, for each chunk, the number of its own among them."""
        with self._lock:
            if self._source_of is None or len(self._source_of) != len(self._sources):
                number: dict[str, int] = {}
                self._source_of = np.fromiter(
                    (number.setdefault(s, len(number)) for s in self._sources),
                    dtype=np.int32, count=len(self._sources))
                self._distinct = list(number)
            return self._distinct, self._source_of

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
        vocab = self._bm25.vocab_dict
        terms = [vocab[t] for t in self.analyzer.terms(query) if t in vocab]
        if not terms:
            return []
        scores = np.asarray(self._bm25.get_scores(terms), dtype=np.float32)
        if source_filter is not None:
            distinct, source_of = self._source_index()
            allowed = np.fromiter((source_filter(s) for s in distinct), dtype=bool,
                                  count=len(distinct))
            scores = np.where(allowed[source_of], scores, 0.0)
        # only chunks holding a query term score above zero: rank those, not the whole corpus
        hits = np.flatnonzero(scores > 0)
        if hits.size == 0:
            return []
        k = min(k, hits.size)
        top = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [LexicalHit(self._ids[i], self._sources[i], float(scores[i])) for i in top]
