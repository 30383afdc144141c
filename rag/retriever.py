"""Question -> ranked chunks."""

from __future__ import annotations

from rag.embeddings import Embedder
from rag.store import ChromaStore, Where
from rag.types import RetrievedChunk


class Retriever:
    """Dense retrieval over the Chroma store, with the embedder checked against the collection."""

    def __init__(self, store: ChromaStore, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder
        self._checked = False

    def search(self, query: str, k: int, where: Where | None = None) -> list[RetrievedChunk]:
        if not self._checked:
            self.store.check_embedder(self.embedder.model_id, self.embedder.dimension)
            self._checked = True
        if not query.strip():
            return []
        vector = self.embedder.embed_query(query)
        return self.store.query(vector, k, where)
