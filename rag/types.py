"""Small value types passed between stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rag.citations import cited_numbers

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class Document:
    """A unit of loaded text: one PDF page, one Markdown section, one text file."""

    text: str
    source: str  # path relative to the ingested folder, POSIX separators
    page: int | None = None  # 1-based
    heading: str = ""  # "Title > Section > Subsection"


@dataclass(frozen=True)
class Chunk:
    id: str
    text: str
    source: str
    page: int | None
    heading: str
    chunk_index: int
    content_hash: str  # of the source file's bytes
    chunk_hash: str  # of what is embedded (``embed_text``)
    root: str = ""  # the ingested folder (absolute); sources are relative to it
    # What names the chunk's document (ingest/identity.py): embedded and indexed with the
    # text, never shown as part of it.
    context: str = ""

    @property
    def embed_text(self) -> str:
        """What is embedded: the document's header, then the text."""
        return f"{self.context}\n{self.text}" if self.context else self.text

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "source": self.source,
            "root": self.root,
            "heading": self.heading,
            "chunk_index": self.chunk_index,
            "content_hash": self.content_hash,
            "chunk_hash": self.chunk_hash,
        }
        if self.page is not None:  # Chroma metadata values cannot be None
            meta["page"] = self.page
        if self.context:
            meta["context"] = self.context
        return meta


@dataclass(frozen=True)
class RetrievedChunk:
    id: str
    text: str
    source: str
    page: int | None
    heading: str
    score: float  # higher is better; cosine similarity for dense search
    chunk_index: int = 0
    root: str = ""  # the ingested folder (absolute); the file is root/source

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "page": self.page,
            "heading": self.heading,
            "score": round(self.score, 4),
            "text": self.text,
            "root": self.root,
        }


@dataclass(frozen=True)
class Evidence:
    """A sentence of a passage that supports the answer: ``chunk.text[start:end]``."""

    start: int  # character offsets into the passage's text
    end: int
    text: str
    score: float  # higher is better: the sentence's cosine to the question plus term overlap

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text,
                "score": round(self.score, 4)}


@dataclass(frozen=True)
class Source:
    """A numbered citation: ``[n]`` in the answer points at this chunk."""

    n: int
    chunk: RetrievedChunk
    evidence: tuple[Evidence, ...] = ()  # best first

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, **self.chunk.to_dict(),
                "evidence": [e.to_dict() for e in self.evidence]}

    def label(self) -> str:
        page = f", page {self.chunk.page}" if self.chunk.page is not None else ""
        return f"[{self.n}] {self.chunk.source}{page}"


AnswerMode = Literal["extract", "generate"]


@dataclass(frozen=True)
class AnswerSentence:
    """One sentence of a generated answer and whether the passages it cites support it."""

    text: str
    cited: tuple[int, ...]  # the [n] markers in it
    supported: bool

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "cited": list(self.cited), "supported": self.supported}


@dataclass
class Answer:
    question: str
    text: str
    sources: list[Source] = field(default_factory=list)
    search_query: str = ""
    refused: bool = False  # the documents do not contain the answer
    backend: str = ""
    left_out: int = 0  # passages retrieved but not given to the model (its context budget)
    mode: AnswerMode = "generate"  # extract: quoted evidence sentences; generate: an LLM wrote it
    sentences: list[AnswerSentence] = field(default_factory=list)  # generated answers, checked

    def cited_sources(self) -> list[Source]:
        cited = cited_numbers(self.text)
        return [s for s in self.sources if s.n in cited]

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "search_query": self.search_query,
            "answer": self.text,
            "refused": self.refused,
            "backend": self.backend,
            "left_out": self.left_out,
            "mode": self.mode,
            "sources": [s.to_dict() for s in self.sources],
            "unsupported": self.unsupported(),
        }

    def unsupported(self) -> list[str]:
        """Sentences of a generated answer that no passage they cite supports (an answer with
        no citation at all is unsupported as a whole)."""
        return [s.text for s in self.sentences if not s.supported]
