"""Test doubles that are real implementations of the app's protocols, deterministic and counting.

- ``ScriptedLLM`` implements ``rag.llm.LLM``: it answers from a script (a list of replies, or a
  callable ``messages -> reply``), streams each reply word by word, and records every call.
- ``CountingEmbedder`` implements ``rag.embeddings.Embedder``: hashed bag-of-words vectors,
  L2-normalised (texts sharing words are near, texts sharing none are orthogonal), and counters
  of what it embedded. It builds a real ``IngestPipeline`` over a real Chroma::

      app = App(make_settings(tmp_path / "data", ingest_workers=0))
      app.__dict__["embedder"] = CountingEmbedder()   # App.embedder is a cached_property
      app.pipeline.sync(folder)
      answer = app.chat_engine(ScriptedLLM(["HNSW is a graph index [1]."])).ask("What is HNSW?")

Neither loads a model, so tests built on them take milliseconds and give the same result on
every CPU.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from rag.types import Message

Reply = str | Callable[[Sequence[Message]], str]

_PIECE = re.compile(r"\S+\s*|\s+")


def pieces(text: str) -> list[str]:
    """How ``ScriptedLLM`` streams ``text``: each word with the spaces after it (they join back to
    ``text``; leading spaces are a piece of their own)."""
    return _PIECE.findall(text)


@dataclass(frozen=True)
class LLMCall:
    """One ``stream`` call as ``ScriptedLLM`` received it."""

    messages: tuple[Message, ...]
    temperature: float
    max_tokens: int

    @property
    def prompt(self) -> str:
        """The last message's text (the question with its context, or the rewrite request)."""
        return self.messages[-1].content if self.messages else ""


class ScriptedLLM:
    """An ``LLM`` that says what the test scripted, in order, word by word.

    ``replies``: a list (the n-th call streams the n-th reply; a call past the end fails the
    test with an ``AssertionError`` that shows the prompt), or one callable ``messages -> reply``
    used for every call. ``calls`` records each call (``prompts`` has the last message of each).
    ``max_tokens`` is honoured as a count of pieces, as a real model stops at its token limit.
    """

    def __init__(self, replies: Sequence[str] | Callable[[Sequence[Message]], str],
                 *, name: str = "scripted:test") -> None:
        self.name = name
        self._script: list[str] | None = None if callable(replies) else list(replies)
        self._reply: Callable[[Sequence[Message]], str] | None = (
            replies if callable(replies) else None)
        self.calls: list[LLMCall] = []
        self._lock = threading.Lock()

    @property
    def prompts(self) -> list[str]:
        return [c.prompt for c in self.calls]

    @property
    def remaining(self) -> int | None:
        """Scripted replies not used yet (None for a callable script)."""
        return None if self._script is None else len(self._script) - len(self.calls)

    def stream(
        self, messages: Sequence[Message], *, temperature: float, max_tokens: int
    ) -> Iterator[str]:
        # Recorded when called, not when first iterated: a caller that never reads the stream
        # still asked the model.
        with self._lock:
            index = len(self.calls)
            self.calls.append(LLMCall(tuple(messages), temperature, max_tokens))
        if self._reply is not None:
            text = self._reply(messages)
        else:
            assert self._script is not None
            if index >= len(self._script):
                last = messages[-1].content if messages else ""
                raise AssertionError(
                    f"ScriptedLLM {self.name!r} was called {index + 1} times but has "
                    f"{len(self._script)} scripted replies; this call's last message:\n"
                    f"{last[:600]}"
                )
            text = self._script[index]
        return iter(pieces(text)[: max(0, max_tokens)])


# --- embeddings --------------------------------------------------------------------------

_WORD = re.compile(r"\w+")
# Words every question shares: left out, so a question is near the passages about its topic.
_STOP = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "for", "from", "has", "have",
     "how", "i", "in", "is", "it", "its", "of", "on", "or", "that", "the", "their", "this", "to",
     "was", "what", "when", "where", "which", "who", "why", "will", "with", "you", "your"]
)


def _term(word: str) -> str:
    """A crude stem: "indexes", "indexed" and "index" are one term."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


class CountingEmbedder:
    """An ``Embedder``: hashed bag of words, L2-normalised, and counters of its work.

    Each content word (lower-cased, stop words out, crudely stemmed) adds 1 to one of
    ``dimension - 1`` coordinates chosen by its hash; a text without content words is the last
    unit vector. So the cosine of two texts is about the share of words they have in common,
    and is 0 for texts with no word in common (barring hash collisions).

    Counters: ``documents_embedded`` (texts given to ``embed_documents``, the same attribute as
    the real embedder's), ``document_calls`` (the batches), ``queries_embedded`` and
    ``embedded_texts`` (every document text, in order).
    """

    def __init__(self, dimension: int = 384, *, max_tokens: int = 256,
                 model_id: str = "tests/counting-embedder", batch_size: int = 32) -> None:
        if dimension < 2:
            raise ValueError("dimension must be at least 2")
        self.model_id = model_id
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.batch_size = batch_size  # the pipeline sizes its embedding pools with it
        self.documents_embedded = 0
        self.document_calls = 0
        self.queries_embedded = 0
        self.embedded_texts: list[str] = []
        self._lock = threading.Lock()

    @staticmethod
    def terms(text: str) -> list[str]:
        return [_term(w) for w in _WORD.findall(text.lower()) if w not in _STOP]

    def count_tokens(self, text: str) -> int:
        """Words and punctuation marks, plus the two special tokens a BERT-like model adds."""
        return len(re.findall(r"\w+|[^\w\s]", text)) + 2

    def vector(self, text: str) -> np.ndarray:
        """The vector of ``text``; counts nothing."""
        v = np.zeros(self.dimension, dtype=np.float32)
        for term in self.terms(text):
            digest = hashlib.blake2b(term.encode(), digest_size=8).digest()
            v[int.from_bytes(digest, "big") % (self.dimension - 1)] += 1.0
        norm = float(np.linalg.norm(v))
        if norm == 0.0:
            v[-1] = 1.0
            return v
        return v / norm

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            self.document_calls += 1
            self.documents_embedded += len(texts)
            self.embedded_texts.extend(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self.vector(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            self.queries_embedded += 1
        return self.vector(text)
