"""ChatEngine on a real (embedded) Chroma index of three small files, built with the counting
embedder, answering through a scripted LLM: what the engine does, on any CPU, in milliseconds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from application.factory import App
from rag.chat import ChatEngine, DoneEvent, SourcesEvent, TokenEvent
from rag.errors import ConfigError
from rag.retriever import SearchOptions
from rag.types import Message
from tests.conftest import make_settings
from tests.fakes import CountingEmbedder, ScriptedLLM

FILES = {
    "hnsw.txt": "HNSW is a graph index for approximate nearest neighbour search. The ef_search "
                "setting of HNSW is the parameter that controls how many candidates a search "
                "keeps: a larger ef_search gives higher recall and slower queries.",
    "bread.txt": "Sourdough bread rises with a starter of wild yeast and lactic bacteria. Bake "
                 "the loaf in a hot oven until the crust is dark.",
    "tides.txt": "Tides are caused by the gravity of the moon and the sun pulling on the oceans; "
                 "spring tides come at new and full moon.",
}
QUESTION = "What does the ef_search parameter control?"
HISTORY = [Message("user", "What is HNSW?"),
           Message("assistant", "HNSW is a graph index for nearest neighbour search [1].")]
FOLLOW_UP = "And what does its ef_search setting do?"
Engine = Callable[..., ChatEngine]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three files ingested once for the module (loaded in this process: no workers)."""
    base = tmp_path_factory.mktemp("chat-engine")
    docs = base / "docs"
    docs.mkdir()
    for name, text in FILES.items():
        (docs / name).write_text(text)
    app = _app(base / "data")
    report = app.pipeline.sync(docs)
    assert sorted(report.indexed) == sorted(FILES) and not report.failed
    app.pipeline.close()
    return base / "data"


def _app(data_dir: Path, **overrides: object) -> App:
    app = App(make_settings(data_dir, ingest_workers=0, **overrides))
    app.__dict__["embedder"] = CountingEmbedder()  # App.embedder is a cached_property
    return app


@pytest.fixture
def engine(data_dir: Path) -> Engine:
    """``engine(llm, **settings)``: the app's chat engine over the module's index."""
    def make(llm: ScriptedLLM, **overrides: object) -> ChatEngine:
        return _app(data_dir, **overrides).chat_engine(llm)

    return make


def test_sources_come_first_then_the_answer_streams_token_by_token(engine: Engine) -> None:
    reply = "The ef_search parameter sets how many candidates a search keeps [1]."
    llm = ScriptedLLM([reply])
    events = list(engine(llm).stream_answer(QUESTION))

    assert isinstance(events[0], SourcesEvent)
    assert events[0].sources[0].chunk.source == "hnsw.txt"
    assert [s.n for s in events[0].sources] == list(range(1, len(events[0].sources) + 1))
    tokens = [i for i, e in enumerate(events) if isinstance(e, TokenEvent)]
    assert len(tokens) > 3  # streamed in pieces, not one block
    assert not any(isinstance(e, SourcesEvent) for e in events[tokens[0]:])
    assert "".join(events[i].text for i in tokens).strip() == reply  # type: ignore[union-attr]
    done = events[-1]
    assert isinstance(done, DoneEvent)
    assert done.answer.text == reply and not done.answer.refused
    assert done.answer.backend == llm.name
    assert [s.chunk.source for s in done.answer.cited_sources()] == ["hnsw.txt"]
    # the model was asked once, with the passages numbered in its prompt
    assert len(llm.calls) == 1
    assert "[1]" in llm.calls[0].prompt and "ef_search" in llm.calls[0].prompt


def test_citation_of_a_source_that_was_not_given_is_removed(engine: Engine) -> None:
    llm = ScriptedLLM(["It sets the size of the candidate list [1][7]. Recall rises with it [9]."])
    answer = engine(llm).ask(QUESTION)
    assert len(answer.sources) < 7
    assert "[7]" not in answer.text and "[9]" not in answer.text
    assert "[1]" in answer.text and "candidate list" in answer.text
    assert [s.n for s in answer.cited_sources()] == [1]


def test_nothing_relevant_is_refused_without_asking_the_llm(engine: Engine) -> None:
    llm = ScriptedLLM([])  # any call fails the test
    answer = engine(llm).ask("Who won the football world cup in 1998?")
    assert answer.refused and answer.text
    assert llm.calls == []


def test_follow_up_is_rewritten_by_the_llm_when_rewriting_is_on(engine: Engine) -> None:
    rewrite = "What does the ef_search setting of HNSW do?"
    llm = ScriptedLLM([rewrite, "It bounds the candidate list of a search [1]."])
    answer = engine(llm, query_rewrite="on").ask(FOLLOW_UP, HISTORY)
    assert len(llm.calls) == 2  # the rewrite, then the answer
    assert answer.search_query == rewrite
    assert FOLLOW_UP in llm.calls[0].prompt and "HNSW" in llm.calls[0].prompt
    assert answer.sources[0].chunk.source == "hnsw.txt"


def test_follow_up_without_rewriting_is_searched_with_the_previous_question(engine: Engine) -> None:
    llm = ScriptedLLM(["It bounds the candidate list of a search [1]."])
    answer = engine(llm, query_rewrite="off").ask(FOLLOW_UP, HISTORY)
    assert len(llm.calls) == 1  # the answer only
    assert answer.search_query == f"What is HNSW? {FOLLOW_UP}"
    assert answer.sources[0].chunk.source == "hnsw.txt"


def test_unusable_rewrite_falls_back_to_the_previous_question(engine: Engine) -> None:
    """A small model often answers instead of rewriting: the answer is not used as the query."""
    llm = ScriptedLLM(["Sure! ef_search controls recall.", "It bounds the candidate list [1]."])
    answer = engine(llm, query_rewrite="on").ask(FOLLOW_UP, HISTORY)
    assert len(llm.calls) == 2
    assert answer.search_query == f"What is HNSW? {FOLLOW_UP}"


def test_search_options_default_to_rag_top_k_and_restrict_the_documents(data_dir: Path) -> None:
    """One ``SearchOptions`` through the retriever and the engine; k None is RAG_TOP_K."""
    app = _app(data_dir, top_k=2, merge_neighbours=False)
    assert app.retriever.default_k == app.chat_engine(ScriptedLLM([])).top_k == 2
    assert len(app.retriever.search(QUESTION)) == 2
    assert len(app.retriever.search(QUESTION, SearchOptions(k=1, mode="lexical"))) == 1
    only = SearchOptions(k=3, sources=("bread.txt", "tides.txt"))
    found = [h.source for h in app.retriever.search("What does the ef_search bread do?", only)]
    assert found[0] == "bread.txt" and "hnsw.txt" not in found
    assert app.retriever.search(QUESTION, SearchOptions(source_glob="*.pdf")) == []

    llm = ScriptedLLM(["It bounds the candidate list of a search [1]."])
    answer = app.chat_engine(llm).ask(QUESTION, options=SearchOptions(source_glob="hnsw*"))
    assert [s.chunk.source for s in answer.sources] == ["hnsw.txt"]


@pytest.mark.parametrize("options", [{"k": 0}, {"k": -1}, {"mode": "fuzzy"}])
def test_invalid_search_options_are_a_config_error(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SearchOptions(**options)  # type: ignore[arg-type]
