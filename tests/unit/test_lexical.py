"""The BM25 index built from integer arrays is bm25s's own, score for score."""

from __future__ import annotations

import random
from array import array

import bm25s
import numpy as np
import pytest

import rag.lexical as lexical
from rag.lexical import BM25Params, _neighbours, _windowed, bm25_matrix


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

    vocab: dict[str, int] = {}
    flat, ends = array("i"), array("q")
    for terms in own:
        flat.extend([vocab.setdefault(t, len(vocab)) for t in terms])
        ends.append(len(flat))
    built = bm25s.BM25(k1=params.k1, b=params.b, method="lucene")
    built.scores = bm25_matrix(np.frombuffer(flat, dtype=np.int32),
                               np.frombuffer(ends, dtype=np.int64),
                               _neighbours(at, len(own), window), vocab, params)
    built.nonoccurrence_array = None

    assert set(vocab) == set(reference.vocab_dict) - {""}
    rng = random.Random(7)
    for _ in range(50):
        query = rng.sample(sorted(vocab), rng.randint(1, 6))
        query += query[:1]  # a repeated term counts twice, in both
        expected = reference.get_scores(query)
        got = built.get_scores([vocab[t] for t in query])
        assert np.array_equal(got, expected)  # bit for bit: same ranking, same ties
