"""Our retriever as a LangChain ``BaseRetriever``, to plug the knowledge base into a chain.

    from rag.config import load_settings
    from rag.factory import App
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

from rag.retriever import Retriever
from rag.types import RetrievedChunk


def to_document(chunk: RetrievedChunk) -> Document:
    """A LangChain ``Document``; source, page, heading, score and folder go into its metadata."""
    return Document(
        id=chunk.id,
        page_content=chunk.text,
        metadata={
            "source": chunk.source,
            "page": chunk.page,
            "heading": chunk.heading,
            "score": chunk.score,
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
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        hits = self.retriever.search(query, self.k, mode=self.mode, source_glob=self.source_glob)
        return [to_document(h) for h in hits]


def as_langchain_retriever(
    retriever: Retriever, *, k: int = 5, mode: str | None = None, source_glob: str | None = None
) -> KnowledgeBaseRetriever:
    """Wrap ``retriever`` (``App.retriever``) for LangChain; see the module docstring."""
    return KnowledgeBaseRetriever(retriever=retriever, k=k, mode=mode, source_glob=source_glob)
