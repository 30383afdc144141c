"""Token-aware chunking with the embedder's own tokenizer.

Chunks are at most ``chunk_size`` tokens and never longer than what the embedding model reads
(its maximum sequence length, special tokens included), so nothing is silently truncated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.types import Chunk, Document

SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_id(root: str, source: str, index: int, chunk_hash: str) -> str:
    """Deterministic: the same file content always gives the same ids."""
    where = hashlib.sha256(f"{root}\0{source}".encode()).hexdigest()[:16]
    return f"{where}-{index:05d}-{chunk_hash[:12]}"


class Chunker:
    """Splits documents into chunks that fit the embedder."""

    def __init__(
        self,
        count_tokens: Callable[[str], int],
        *,
        chunk_size: int,
        chunk_overlap: int,
        max_tokens: int,
        special_tokens: int = 2,
    ) -> None:
        # The budget leaves room for the special tokens ([CLS], [SEP]) the model adds.
        self.budget = max(8, min(chunk_size, max_tokens - special_tokens))
        self._count = count_tokens
        # piece -> tokens, for the text being split (threads may share it: a count is a count)
        self._counted: dict[str, int] = {}
        self._special = special_tokens
        self._splitter = RecursiveCharacterTextSplitter(
            separators=SEPARATORS,
            chunk_size=self.budget,
            chunk_overlap=min(chunk_overlap, self.budget // 2),
            length_function=self._length,
            keep_separator="end",
            strip_whitespace=True,
        )

    def _length(self, text: str) -> int:
        # The splitter measures each piece up to three times (to sort it, to merge it, to drop
        # it from the overlap): counting each once makes chunking about 3x faster.
        tokens = self._counted.get(text)
        if tokens is None:
            tokens = self._counted[text] = max(0, self._count(text) - self._special)
        return tokens

    def split_text(self, text: str) -> list[str]:
        try:
            pieces = [p for p in self._splitter.split_text(text) if p.strip()]
            return [q for p in pieces for q in self._enforce_budget(p)]
        finally:
            self._counted.clear()

    def _enforce_budget(self, piece: str) -> list[str]:
        """A last guard: halve any piece the splitter could not bring under the budget."""
        if self._length(piece) <= self.budget or len(piece) < 2:
            return [piece]
        middle = len(piece) // 2
        return self._enforce_budget(piece[:middle]) + self._enforce_budget(piece[middle:])

    def chunk_documents(
        self, docs: Sequence[Document], *, root: str, content_hash: str
    ) -> list[Chunk]:
        chunks: list[Chunk] = []
        for doc in docs:
            for piece in self.split_text(doc.text):
                digest = text_hash(piece)
                index = len(chunks)
                chunks.append(
                    Chunk(
                        id=chunk_id(root, doc.source, index, digest),
                        text=piece,
                        source=doc.source,
                        page=doc.page,
                        heading=doc.heading,
                        chunk_index=index,
                        content_hash=content_hash,
                        chunk_hash=digest,
                        root=root,
                    )
                )
        return chunks
