"""The embedding backends on the real model: int8 on OpenVINO (the default), int8 on
onnxruntime, and PyTorch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from rag.retriever import SearchOptions
from tests.conftest import KNOWLEDGE_BASE

pytestmark = pytest.mark.slow


def _passages() -> list[str]:
    text = (KNOWLEDGE_BASE / "embeddings-guide.md").read_text()
    return [p.strip() for p in text.split("\n\n") if len(p.strip()) > 60][:40]


@pytest.fixture(scope="module")
def ort_embedder():  # type: ignore[no-untyped-def]
    """RAG_EMBEDDING_BACKEND=onnx: the same export, quantised and run by onnxruntime."""
    from rag.onnx_embedder import OnnxEmbedder

    return OnnxEmbedder("sentence-transformers/all-MiniLM-L6-v2",
                        Path(os.environ["RAG_MODELS_DIR"]))


@pytest.mark.parametrize("backend", ["openvino", "onnx"])
def test_int8_agrees_with_torch(backend: str, embedder, ort_embedder,  # type: ignore[no-untyped-def]
                                torch_embedder) -> None:
    from rag.openvino_embedder import OpenVinoEmbedder

    assert isinstance(embedder, OpenVinoEmbedder)  # what `rag` uses by default on a CPU
    int8 = embedder if backend == "openvino" else ort_embedder
    assert int8.model_id == torch_embedder.model_id
    assert (int8.dimension, int8.max_tokens) == (torch_embedder.dimension,
                                                 torch_embedder.max_tokens)
    passages = _passages()
    ours, torch = int8.embed_documents(passages), torch_embedder.embed_documents(passages)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)  # normalised
    cosines = (ours * torch).sum(axis=1)
    assert cosines.min() > 0.97, cosines.min()
    # Same neighbours: each passage's nearest other passage is the same under both.
    same = [(int(np.argsort(-(ours @ ours[i]))[1]) == int(np.argsort(-(torch @ torch[i]))[1]))
            for i in range(len(passages))]
    assert sum(same) >= 0.8 * len(same)  # near-ties may swap
    # A query finds the same passage first under both.
    query = "How do you compare two embeddings?"
    assert int(np.argmax(ours @ int8.embed_query(query))) == int(
        np.argmax(torch @ torch_embedder.embed_query(query)))


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


def test_the_openvino_model_is_made_once_and_reused(tmp_path: Path) -> None:
    from rag.onnx_embedder import INT8_FILE
    from rag.openvino_embedder import OV_FILE, OpenVinoEmbedder

    cache = tmp_path / "models"
    first = OpenVinoEmbedder("sentence-transformers/all-MiniLM-L6-v2", cache)
    assert first.export_seconds is not None  # exported and quantised in this process
    assert first.model_path.name == OV_FILE and first.model_path.with_suffix(".bin").is_file()
    made = first.model_path.stat().st_mtime_ns
    second = OpenVinoEmbedder("sentence-transformers/all-MiniLM-L6-v2", cache)
    assert second.export_seconds is None and second.model_path == first.model_path
    assert second.model_path.stat().st_mtime_ns == made  # loaded, not quantised again
    leftovers = [p.name for p in first.cache_dir.iterdir() if p.is_dir()]
    assert leftovers == []  # no half-written work folder
    # onnxruntime's int8 model is made only when that backend is used (about 3 s, 23 MB)
    assert not (first.cache_dir / INT8_FILE).exists()
    query = "nearest neighbour search"
    assert float(first.embed_query(query) @ second.embed_query(query)) > 0.9999
