"""LangChain's own standard retriever tests (langchain-tests) against our adapter, in each mode,
on the sample knowledge base (real Chroma, the real embedder)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from rag.langchain_retriever import KnowledgeBaseRetriever
from rag.retriever import SearchOptions

pytestmark = pytest.mark.slow


class _KnowledgeBase(RetrieversIntegrationTests):
    mode = "hybrid"
    _retriever: Any = None

    @pytest.fixture(autouse=True)
    def _knowledge_base(self, make_app, kb_data_dir) -> None:  # type: ignore[no-untyped-def]
        type(self)._retriever = make_app(kb_data_dir).retriever

    @property
    def retriever_constructor(self) -> type[KnowledgeBaseRetriever]:
        return KnowledgeBaseRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"retriever": self._retriever, "k": 5, "mode": self.mode}

    @property
    def retriever_query_example(self) -> str:
        return "What does ef_search control?"


class TestHybrid(_KnowledgeBase):
    mode = "hybrid"


class TestDense(_KnowledgeBase):
    mode = "dense"


class TestLexical(_KnowledgeBase):
    mode = "lexical"


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_k_passages_are_returned_when_the_index_holds_k(make_app, kb_data_dir, mode: str) -> None:  # type: ignore[no-untyped-def]
    """Neighbour merging used to shrink dense and lexical results (5 asked, 2 returned)."""
    from rag.langchain_retriever import as_langchain_retriever

    app = make_app(kb_data_dir)
    for k in (1, 3, 5, 8):
        options = SearchOptions(k=k, mode=mode)
        assert len(app.retriever.search("What does ef_search control?", options)) == k
    docs = as_langchain_retriever(app.retriever, k=5, mode=mode).invoke("ef_search", k=2)
    assert len(docs) == 2
    assert docs[0].metadata["score_mode"] == mode and docs[0].metadata["score_scale"]
