"""Typed settings, read once from the environment (prefix ``RAG_``) and ``.env``.

Every field is listed, with its default and a comment, in ``.env.example``. Build one
``Settings`` at the edge (CLI, UI) and pass it down; library code never reads ``os.environ``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# `rag ask` / `rag search` refuse longer questions (a usage error that names the limit): the
# embedder reads 256 tokens (~1,000 characters) of a query, and a question is a sentence or a
# few, not a document.
MAX_QUESTION_CHARS = 4000
TOP_K_RANGE = (1, 100)  # RAG_TOP_K and `--k`
# The collection of a data folder built before there were several: it keeps its files where they
# were (DATA_DIR/manifest.sqlite3, DATA_DIR/uploads); any other lives in DATA_DIR/collections/NAME.
DEFAULT_COLLECTION = "documents"
_COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]")


def collection_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a collection (Chroma's rules), or None when it can."""
    if not _COLLECTION_NAME.fullmatch(name) or ".." in name:
        return (f"{name!r} cannot name a collection: use 3 to 63 letters, digits, '-', '_' or "
                "'.', starting and ending with a letter or digit, e.g. research-papers")
    return None


class Settings(BaseSettings):
    """Everything the app can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(
        Path("./data"), description="Where the index, manifest and chats are stored."
    )
    collection: str = Field(
        DEFAULT_COLLECTION,
        description="The collection (knowledge base) used when none is chosen: `rag "
        "--collection NAME` and the chat page pick another; `rag collections` lists them.",
    )
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="sentence-transformers model name or local path; the default ships offline.",
    )
    embedding_device: str = Field("cpu", description="Device for the embedder: cpu, cuda, mps.")
    embedding_backend: Literal["torch", "onnx", "openvino"] = Field(
        "openvino",
        description="openvino: the model exported once to ONNX, quantised to int8 with NNCF "
        "and run by OpenVINO (CPU; fastest here); onnx: the ONNX export quantised by "
        "onnxruntime (int8 weights) and run by onnxruntime; both cached in RAG_DATA_DIR/models. "
        "torch: sentence-transformers on PyTorch. A device other than cpu always uses torch.",
    )
    models_dir: Path | None = Field(
        None,
        description="Where the embedding model's exports (ONNX, OpenVINO int8) are cached; empty: "
        "RAG_DATA_DIR/models. Several data directories may share one.",
    )
    embedding_batch_size: int = Field(32, ge=1, le=4096, description="Chunks per embedding batch.")
    chunk_size: int = Field(200, ge=16, description="Chunk size in tokens of the embedder.")
    chunk_overlap: int = Field(30, ge=0, description="Overlap between chunks, in tokens.")
    top_k: int = Field(5, ge=TOP_K_RANGE[0], le=TOP_K_RANGE[1],
                       description="How many chunks are given to the LLM.")
    min_score: float = Field(
        0.2,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity below which a chunk is not relevant; when none is, "
        "the app says the documents do not contain the answer.",
    )
    answer_mode: Literal["auto", "generate", "extract"] = Field(
        "auto",
        description="extract: the answer is the passages' best sentences, quoted with their "
        "[n] (no LLM, well under a second); generate: the LLM writes it and each sentence is "
        "checked against the passages it cites; auto: generate with Ollama or a GGUF model set "
        "in RAG_GGUF_PATH, extract when the only model is the bundled SmolLM2-135M (its answers "
        "are mostly wrong).",
    )
    llm_backend: Literal["auto", "ollama", "llamacpp"] = Field(
        "auto", description="auto: Ollama when it answers and has the model, else the GGUF model."
    )
    ollama_host: str = Field("http://localhost:11434", description="Ollama server URL.")
    ollama_model: str = Field("llama3.2", description="Ollama model name (ollama pull NAME).")
    ollama_timeout: float = Field(120.0, gt=0, description="Seconds to wait for Ollama.")
    gguf_path: Path | None = Field(
        None, description="GGUF model for the in-process backend; empty: bundled SmolLM2-135M."
    )
    llm_threads: int | None = Field(
        None, ge=1, description="CPU threads for the in-process LLM; empty: all cores."
    )
    temperature: float = Field(0.1, ge=0.0, le=2.0, description="LLM sampling temperature.")
    context_window: int = Field(4096, ge=512, description="LLM context window in tokens.")
    local_context_tokens: int = Field(
        700, ge=0,
        description="Most tokens of passages given to the in-process (llama.cpp) model, which "
        "reads a prompt at ~500-800 tokens/s on 2 cores before its first token; passages past "
        "it are left out (the best one is always given). 0: no limit, only RAG_TOP_K.",
    )
    max_answer_tokens: int = Field(512, ge=16, description="Longest answer, in tokens.")
    chroma_host: str = Field("", description="Chroma server host; empty: embedded Chroma.")
    chroma_port: int = Field(8000, ge=1, le=65535, description="Chroma server port.")
    ingest_workers: int = Field(
        2, ge=0, le=64,
        description="Processes that parse files during ingest (0: in the ingest process, "
        "without the time and memory bounds).",
    )
    ingest_file_timeout: float = Field(
        120.0, gt=0, description="Seconds one file may take to parse before it is failed."
    )
    ingest_file_memory_mb: int = Field(
        2048, ge=0, description="Memory (address space, MB) one file's parser may use; 0: none."
    )
    ocr: Literal["auto", "off"] = Field(
        "auto",
        description="auto: images, and PDF pages without a text layer (scans), are read by OCR "
        "during ingest (offline; text PDFs are not slowed); off: they fail as 'no text layer'.",
    )
    ingest_embed_pool: int = Field(
        512, ge=1, le=100_000,
        description="New chunks collected across files for one embedding call. The call sorts "
        "them by length, so a larger pool pads less; a smaller one commits files sooner. An "
        "idle embedder gets what is waiting once that is 64 chunks.",
    )
    retrieval_mode: Literal["dense", "lexical", "hybrid"] = Field(
        "hybrid",
        description="dense: embeddings only; lexical: BM25 only; hybrid: both, fused as "
        "RAG_FUSION says.",
    )
    retrieval_candidates: int = Field(
        100, ge=1, le=2000, description="Hits taken from each list before hybrid fusion."
    )
    fusion: Literal["convex", "rrf"] = Field(
        "convex",
        description="How hybrid retrieval fuses the two lists. convex: weighted mean of each "
        "list's scores divided by its best; rrf: weighted reciprocal rank fusion.",
    )
    rrf_k: float = Field(
        60.0, gt=0, description="Reciprocal rank fusion constant: score = weight / (k + rank)."
    )
    dense_weight: float = Field(0.65, ge=0, description="Weight of the dense list in fusion.")
    lexical_weight: float = Field(0.35, ge=0, description="Weight of the BM25 list in fusion.")
    bm25_k1: float = Field(0.9, ge=0, description="BM25 term-frequency saturation (k1).")
    bm25_b: float = Field(0.4, ge=0, le=1, description="BM25 length normalisation (b).")
    bm25_window: int = Field(
        1, ge=0, le=5,
        description="BM25 scores a chunk with the text of this many neighbouring chunks of its "
        "file on either side (0: the chunk alone).",
    )
    mmr: bool = Field(
        False, description="Diversify the chunks given to the LLM (maximal marginal relevance)."
    )
    mmr_lambda: float = Field(
        0.7, ge=0, le=1, description="MMR trade-off: 1 relevance only, 0 diversity only."
    )
    merge_neighbours: bool = Field(
        True, description="Merge hits that are consecutive chunks of one file into one block."
    )
    query_rewrite: Literal["auto", "on", "off"] = Field(
        "auto",
        description="How a follow-up question becomes a standalone search query. on: the LLM "
        "rewrites it (checked; the heuristic when unusable); off: the previous question is "
        "prepended (heuristic); auto: the LLM with Ollama, the heuristic with the in-process "
        "model (its rewrites were unusable and cost 0.1-0.7 s before the first token).",
    )
    upload_max_mb: float = Field(
        50.0, gt=0, description="Largest file the browser's library page accepts, in MB."
    )
    explorer_max_points: int = Field(
        5000, ge=100, description="Chunks drawn on the explorer's map; beyond, a random sample."
    )

    @field_validator("query_rewrite", mode="before")
    @classmethod
    def _bool_is_on_off(cls, value: object) -> object:
        """``true``/``false`` (this setting was a flag) still mean on/off."""
        flags = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off"}
        if isinstance(value, bool):
            return "on" if value else "off"
        return flags.get(str(value).strip().lower(), value)

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        problem = collection_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir_given(cls, value: object) -> object:
        """An empty RAG_DATA_DIR would be the current directory: refused, not guessed."""
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty: set it to the folder for the index, e.g. ./data, or "
                             "unset it for the default ./data")
        return value

    @field_validator("data_dir")
    @classmethod
    def _data_dir_is_a_folder(cls, value: Path) -> Path:
        """A file where the data directory (or one of its parents) should be is refused here,
        in one line, rather than by the first write into it."""
        for path in (value, *value.absolute().parents):
            if path.exists():
                if not path.is_dir():
                    raise ValueError(f"{path} is a file, not a folder: set RAG_DATA_DIR to a "
                                     "folder (it is created if missing)")
                break
        return value

    @field_validator("gguf_path", "llm_threads", "models_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _check_overlap(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"RAG_CHUNK_OVERLAP ({self.chunk_overlap}) must be smaller than "
                f"RAG_CHUNK_SIZE ({self.chunk_size})"
            )
        return self

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def onnx_cache_dir(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    @property
    def collection_dir(self) -> Path:
        """Where the collection keeps its manifest and uploads: the data folder itself for the
        default collection (as before there were several), else DATA_DIR/collections/NAME."""
        if self.collection == DEFAULT_COLLECTION:
            return self.data_dir
        return self.data_dir / "collections" / self.collection

    @property
    def manifest_path(self) -> Path:
        return self.collection_dir / "manifest.sqlite3"

    @property
    def uploads_dir(self) -> Path:
        return self.collection_dir / "uploads"

    @property
    def conversations_path(self) -> Path:
        return self.data_dir / "conversations.sqlite3"

    @property
    def uses_chroma_server(self) -> bool:
        return bool(self.chroma_host.strip())


def load_settings(**overrides: object) -> Settings:
    """Read the settings once; ``overrides`` win over the environment (used by CLI flags)."""
    from pydantic import ValidationError

    from rag.errors import ConfigError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"RAG_{'_'.join(str(p) for p in err['loc']).upper() or 'SETTINGS'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}. Fix them in .env or the environment.") from exc
