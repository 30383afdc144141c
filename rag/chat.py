"""The answer pipeline: condense -> retrieve -> prompt -> stream -> sources.

``ChatEngine.stream_answer`` yields events so the CLI and the UI can show sources first and
the answer as it is generated; the last event carries the finished ``Answer``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from rag.citations import check_citations
from rag.evidence import EvidenceFinder, plain
from rag.fusion import merge_neighbours
from rag.llm import LLM
from rag.prompts import (
    REFUSAL,
    build_messages,
    build_rewrite_messages,
    clean_rewrite,
    format_context,
    is_refusal,
)
from rag.retriever import Retrieval, Retriever, SearchOptions
from rag.text import REFERRING_WORDS
from rag.types import Answer, AnswerSentence, Message, RetrievedChunk, Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourcesEvent:
    sources: list[Source]
    search_query: str
    left_out: int = 0  # retrieved passages past the model's context budget


@dataclass(frozen=True)
class TokenEvent:
    text: str


@dataclass(frozen=True)
class DoneEvent:
    answer: Answer


ChatEvent = SourcesEvent | TokenEvent | DoneEvent


@dataclass(frozen=True)
class ContextBudget:
    """The most tokens of passages a model is given, counted in its own vocabulary.

    A CPU model reads its whole prompt before the first token of the answer, so the passages
    it is given decide how long the user waits (bench/answer.py). Hits are fitted one chunk
    at a time, best first, and merged with their neighbours afterwards: a merged block of
    several chunks would otherwise use the whole budget on one stretch of one file.
    """

    tokens: int
    count: Callable[[str], int]

    def fit(self, hits: list[RetrievedChunk]) -> list[RetrievedChunk]:
        """The leading ``hits`` whose context blocks fit; the first one always does."""
        kept: list[RetrievedChunk] = []
        used = 0
        for h in hits:
            used += self.count(format_context([Source(n=len(kept) + 1, chunk=h)]))
            if kept and used > self.tokens:
                break
            kept.append(h)
        return kept


_CONTINUING = ("and ", "but ", "also ", "what about", "how about", "or ", "so ")


def needs_context(question: str) -> bool:
    """Whether a follow-up leans on the conversation: short, starts like a continuation
    ("and what about 2022?"), or refers back ("what does its ef_search do?")."""
    words = [w.strip("?!.,;:'\"()").lower() for w in question.split()]
    return (
        len(words) <= 6
        or question.strip().lower().startswith(_CONTINUING)
        or any(w in REFERRING_WORDS for w in words)
    )


def condense_question(question: str, history: Sequence[Message]) -> str:
    """A search query for ``question`` that keeps the topic of a follow-up.

    A follow-up like "and what about page 2?" or "what does its ef_search do?" says little on
    its own, so the previous user question is prepended. The fallback of ``rewrite_question``.
    """
    previous = [m.content for m in history if m.role == "user"]
    if previous and needs_context(question):
        return f"{previous[-1]} {question}"
    return question


def rewrite_question(question: str, history: Sequence[Message], llm: LLM | None) -> str:
    """A standalone search query for a follow-up, written by the LLM and checked.

    Without history the question is the query. The LLM's rewrite is used only when it looks
    like a question about the conversation's topic (see ``prompts.clean_rewrite``); a small
    model often answers, refuses or echoes the prompt instead, and then the heuristic
    ``condense_question`` is used.
    """
    if not any(m.role == "user" for m in history):
        return question
    if llm is not None:
        try:
            raw = "".join(
                llm.stream(build_rewrite_messages(question, history), temperature=0.0,
                           max_tokens=64)
            )
        except Exception as exc:  # the answer can still be given with the heuristic query
            log.warning("query rewrite failed (%s); using the heuristic", exc)
        else:
            rewritten = clean_rewrite(raw, question, history)
            if rewritten:
                log.info("follow-up rewritten: %r -> %r", question, rewritten)
                return rewritten
            log.info("unusable query rewrite %r; using the heuristic", raw[:200])
    return condense_question(question, history)


def left_out_note(count: int) -> str:
    """What the UI and `rag ask` say when the context budget left passages out."""
    more = "1 more passage was" if count == 1 else f"{count} more passages were"
    return (f"{more} found but not given to the in-process model, so that it starts answering "
            "sooner (RAG_LOCAL_CONTEXT_TOKENS; Ollama gets them all).")


def extract_note() -> str:
    """What the UI and `rag ask` say under an extractive answer."""
    return ("Quoted from the documents: no capable language model answers here, so the answer "
            "is the passages' best sentences. For written answers run Ollama (`ollama pull "
            "llama3.2`) or set RAG_GGUF_PATH to a GGUF model (RAG_ANSWER_MODE).")


class ChatEngine:
    """The answer pipeline. With ``llm`` None the answer is extracted from the evidence
    sentences; with an LLM it is generated and each of its sentences checked against the
    passages it cites."""

    def __init__(
        self,
        retriever: Retriever,
        llm: LLM | None,
        *,
        evidence: EvidenceFinder,
        min_score: float,
        temperature: float,
        max_tokens: int,
        rewrite_queries: bool = True,
        context_budget: ContextBudget | None = None,
    ) -> None:
        self.retriever = retriever
        self.llm = llm
        self.evidence = evidence
        self.min_score = min_score
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.rewrite_queries = rewrite_queries
        self.context_budget = context_budget

    @property
    def top_k(self) -> int:
        """How many passages a question that names no ``k`` is given (RAG_TOP_K)."""
        return self.retriever.default_k

    def retrieve(self, query: str, options: SearchOptions | None = None) -> Retrieval:
        """Ranked chunks, or none when even the best is below ``min_score``.

        Relevance is judged on the cosine similarity of the best dense hit whatever the mode
        (a fused or BM25 score has no fixed scale); in dense mode each hit below the threshold
        is dropped as well.
        """
        options = options or SearchOptions()
        result = self.retriever.retrieve(query, options)
        if result.best_cosine is None or result.best_cosine < self.min_score:
            result.hits = []
        elif self.retriever.config_for(options).mode == "dense":
            result.hits = [h for h in result.hits if h.score >= self.min_score]
        return result

    def search_query(self, question: str, history: Sequence[Message]) -> str:
        return rewrite_question(question, history, self.llm if self.rewrite_queries else None)

    @property
    def mode(self) -> str:
        return "extract" if self.llm is None else "generate"

    @property
    def backend(self) -> str:
        return self.llm.name if self.llm is not None else "extract"

    def stream_answer(
        self,
        question: str,
        history: Sequence[Message] = (),
        *,
        options: SearchOptions | None = None,
    ) -> Iterator[ChatEvent]:
        """Events for one answer: sources first, then tokens, then the finished ``Answer``.

        ``options`` says how many passages and from which documents (see ``SearchOptions``).
        """
        query = self.search_query(question, history)
        options = options or SearchOptions()
        config = self.retriever.config_for(options)
        budget, merge = self.context_budget, config.merge_neighbours
        if budget is not None and merge:  # fit chunk by chunk, merge the kept ones after
            options = replace(options, config=replace(config, merge_neighbours=False))
        hits = self.retrieve(query, options).hits
        kept = hits if budget is None else budget.fit(hits)
        left_out = len(hits) - len(kept)
        if budget is not None and merge:
            kept = merge_neighbours(kept)
        given = [Source(n=i + 1, chunk=h) for i, h in enumerate(kept)]
        given, scored = (self.evidence.attach([question, query], given) if given
                         else (given, []))
        # whether the documents answer is judged on everything retrieved, not only on what
        # the model's context budget left in
        judged = scored if not left_out else self.evidence.score(
            [question, query], [Source(n=i + 1, chunk=h) for i, h in enumerate(hits)])
        lexical = self.retriever.lexical
        unknown = (lexical.unknown_share(self.evidence.analyzer.content_terms(question))
                   if given and lexical is not None else 0.0)
        if given and not self.evidence.is_answerable(judged, quoting=self.llm is None,
                                                     unknown_share=unknown):
            log.info("no sentence of the %d passages answers %r: refused", len(given), query)
            given = []  # the passages are about something else: refuse, do not answer from them
        yield SourcesEvent(given, query, left_out=left_out)
        answer = Answer(question=question, text="", sources=given, search_query=query,
                        backend=self.backend, left_out=left_out,
                        mode="extract" if self.llm is None else "generate")
        if not given:
            answer.text, answer.refused = REFUSAL, True
            yield TokenEvent(REFUSAL)
            yield DoneEvent(answer)
            return
        if self.llm is None:
            text, chosen = self.evidence.extract(scored, given)
            yield TokenEvent(text)
            answer.text = text
            answer.sentences = [AnswerSentence(plain(c.span.text), (given[c.source].n,), True)
                                for c in chosen]
            yield DoneEvent(answer)
            return
        pieces: list[str] = []
        for piece in self.llm.stream(
            build_messages(question, given, history),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        ):
            pieces.append(piece)
            yield TokenEvent(piece)
        text, invalid = check_citations("".join(pieces).strip(), {s.n for s in given})
        if invalid:
            log.info("removed citations of sources that were not given: %s", sorted(invalid))
        answer.text = text or REFUSAL
        answer.refused = is_refusal(answer.text)
        if not answer.refused:
            answer.sentences, answer.sources = self.evidence.check(answer.text, given)
        yield DoneEvent(answer)

    def ask(
        self,
        question: str,
        history: Sequence[Message] = (),
        *,
        options: SearchOptions | None = None,
    ) -> Answer:
        for event in self.stream_answer(question, history, options=options):
            if isinstance(event, DoneEvent):
                return event.answer
        raise AssertionError("stream_answer ended without a DoneEvent")
