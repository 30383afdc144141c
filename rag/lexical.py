"""A BM25 index of the chunks (bm25s, Lucene scoring, English stemming and stop words).

The index is persisted in the data directory together with the collection id and the
*generation* it was built at. ``ChromaStore.upsert`` and ``ChromaStore.delete`` bump the
collection's generation, so whatever changed the collection (ingest, the UI, another process
on a Chroma server), the next search sees a different generation and rebuilds the index from
the chunks in Chroma. A rebuild reads and analyses only the chunks it has not seen: the index
keeps each chunk's terms under its id (which names the chunk's text, header and heading), and
reuses them while the id is in the collection. The score matrix is computed again each time
(document frequencies and the mean length are the collection's); ``bench/lexical_rebuild.py``
measures it.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import threading
import uuid
from array import array
from collections.abc import Callable, Iterable
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


def _read_build(directory: Path) -> str | None:
    """The build a saved index's ``bm25/`` folder belongs to (None: saved before builds were
    named)."""
    try:
        return (directory / "bm25" / _BUILD_FILE).read_text(encoding="utf-8")
    except OSError:
        return None


# A document holds at most this many distinct terms in one block of ``bm25_matrix`` (memory).
_BLOCK_TERMS = 4_000_000


def _distinct(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_counts=True)``, by a stable sort: the keys come in runs (a
    document's terms), which it sorts several times faster than ``np.unique``'s quicksort,
    and ``np.unique`` without counts (NumPy 2.3+: a hash table) is slower still, about 10x
    here on a block of (document, term) pairs."""
    ordered = np.sort(keys, kind="stable")
    if ordered.size == 0:
        return ordered, np.zeros(0, dtype=np.int64)
    first = np.empty(ordered.size, dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    at = np.flatnonzero(first)
    return ordered[at], np.diff(np.append(at, ordered.size))


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
        keys, _ = _distinct(docs * n_vocab + terms)
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
        keys, tf = _distinct(docs * n_vocab + terms)
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


# A question whose terms' columns hold fewer postings than this is scored in full (bm25s's
# ``get_scores``): pruning pays only where posting lists are long.
_PRUNE_MIN_POSTINGS = 100_000
# Pruning gives up, and scores in full, once its essential terms hold this share of the postings.
_PRUNE_MAX_SHARE = 0.5
# Relative slack when a running score is compared with the k-th best: float32 sums of a
# question's terms are off by far less (about 1e-7 per addition).
_MARGIN = 1e-4
_SHRINK = (1 - _MARGIN) / (1 + _MARGIN)  # a row is dropped below this share of the k-th best
# The candidates' k-th best running score is recomputed only when at most this many are left.
_RANK_AT_MOST = 50_000
# Non-essential terms are read in one pass over their column while the bounds of those not read
# yet add up to more than this share of the k-th best score (few candidates could be dropped).
_DENSE_ABOVE = 0.5
# The first estimate of the k-th best score comes from this fraction of the rows (1/N).
_SAMPLE_PART = 16
# A column is binary-searched for the candidates (rather than read in one pass) when their
# number times log2 of its length is below this multiple of its length: a binary search in a
# column not in the CPU's caches misses them at most of its steps, a pass streams the column.
_SEARCH_BELOW = 0.1


@dataclass
class SearchStats:
    """How one search scored (tests, logs): ``pruned`` when its result came from MaxScore
    pruning (``pruned_top_k``), ``postings`` how many postings it read (a posting read in a
    pass over a column, or one binary search for a candidate, counts one), ``total`` what full
    scoring reads (every posting of every query term, a repeated term again), ``rounds`` how
    many essential-term sets pruning tried."""

    pruned: bool = False
    postings: int = 0
    total: int = 0
    rounds: int = 0


def full_top_k(
    scores: np.ndarray, k: int, allowed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best rows of full ``scores`` (zero scores and rows not ``allowed`` left out),
    best first, and their scores."""
    if allowed is not None:
        scores = np.where(allowed, scores, np.float32(0.0))
    # only chunks holding a query term score above zero: rank those, not the whole corpus
    hits = np.flatnonzero(scores > 0)
    if hits.size == 0:
        return hits, scores[hits]
    k = min(k, hits.size)
    top = hits[np.argpartition(-scores[hits], k - 1)[:k]]
    top = top[np.argsort(-scores[top], kind="stable")]
    return top, scores[top]


def pruned_top_k(
    matrix: dict[str, Any],
    terms: list[int],
    k: int,
    upper: Callable[[int], np.float32],
    allowed_rows: Callable[[np.ndarray], np.ndarray] | None,
    stats: SearchStats,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``k`` best rows for the query ``terms`` (term ids, repeats kept) and their scores,
    best first, by MaxScore dynamic pruning over the term x document matrix of bm25s
    (``BM25.scores``, CSC: each column's rows ascending); ``None`` when it would not pay (the
    caller then scores in full).

    Each term's upper bound (``upper``) is the largest score in its column. First a score the
    ``k``-th best row reaches at least: the ``k``-th best exact score among the first
    ``1 / _SAMPLE_PART`` of the rows (in each column those rows are a slice of it), or failing
    that among a few hundred rows scoring best on the rarest terms. The terms are then split:
    the *non-essential* ones are the lowest bounds whose sum stays within that score, the
    others are *essential* and read in full; the rows holding an essential term are the
    candidates (a row holding none scores at most the non-essential bounds' sum, so cannot
    beat the ``k``-th). The non-essential terms are then read for the candidates, highest
    bound first: in one pass over the column while the bounds not read yet add up to more than
    ``_DENSE_ABOVE`` of that score, then only for the candidates still in the race (a binary
    search per candidate, or a pass when that is cheaper), a candidate being dropped once its
    score so far plus the bounds not read yet stays below the ``k``-th best score so far.

    The scores returned are those of bm25s's ``get_scores`` bit for bit: that adds each query
    term's column in query order (a repeated term again) in float32, and so does the last step
    for every remaining candidate. The bound of the non-candidates is the float32 sum of the
    bounds in the same order (float32 rounding is monotonic), and the result is returned only
    when the ``k``-th best candidate (among ``allowed_rows``) scores at least that much;
    otherwise terms move to the essential set and it starts again. The running scores that
    drop candidates are float32 sums in another order; they are compared with a relative
    margin (``_MARGIN``) far above their rounding error, so no row that could reach the
    ``k``-th score is dropped. At a tie with the ``k``-th score the rows returned may be other
    rows of the same score than full scoring's (whose choice among those is arbitrary too);
    the scores returned are the same.
    """
    # plain arrays (views) of a memory-mapped index: slicing a np.memmap costs more
    data, indices = np.asarray(matrix["data"]), np.asarray(matrix["indices"])
    indptr = matrix["indptr"]
    rows = int(matrix["num_docs"])
    unique = sorted(set(terms))
    if len(unique) < 2 or max(unique) >= len(indptr) - 1 or data.dtype != np.float32:
        return None  # one term: nothing to prune; other sums than float32 ones: not these
    span = {t: (int(indptr[t]), int(indptr[t + 1])) for t in unique}
    length = {t: e - s for t, (s, e) in span.items()}
    count = {t: terms.count(t) for t in unique}
    stats.total = sum(length[t] * count[t] for t in unique)
    if stats.total < _PRUNE_MIN_POSTINGS:
        return None
    bound = {t: upper(t) for t in unique}
    # lowest bounds first (the longest lists first among equal bounds): the non-essential
    # terms are always a prefix of this order
    order = sorted(unique, key=lambda t: (float(bound[t]), -length[t]))

    def rest_bound(m: int) -> np.float32:
        """What a row holding none of ``order[m:]`` scores at most: the float32 sum, in query
        order as ``get_scores`` adds them, of the bounds of the terms ``order[:m]``."""
        rest = set(order[:m])
        total = np.float32(0.0)
        for t in terms:
            if t in rest:
                total = np.float32(total + bound[t])
        return total

    member = np.zeros(rows, dtype=bool)  # the rows of ``marked[0]``,
    place = np.zeros(rows, dtype=np.int32)  # and where each is in it
    marked: list[np.ndarray | None] = [None]

    def lookup(t: int, at_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where ``t``'s column holds some of ``at_rows`` (ascending): their places in
        ``at_rows``, and their scores."""
        s, e = span[t]
        column = indices[s:e]
        if at_rows.size * max(1, column.size.bit_length()) < _SEARCH_BELOW * column.size:
            stats.postings += at_rows.size  # a binary search per row
            # the rows in the column's own type: NumPy would otherwise convert the whole column
            at = np.searchsorted(column, at_rows.astype(column.dtype, copy=False))
            at[at == column.size] = 0
            hit = np.flatnonzero(column[at] == at_rows)
            return hit, data[s:e][at[hit]]
        stats.postings += column.size  # one pass over the column
        if marked[0] is not at_rows:
            if marked[0] is not None:
                member[marked[0]] = False
            member[at_rows] = True
            place[at_rows] = np.arange(at_rows.size, dtype=np.int32)
            marked[0] = at_rows
        found = np.flatnonzero(member[column])
        return place[column[found]], data[s:e][found]

    def exact(at_rows: np.ndarray) -> np.ndarray:
        """The scores of ``at_rows`` as ``get_scores`` computes them."""
        out = np.zeros(at_rows.size, dtype=np.float32)
        found = {t: lookup(t, at_rows) for t in unique}
        for t in terms:  # query order, repeats again
            hit, add = found[t]
            value = np.zeros(at_rows.size, dtype=np.float32)
            value[hit] = add
            out += value
        return out

    def kth(values: np.ndarray) -> float:
        return float(np.partition(values, values.size - k)[values.size - k])

    # a score k rows reach (the k-th best scores at least this): the k-th best exact score
    # in the first ``1 / _SAMPLE_PART`` of the rows
    block = max(1, rows // _SAMPLE_PART)
    block_scores = np.zeros(block, dtype=np.float32)
    for t in terms:  # query order, as get_scores adds them
        s, e = span[t]
        cut = s + int(np.searchsorted(indices[s:e], indices.dtype.type(block)))
        np.add.at(block_scores, indices[s:cut], data[s:cut])
        stats.postings += cut - s
    if allowed_rows is not None:
        block_scores[~allowed_rows(np.arange(block))] = 0
    reached = kth(block_scores) if np.count_nonzero(block_scores) >= k else 0.0
    partial = np.zeros(rows, dtype=np.float32)
    done: set[int] = set()  # the terms added up in ``partial``
    seed = len(order)
    if reached == 0.0:  # too few rows in the block: the rows best on the rarest terms
        while seed > 1 and sum(length[t] for t in order[seed - 1:]) <= stats.total // 16:
            seed -= 1
        for t in order[seed:]:
            s, e = span[t]
            for _ in range(count[t]):
                np.add.at(partial, indices[s:e], data[s:e])
            stats.postings += (e - s) * count[t]
            done.add(t)
        seeded = np.asarray(indices[slice(*span[order[-1]])], dtype=np.int64)
        if seed < len(order) - 1:
            for t in order[seed:]:
                member[indices[slice(*span[t])]] = True
            seeded = np.flatnonzero(member)
            member[seeded] = False
        if allowed_rows is not None:
            seeded = seeded[allowed_rows(seeded)]
        if seeded.size >= k:
            n = min(seeded.size, 4 * k)
            best = seeded[np.argpartition(-partial[seeded], n - 1)[:n]]
            reached = kth(exact(np.sort(best)))
    m = min(seed, len(order) - 1)
    while m > 0 and rest_bound(m) > reached:
        m -= 1
    while True:
        essential = order[m:]
        if sum(length[t] for t in essential) > _PRUNE_MAX_SHARE * sum(length.values()):
            return None
        stats.pruned = True
        stats.rounds += 1
        if not done <= set(essential):
            partial[:] = 0
            done = set()
        # the candidates: the rows holding an essential term (``member``)
        if marked[0] is not None:
            member[marked[0]] = False
            marked[0] = None
        for t in essential:
            s, e = span[t]
            member[indices[s:e]] = True
            if t not in done:  # while the column is in the CPU's cache
                for _ in range(count[t]):
                    np.add.at(partial, indices[s:e], data[s:e])
                stats.postings += (e - s) * count[t]
                done.add(t)
        # the others, highest bound first: while their bounds add up to more than half the
        # k-th best score, few candidates could be dropped, so each column is read in one
        # pass for the candidates (``member``)
        others = order[:m][::-1]
        left = float(sum(float(bound[t]) * count[t] for t in others))
        while others and left > _DENSE_ABOVE * reached:
            t = others.pop(0)
            s, e = span[t]
            found = np.flatnonzero(member[indices[s:e]])
            add = data[s:e][found]
            partial[indices[s:e][found]] += add if count[t] == 1 else add * np.float32(count[t])
            stats.postings += e - s
            left -= float(bound[t]) * count[t]
            done.add(-1 - t)  # in ``partial`` for the candidates only
        alive = np.flatnonzero(member)
        member[alive] = False
        if allowed_rows is not None:
            alive = alive[allowed_rows(alive)]
        score = partial[alive]
        # then only for the candidates still in the race
        for t in others:
            floor = reached
            if k < alive.size <= _RANK_AT_MOST:
                floor = max(floor, kth(score))
            if floor > 0:
                keep = np.flatnonzero(score >= floor * _SHRINK - left)
                if keep.size < alive.size:
                    alive, score = alive[keep], score[keep]
            hit, add = lookup(t, alive)
            score[hit] += add if count[t] == 1 else add * np.float32(count[t])
            left -= float(bound[t]) * count[t]
        if reached > 0 or alive.size > k:  # the last drop, all terms counted
            floor = max(reached, kth(score) if alive.size > k else 0.0)
            keep = np.flatnonzero(score >= floor * _SHRINK)
            alive = alive[keep]
        scores = exact(alive)
        if alive.size >= k:
            chosen = np.argpartition(-scores, k - 1)[:k]
            theta = scores[chosen].min()  # the k-th best candidate score
            if theta >= rest_bound(m):  # no other row can score above it (0 when m == 0)
                top, top_scores = alive[chosen], scores[chosen]
                best = np.lexsort((top, -top_scores))  # best first, then by row
                return top[best], top_scores[best]
            reached = max(reached, float(theta))
            m -= 1
            while m > 0 and rest_bound(m) > reached:
                m -= 1
        elif m == 0:  # every term essential: the candidates are every row that scores
            keep = np.flatnonzero(scores > 0)
            alive, scores = alive[keep], scores[keep]
            best = np.lexsort((alive, -scores))
            return alive[best], scores[best]
        else:  # fewer than k candidates: another term's rows
            m -= 1


# What ``_save`` keeps of each chunk besides the index (``terms.npz``): its terms and where it
# sits. Bump when the analyser or what a chunk's terms are made of changes: a rebuild then reads
# every chunk again.
_TERMS_FORMAT = 1
_TERMS_FILE = "terms.npz"
_BUILD_FILE = "build.txt"  # in ``bm25/``: the build ``meta.json`` names (one save, not two)


@dataclass
class _Rows:
    """The chunks an index is built from, in row order: ids, sources, roots, chunk indexes, and
    their term ids end to end (``own``; row r's are ``own[ends[r-1]:ends[r]]``) in ``vocab``."""

    ids: list[str]
    sources: list[str]
    roots: list[str]
    indexes: list[int]
    own: np.ndarray
    ends: np.ndarray
    vocab: dict[str, int]

    @staticmethod
    def empty() -> _Rows:
        return _Rows([], [], [], [], np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64), {})


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
        self.analysed = 0  # chunks the latest build read and analysed (the others' terms reused)
        self._build_token: str | None = None  # names the save the loaded index came from
        self._upper: dict[int, np.float32] = {}  # each term's largest score, once asked
        self.last_search = SearchStats()  # how the latest search scored (tests, logs)

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
        if bm25 is not None and _read_build(self.directory) != meta.get("build"):
            log.warning("lexical index in %s half replaced by another process; rebuilding",
                        self.directory)
            return False
        self._bm25, self._ids, self._sources = bm25, meta["ids"], meta["sources"]
        self._build_token = meta.get("build")
        self._source_of = None
        self._upper = {}
        self._state = meta["state"]
        return True

    def _build(self, state: dict[str, Any]) -> None:
        bm25s = _bm25s()

        self.analysed = 0
        rows = self._rows_reusing_terms()
        if rows is None:
            rows = self._rows_read_in_full()
        at = {(root, source, index): row for row, (root, source, index)
              in enumerate(zip(rows.roots, rows.sources, rows.indexes, strict=True))}
        vocab = rows.vocab
        bm25 = None
        if rows.ids:
            bm25 = bm25s.BM25(k1=self.params.k1, b=self.params.b, method=self.params.method)
            bm25.scores = bm25_matrix(rows.own, rows.ends,
                                      _neighbours(at, len(rows.ids), self.params.window),
                                      vocab, self.params)
            vocab.setdefault("", len(vocab))  # as bm25s.BM25.index leaves its vocabulary
            bm25.vocab_dict = vocab
            bm25.unique_token_ids_set = set(vocab.values())
            bm25.nonoccurrence_array = None  # lucene needs none
        self._bm25, self._ids, self._sources, self._state = bm25, rows.ids, rows.sources, state
        self._source_of = None
        self._upper = {}
        self.rebuilds += 1
        log.info("lexical index rebuilt: %d chunks (generation %s), %d of them read and analysed",
                 len(rows.ids), state["generation"], self.analysed)
        self._save(rows)

    def _analyse(self, rows: _Rows, chunks: Iterable[tuple[str, str, dict[str, Any]]]) -> _Rows:
        """``rows`` with these chunks (id, text, metadata) added at the end, their text analysed."""
        vocab = rows.vocab
        own = array("i")  # each chunk's term ids (its header, its heading and its text), end to end
        ends = array("q")  # where each chunk's terms end, counted from the end of ``rows.own``
        done = int(rows.ends[-1]) if rows.ends.size else 0
        analysed = 0
        for cid, text, meta in chunks:
            rows.ids.append(cid)
            rows.sources.append(str(meta.get("source", "")))
            rows.roots.append(str(meta.get("root", "")))
            rows.indexes.append(int(meta.get("chunk_index", -1)))
            # the document's header (``Chunk.context``) and the heading go with the text
            heading = "\n".join(str(meta[k]) for k in ("context", "heading") if meta.get(k))
            terms = self.analyzer.terms(f"{heading}\n{text}" if heading else text)
            own.extend([vocab.setdefault(t, len(vocab)) for t in terms])
            ends.append(done + len(own))
            analysed += 1
        self.analysed += analysed
        return _Rows(rows.ids, rows.sources, rows.roots, rows.indexes,
                     np.concatenate([rows.own, np.frombuffer(own, dtype=np.int32)]),
                     np.concatenate([rows.ends, np.frombuffer(ends, dtype=np.int64)]), vocab)

    def _rows_read_in_full(self) -> _Rows:
        """Every chunk of the collection read and analysed."""
        return self._analyse(_Rows.empty(), ((cid, text, meta)
                                             for cid, text, meta, _ in self.store.iter_all()))

    def _rows_reusing_terms(self) -> _Rows | None:
        """The saved index's rows whose chunks the collection still holds, with the terms saved
        for them, then the collection's other chunks, read and analysed; None when there is no
        saved index to reuse (or it holds under half of the collection: reading it all is then
        as quick). A chunk's id names its text, header and heading (``ingest.chunking.chunk_id``),
        so the terms saved under an id are the terms of the chunk under that id now."""
        saved = self._saved_rows()
        if saved is None:
            return None
        current = self.store.all_ids()
        alive = set(current)
        keep = np.fromiter((cid in alive for cid in saved.ids), dtype=bool, count=len(saved.ids))
        if 2 * int(keep.sum()) < len(current):
            return None
        starts = np.concatenate([np.zeros(1, dtype=np.int64), saved.ends[:-1]])
        lengths = (saved.ends - starts)[keep]
        own = np.asarray(saved.own)[np.repeat(keep, saved.ends - starts)]
        # the terms of the rows kept, renumbered densely (a deleted chunk's terms leave the
        # vocabulary: a question about a deleted file's subject finds its words unknown)
        used = np.zeros(len(saved.vocab) + 1, dtype=bool)
        used[own] = True
        renumber = np.cumsum(used, dtype=np.int64) - 1
        vocab = {t: int(renumber[i]) for t, i in saved.vocab.items() if used[i]}
        kept = np.flatnonzero(keep).tolist()
        rows = _Rows([saved.ids[r] for r in kept], [saved.sources[r] for r in kept],
                     [saved.roots[r] for r in kept], [saved.indexes[r] for r in kept],
                     renumber[own].astype(np.int32), np.cumsum(lengths, dtype=np.int64), vocab)
        known = set(saved.ids)
        new = [cid for cid in current if cid not in known]
        return self._analyse(rows, self.store.read_chunks(new))

    def _saved_rows(self) -> _Rows | None:
        """The rows and terms the loaded index was built from (``_save``), None when there are
        none of this format for it (an index saved before them, or replaced meanwhile)."""
        if self._bm25 is None or self._build_token is None:
            return None
        try:
            with np.load(self.directory / _TERMS_FILE) as saved:
                if (str(saved["build"]) != self._build_token
                        or int(saved["format"]) != _TERMS_FORMAT):
                    return None
                own, ends = saved["own"], saved["ends"]
                roots = [str(r) for r in saved["roots"]]
                root_of, indexes = saved["root_of"].tolist(), saved["indexes"].tolist()
        except (OSError, ValueError, KeyError) as exc:
            log.info("lexical index in %s: no terms to reuse (%s); reading every chunk",
                     self.directory, exc)
            return None
        if len(ends) != len(self._ids) or (len(ends) and int(ends[-1]) != len(own)):
            return None
        # read only: the rows reusing these terms renumber them into a vocabulary of their own
        return _Rows(list(self._ids), list(self._sources), [roots[r] for r in root_of],
                     indexes, own, ends, self._bm25.vocab_dict)

    def _save(self, rows: _Rows) -> None:
        tmp = self.directory.with_name(self.directory.name + ".tmp")
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            build = uuid.uuid4().hex  # what ties the files of this save together
            if self._bm25 is not None:
                self._bm25.save(str(tmp / "bm25"), show_progress=False)
                (tmp / "bm25" / _BUILD_FILE).write_text(build, encoding="utf-8")
            # each chunk's terms, so the next rebuild reads and analyses only the new chunks
            number: dict[str, int] = {}
            root_of = [number.setdefault(r, len(number)) for r in rows.roots]
            np.savez(tmp / _TERMS_FILE, build=np.array(build), format=np.array(_TERMS_FORMAT),
                     own=np.asarray(rows.own, dtype=np.int32),
                     ends=np.asarray(rows.ends, dtype=np.int64),
                     roots=np.array(list(number), dtype=str),
                     root_of=np.array(root_of, dtype=np.int32),
                     indexes=np.array(rows.indexes, dtype=np.int64))
            self._build_token = build
            meta = {"state": self._state, "ids": self._ids, "sources": self._sources,
                    "build": build}
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
        """The ``k`` chunks with the highest BM25 score (zero scores left out), best first.

        Questions with long posting lists are scored by dynamic pruning (``pruned_top_k``):
        the same scores as adding up every posting, bit for bit; among chunks tied with the
        ``k``-th score, which of them are returned may differ (as it may between two full
        scorings, whose top-k selection does not order ties either)."""
        self.ensure_current()
        if self._bm25 is None or k <= 0:
            return []
        vocab = self._bm25.vocab_dict
        terms = [vocab[t] for t in self.analyzer.terms(query) if t in vocab]
        if not terms:
            return []
        allowed_rows: Callable[[np.ndarray], np.ndarray] | None = None
        if source_filter is not None:
            distinct, source_of = self._source_index()
            allowed = np.fromiter((source_filter(s) for s in distinct), dtype=bool,
                                  count=len(distinct))

            def allowed_rows(rows: np.ndarray) -> np.ndarray:
                return allowed[source_of[rows]]

        stats = SearchStats()
        found = None
        if self._bm25.nonoccurrence_array is None:  # lucene: a term adds only where it is
            found = pruned_top_k(self._bm25.scores, terms, k, self._upper_bound, allowed_rows,
                                 stats)
        if found is None:  # few postings (or pruning would not pay): every posting added
            scores = np.asarray(self._bm25.get_scores(terms), dtype=np.float32)
            indptr = self._bm25.scores["indptr"]
            stats.total = sum(int(indptr[t + 1] - indptr[t]) for t in terms)
            stats.postings += stats.total  # after what an abandoned pruning read
            stats.pruned = False
            found = full_top_k(scores, k, None if source_filter is None
                               else allowed[source_of])
        self.last_search = stats
        top, top_scores = found
        return [LexicalHit(self._ids[i], self._sources[i], float(score))
                for i, score in zip(top.tolist(), top_scores.tolist(), strict=True)]

    def _upper_bound(self, term: int) -> np.float32:
        """The largest score in ``term``'s column (what the term adds to a chunk at most)."""
        bound = self._upper.get(term)
        if bound is None:
            matrix = self._bm25.scores
            start, end = int(matrix["indptr"][term]), int(matrix["indptr"][term + 1])
            bound = np.float32(matrix["data"][start:end].max(initial=0.0))
            self._upper[term] = bound
        return bound
