"""Our retriever as a LangChain ``BaseRetriever``, to plug the knowledge base into a chain.

    from rag.config import load_settings
    from application.factory import App
    from rag.langchain_retriever import as_langchain_retriever

    retriever = as_langchain_retriever(App(load_settings()).retriever, k=4)
    docs = retriever.invoke("what does ef_search control?")
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag.retriever import Retriever, SearchOptions, check_mode
from rag.types import RetrievedChunk

SCORE_SCALES = {
    "dense": "cosine similarity, -1..1",
    "lexical": "BM25, 0 and up, unbounded",
    "hybrid": "fused, 0..1 (1: first in both the dense and the BM25 list)",
}


def to_document(chunk: RetrievedChunk, mode: str = "hybrid") -> Document:
    """A LangChain ``Document``; source, page, heading, score (and on which scale: ``mode``,
    ``score_scale``) and folder go into its metadata."""
    return Document(
        id=chunk.id,
        page_content=chunk.text,
        metadata={
            "source": chunk.source,
            "page": chunk.page,
            "heading": chunk.heading,
            "score": chunk.score,
            "score_mode": mode,  # dense, lexical or hybrid: what the score is
            "score_scale": SCORE_SCALES.get(mode, mode),
            "chunk_index": chunk.chunk_index,
            "root": chunk.root,  # the ingested folder: the file is root/source
        },
    )


class KnowledgeBaseRetriever(BaseRetriever):
    """The ``k`` best chunks for a query, in the configured (or given) retrieval mode."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Any  # rag.retriever.Retriever (Any: pydantic need not know the class)
    k: int = 5
    mode: str | None = None  # dense, lexical, hybrid; None: RAG_RETRIEVAL_MODE
    source_glob: str | None = None  # only sources whose path matches

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        """``k``, ``mode`` and ``source_glob`` given to ``invoke`` win over the constructor's."""
        unknown = set(kwargs) - {"k", "mode", "source_glob"}
        if unknown:
            raise TypeError(f"unknown search options {sorted(unknown)}: use k, mode, source_glob")
        mode = kwargs.get("mode", self.mode) or None
        options = SearchOptions(k=int(kwargs.get("k", self.k)),
                                mode=None if mode is None else check_mode(mode),
                                source_glob=kwargs.get("source_glob", self.source_glob))
        mode = self.retriever.config_for(options).mode
        hits = self.retriever.search(query, options)
        return [to_document(h, mode) for h in hits]


def as_langchain_retriever(
    retriever: Retriever, *, k: int = 5, mode: str | None = None, source_glob: str | None = None
) -> KnowledgeBaseRetriever:
    """Wrap ``retriever`` (``App.retriever``) for LangChain; see the module docstring."""
    return KnowledgeBaseRetriever(retriever=retriever, k=k, mode=mode, source_glob=source_glob)
