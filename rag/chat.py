"""The answer pipeline: condense -> retrieve -> prompt -> stream -> sources.

``ChatEngine.stream_answer`` yields events so the CLI and the UI can show sources first and
the answer as it is generated; the last event carries the finished ``Answer``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rag.llm import LLM
from rag.prompts import REFUSAL, build_messages, check_citations, is_refusal
from rag.retriever import Retriever
from rag.types import Answer, Message, RetrievedChunk, Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourcesEvent:
    sources: list[Source]
    search_query: str


@dataclass(frozen=True)
class TokenEvent:
    text: str


@dataclass(frozen=True)
class DoneEvent:
    answer: Answer


ChatEvent = SourcesEvent | TokenEvent | DoneEvent


def condense_question(question: str, history: Sequence[Message]) -> str:
    """A search query for ``question`` that keeps the topic of a short follow-up.

    A follow-up like "and what about page 2?" says little on its own, so the previous user
    question is prepended when the new one is short.
    """
    previous = [m.content for m in history if m.role == "user"]
    if previous and len(question.split()) <= 6:
        return f"{previous[-1]} {question}"
    return question


class ChatEngine:
    def __init__(
        self,
        retriever: Retriever,
        llm: LLM,
        *,
        top_k: int,
        min_score: float,
        temperature: float,
        max_tokens: int,
    ) -> None:
        self.retriever = retriever
        self.llm = llm
        self.top_k = top_k
        self.min_score = min_score
        self.temperature = temperature
        self.max_tokens = max_tokens

    def retrieve(self, query: str, k: int | None = None) -> list[RetrievedChunk]:
        hits = self.retriever.search(query, k or self.top_k)
        return [h for h in hits if h.score >= self.min_score]

    def stream_answer(
        self, question: str, history: Sequence[Message] = (), *, k: int | None = None
    ) -> Iterator[ChatEvent]:
        query = condense_question(question, history)
        hits = self.retrieve(query, k)
        sources = [Source(n=i + 1, chunk=h) for i, h in enumerate(hits)]
        yield SourcesEvent(sources, query)
        answer = Answer(question=question, text="", sources=sources, search_query=query,
                        backend=self.llm.name)
        if not sources:
            answer.text, answer.refused = REFUSAL, True
            yield TokenEvent(REFUSAL)
            yield DoneEvent(answer)
            return
        pieces: list[str] = []
        for piece in self.llm.stream(
            build_messages(question, sources, history),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        ):
            pieces.append(piece)
            yield TokenEvent(piece)
        text, invalid = check_citations("".join(pieces).strip(), {s.n for s in sources})
        if invalid:
            log.info("removed citations of sources that were not given: %s", sorted(invalid))
        answer.text = text or REFUSAL
        answer.refused = is_refusal(answer.text)
        yield DoneEvent(answer)

    def ask(self, question: str, history: Sequence[Message] = (), *, k: int | None = None) -> Answer:
        for event in self.stream_answer(question, history, k=k):
            if isinstance(event, DoneEvent):
                return event.answer
        raise AssertionError("stream_answer ended without a DoneEvent")
