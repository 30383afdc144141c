"""The BM25 index built from integer arrays is bm25s's own, score for score; its pruned
search returns what adding up every posting returns."""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import pytest

import rag.lexical as lexical
from rag.lexical import BM25Params, LexicalIndex, _neighbours, _windowed, bm25_matrix


def _corpus(seed: int) -> tuple[list[list[str]], dict[tuple[str, str, int], int]]:
    """Files of chunks (some missing, some empty), words drawn with a long tail as in text."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(2000)]
    own: list[list[str]] = []
    at: dict[tuple[str, str, int], int] = {}
    for f in range(150):
        for index in rng.sample(range(15), rng.randint(1, 10)):
            at[("root", f"file{f}.txt", index)] = len(own)
            length = rng.choice([0, 0, 1, 4, 30, 150])
            own.append([words[min(int(rng.paretovariate(1.1)), 1999)] for _ in range(length)])
    return own, at


@pytest.mark.parametrize("window", [0, 1, 2])
def test_bm25_matrix_scores_every_query_as_bm25s_does(window: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexical, "_BLOCK_TERMS", 500)  # several blocks, as at a million chunks
    own, at = _corpus(window)
    params = BM25Params(window=window)
    reference = bm25s.BM25(k1=params.k1, b=params.b, method="lucene")
    reference.index([terms or ["\x00"] for terms in _windowed(own, at, window)],
                    show_progress=False)

    built, vocab = _matrix(own, at, window)

    assert set(vocab) == set(reference.vocab_dict) - {""}
    rng = random.Random(7)
    for _ in range(50):
        query = rng.sample(sorted(vocab), rng.randint(1, 6))
        query += query[:1]  # a repeated term counts twice, in both
        expected = reference.get_scores(query)
        got = built.get_scores([vocab[t] for t in query])
        assert np.array_equal(got, expected)  # bit for bit: same ranking, same ties


# --- dynamic pruning (MaxScore) gives full scoring's top k ------------------------------------


def _skewed(seed: int) -> tuple[list[list[str]], dict[tuple[str, str, int], int]]:
    """Files of chunks as in ``_corpus``, plus a term in almost every chunk ("common"), one in
    a few ("rare"), and files copied whole (exact ties, as in the bench's replicated corpus)."""
    rng = random.Random(seed)
    own, at = _corpus(seed)
    for terms in own:
        if rng.random() < 0.9:
            terms.extend(["common"] * rng.randint(1, 3))
        if rng.random() < 0.02:
            terms.append("rare")
    files = sorted({source for (_, source, _) in at})
    for copy in range(3):
        for source in rng.sample(files, 30):
            for (root, s, index), row in list(at.items()):
                if s == source:
                    at[(root, f"copy{copy}-{s}", index)] = len(own)
                    own.append(list(own[row]))
    return own, at


def _matrix(own: list[list[str]], at: dict[tuple[str, str, int], int],
            window: int = 1) -> tuple[bm25s.BM25, dict[str, int]]:
    """A BM25 index made as ``LexicalIndex._build`` makes it (``bm25_matrix``)."""
    params = BM25Params(window=window)
    vocab: dict[str, int] = {}
    flat, ends = array("i"), array("q")
    for terms in own:
        flat.extend([vocab.setdefault(t, len(vocab)) for t in terms])
        ends.append(len(flat))
    bm25 = bm25s.BM25(k1=params.k1, b=params.b, method="lucene")
    bm25.scores = bm25_matrix(np.frombuffer(flat, dtype=np.int32),
                              np.frombuffer(ends, dtype=np.int64),
                              _neighbours(at, len(own), window), vocab, params)
    bm25.nonoccurrence_array = None
    return bm25, vocab


def _upper(bm25: bm25s.BM25) -> Callable[[int], np.float32]:
    data, indptr = bm25.scores["data"], bm25.scores["indptr"]
    return lambda t: np.float32(data[indptr[t]:indptr[t + 1]].max(initial=0.0))


def _assert_same_top(rows: np.ndarray, scores: np.ndarray, full: np.ndarray, k: int,
                     allowed: np.ndarray | None) -> None:
    """``rows``/``scores`` are a top ``k`` of the full ``scores``: the same scores, exactly,
    best first; the same rows wherever the score is not tied with the k-th."""
    expected_rows, expected = lexical.full_top_k(full, k, allowed)
    assert scores.dtype == np.float32
    assert np.array_equal(scores, expected)  # float32 equality, every place
    assert len(set(rows.tolist())) == len(rows)
    assert np.array_equal(full[rows], scores)  # each row with its own full score
    if allowed is not None:
        assert allowed[rows].all()
    if len(rows):
        kth = scores[-1]
        assert set(rows[scores > kth].tolist()) == set(expected_rows[expected > kth].tolist())


def _queries(rng: random.Random, vocab: dict[str, int], n: int) -> list[list[int]]:
    words = sorted(vocab)
    queries = []
    for i in range(n):
        query = rng.sample(words, rng.randint(1, 8))
        if i % 3 == 0:
            query += ["common", "rare"] if i % 2 else ["common"]
        if i % 4 == 0:
            query += rng.sample(query, 1)  # a repeated term, added twice as bm25s adds it
        rng.shuffle(query)
        queries.append([vocab[t] for t in query])
    return queries


@pytest.mark.parametrize(("seed", "sample_part", "search_below", "dense_above"),
                         [(1, 16, 2, 0.5), (2, 4, 0, 0.5), (3, 2, 1000, 0.5),
                          (4, 8, 2, 0.0), (5, 8, 2, 100.0), (6, 1000, 2, 0.5)])
@pytest.mark.parametrize("filtered", [False, True])
def test_pruned_top_k_is_full_scorings_top_k(seed: int, sample_part: int, search_below: int,
                                             dense_above: float, filtered: bool,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # every path: estimates from blocks of several sizes (or too few rows: the rarest-term
    # seed), columns passed over or binary-searched, read in one pass or per candidate
    monkeypatch.setattr(lexical, "_PRUNE_MIN_POSTINGS", 0)
    monkeypatch.setattr(lexical, "_PRUNE_MAX_SHARE", 1.0)  # never give up: test the pruning
    monkeypatch.setattr(lexical, "_SAMPLE_PART", sample_part)
    monkeypatch.setattr(lexical, "_SEARCH_BELOW", search_below)
    monkeypatch.setattr(lexical, "_DENSE_ABOVE", dense_above)
    monkeypatch.setattr(lexical, "_RANK_AT_MOST", 10_000 if seed % 2 else 50)
    own, at = _skewed(seed)
    bm25, vocab = _matrix(own, at)
    rows = len(own)
    rng = random.Random(seed)
    allowed = None
    if filtered:
        allowed = np.array([rng.random() < 0.3 for _ in range(rows)])
    allowed_rows = None if allowed is None else (lambda r: allowed[r])
    pruned = 0
    for query in _queries(rng, vocab, 60):
        full = np.asarray(bm25.get_scores(query), dtype=np.float32)
        matching = int(np.count_nonzero(full if allowed is None else full * allowed))
        for k in (1, 7, 100, matching, matching + 50):
            if k <= 0:
                continue
            stats = lexical.SearchStats()
            got = lexical.pruned_top_k(bm25.scores, query, k, _upper(bm25), allowed_rows,
                                       stats)
            if got is None:  # one distinct term: scored in full
                assert len(set(query)) == 1
                continue
            pruned += 1
            assert stats.pruned and stats.rounds >= 1
            _assert_same_top(*got, full, k, allowed)
    assert pruned > 200


def test_pruning_reads_fewer_postings_where_it_should(monkeypatch: pytest.MonkeyPatch) -> None:
    """A common term in nearly every chunk and a rare one: the common term's column is only
    looked up for the rare term's chunks, not added up (observable in the postings read)."""
    monkeypatch.setattr(lexical, "_PRUNE_MIN_POSTINGS", 10_000)  # this corpus is small
    own, at = _skewed(11)
    for i in range(len(own) * 20):  # more chunks, so that the common term's list is long
        row = i % len(own)
        at[("more", f"more{i // len(own)}", row)] = len(own)
        own.append(own[row] + ["common"] * 3)
    bm25, vocab = _matrix(own, at)
    query = [vocab["common"], vocab["rare"], vocab["common"]]
    full = np.asarray(bm25.get_scores(query), dtype=np.float32)
    stats = lexical.SearchStats()
    got = lexical.pruned_top_k(bm25.scores, query, 10, _upper(bm25), None, stats)
    assert got is not None
    _assert_same_top(*got, full, 10, None)
    assert stats.pruned and stats.rounds == 1
    assert stats.total > lexical._PRUNE_MIN_POSTINGS
    assert stats.postings < stats.total / 4  # the common term: binary searches, not a pass


class _Store:
    """What ``LexicalIndex`` reads of a store: ``(id, text, metadata, vector)`` per chunk."""

    def __init__(self, chunks: list[tuple[str, str, dict[str, Any]]]) -> None:
        self.chunks = chunks

    def collection_id(self) -> str:
        return "test"

    def generation(self) -> str:
        return "1"

    def count(self) -> int:
        return len(self.chunks)

    def iter_all(self, *, embeddings: bool = False, page_size: int = 2000) -> Any:
        for cid, text, meta in self.chunks:
            yield cid, text, meta, None


class _Changing(_Store):
    """A store whose chunks change (each change a new generation), and which lists its ids and
    reads chunks by id, as ``ChromaStore`` does."""

    def __init__(self, chunks: list[tuple[str, str, dict[str, Any]]]) -> None:
        super().__init__(chunks)
        self.changes = 0

    def generation(self) -> str:
        return str(self.changes)

    def all_ids(self) -> list[str]:
        return [cid for cid, _, _ in self.chunks]

    def read_chunks(self, ids: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
        wanted = set(ids)
        return [c for c in self.chunks if c[0] in wanted]


def test_search_prunes_with_the_same_hits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``LexicalIndex.search`` built from a store: pruned and full scoring give the same
    (id, source, score) list, source filter or not, up to ties at the k-th score."""
    rng = random.Random(5)
    words = ["report", "revenue", "quarter", "apple", "iphone", "margin", "cash", "tax",
             "segment", "europe", "china", "services", "lease", "debt", "share"] + [
                 f"zz{i}" for i in range(300)]
    chunks = []
    for f in range(40):
        for index in range(25):
            text = " ".join(["report"] * rng.randint(0, 2) + [
                words[min(int(rng.paretovariate(0.8)) - 1, len(words) - 1)]
                for _ in range(rng.randint(5, 60))])
            chunks.append((f"f{f}-{index}", text,
                           {"source": f"file{f % 13}.txt", "root": "r", "chunk_index": index}))
    index = LexicalIndex(tmp_path / "lexical", _Store(chunks))  # type: ignore[arg-type]
    questions = ["report on revenue", "apple iphone revenue by quarter", "report report",
                 "cash and debt in europe report", "zz3 report", "services margin zz7 zz7",
                 "tax lease share segment china report quarter revenue", "zz250"]
    for k in (1, 10, 100, 2000):
        for source_filter in (None, lambda s: s in {"file3.txt", "file7.txt"}):
            for question in questions:
                monkeypatch.setattr(lexical, "_PRUNE_MIN_POSTINGS", 10**12)
                full = index.search(question, k, source_filter=source_filter)
                assert not index.last_search.pruned
                monkeypatch.setattr(lexical, "_PRUNE_MIN_POSTINGS", 0)
                got = index.search(question, k, source_filter=source_filter)
                assert [h.score for h in got] == [h.score for h in full]
                if got:
                    kth = got[-1].score
                    assert {h for h in got if h.score > kth} == {h for h in full if h.score > kth}
                    by_id = {h.id: h for h in index.search(question, 10_000,
                                                           source_filter=source_filter)}
                    assert all(by_id[h.id] == h for h in got)
    monkeypatch.setattr(lexical, "_PRUNE_MIN_POSTINGS", 0)
    index.search("report on revenue", 10)
    assert index.last_search.pruned  # (at this size it reads no fewer postings than in full)


def test_a_rebuild_reuses_the_saved_terms_of_the_same_save_only(tmp_path: Path) -> None:
    """A new process's rebuild reads only the chunk it has not seen; an index whose files do
    not come from one save (another process replaced them meanwhile) is built from scratch."""
    chunks = [(f"c{i}", f"tides and currents note {i}", {"source": f"f{i % 3}.txt", "root": "r",
                                                         "chunk_index": i // 3})
              for i in range(12)]
    store = _Changing(chunks)
    store.chunks = list(chunks)
    first = LexicalIndex(tmp_path / "lexical", store)  # type: ignore[arg-type]
    first.ensure_current()
    assert first.analysed == 12

    store.chunks = [c for c in chunks if c[0] != "c4"] + [
        ("c12", "a new note on undertow", {"source": "f9.txt", "root": "r", "chunk_index": 0})]
    store.changes += 1
    reopened = LexicalIndex(tmp_path / "lexical", store)  # type: ignore[arg-type]
    assert [h.id for h in reopened.search("undertow", 5)] == ["c12"]
    assert reopened.rebuilds == 1 and reopened.analysed == 1
    assert reopened.search("note 4", 20) and "c4" not in {h.id for h in reopened.search("note", 20)}

    (tmp_path / "lexical" / "bm25" / "build.txt").write_text("another save")
    store.changes += 1
    torn = LexicalIndex(tmp_path / "lexical", store)  # type: ignore[arg-type]
    torn.ensure_current()
    assert torn.rebuilds == 1 and torn.analysed == 12  # read in full, nothing reused
