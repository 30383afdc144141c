"""The two embedding backends: ONNX int8 (the default) and PyTorch, on the real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.retriever import SearchOptions
from tests.conftest import KNOWLEDGE_BASE

pytestmark = pytest.mark.slow


def _passages() -> list[str]:
    text = (KNOWLEDGE_BASE / "embeddings-guide.md").read_text()
    return [p.strip() for p in text.split("\n\n") if len(p.strip()) > 60][:40]


def test_onnx_int8_agrees_with_torch(embedder, torch_embedder) -> None:  # type: ignore[no-untyped-def]
    from rag.onnx_embedder import OnnxEmbedder

    assert isinstance(embedder, OnnxEmbedder)  # what `rag` uses by default on a CPU
    assert embedder.model_id == torch_embedder.model_id
    assert (embedder.dimension, embedder.max_tokens) == (torch_embedder.dimension,
                                                         torch_embedder.max_tokens)
    passages = _passages()
    onnx, torch = embedder.embed_documents(passages), torch_embedder.embed_documents(passages)
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-4)  # normalised
    cosines = (onnx * torch).sum(axis=1)
    assert cosines.min() > 0.97, cosines.min()
    # Same neighbours: each passage's nearest other passage is the same under both.
    same = [(int(np.argsort(-(onnx @ onnx[i]))[1]) == int(np.argsort(-(torch @ torch[i]))[1]))
            for i in range(len(passages))]
    assert sum(same) >= 0.8 * len(same)  # near-ties may swap


def test_an_index_built_with_torch_is_searched_with_onnx(make_app, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                         embedder, torch_embedder) -> None:
    built = make_app(tmp_path / "data")
    built.__dict__["embedder"] = torch_embedder
    built.pipeline.sync(KNOWLEDGE_BASE)
    searched = make_app(tmp_path / "data")  # the session's ONNX embedder
    assert searched.embedder is embedder
    top = searched.retriever.search("What does the ef_search parameter control?",
                                    SearchOptions(k=1, mode="dense"))[0]
    assert top.source == "vector-search-handbook.pdf" and top.score > 0.5


def test_the_export_is_made_once_and_reused(tmp_path: Path) -> None:
    from rag.onnx_embedder import INT8_FILE, OnnxEmbedder, model_cache_key

    cache = tmp_path / "models"
    first = OnnxEmbedder("sentence-transformers/all-MiniLM-L6-v2", cache)
    exported = first.model_path.stat().st_mtime_ns
    second = OnnxEmbedder("sentence-transformers/all-MiniLM-L6-v2", cache)
    assert second.model_path == first.model_path and second.model_path.name == INT8_FILE
    assert second.model_path.stat().st_mtime_ns == exported  # loaded, not exported again
    assert [p.name for p in cache.iterdir()] == [model_cache_key(
        "sentence-transformers/all-MiniLM-L6-v2")]
    query = "nearest neighbour search"
    assert float(first.embed_query(query) @ second.embed_query(query)) > 0.9999
