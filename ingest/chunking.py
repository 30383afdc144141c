"""Token-aware chunking with the embedder's own tokenizer.

Chunks are at most ``chunk_size`` tokens and never longer than what the embedding model reads
(its maximum sequence length, special tokens included), so nothing is silently truncated.

Each chunk of a file carries its document's header (``ingest/identity.py``) as its
``context``: embedded and indexed with the text, which stays the document's own. The header
counts against what the model reads: when chunk and header would not fit, the file's chunks are
made smaller. With ``table_headers`` (off by default: measured, it did not pay, see
docs/quality.md), a chunk that starts inside a table (``ingest/tables.py``), below its column
headers, also carries those headers in its context, as much of them as fits. ``CHUNKS_VERSION`` names what chunks are built from a file: when it changes, a
sync indexes every file once again (``IngestPipeline``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingest.identity import document_header
from ingest.tables import tables
from rag.types import Chunk, Document

# Bump when the chunks built from the same file change (texts, headers, metadata).
CHUNKS_VERSION = "3"

SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_id(root: str, source: str, index: int, chunk_hash: str, heading: str) -> str:
    """Deterministic: the same file content always gives the same ids. An id names one chunk
    text with its header (``chunk_hash``) and its heading: the lexical index keeps each
    chunk's terms under its id and reuses them while the id is in the collection."""
    where = hashlib.sha256(f"{root}\0{source}".encode()).hexdigest()[:16]
    what = hashlib.sha256(f"{chunk_hash}\0{heading}".encode()).hexdigest()[:12]
    return f"{where}-{index:05d}-{what}"


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
        headers: bool = True,
        table_headers: bool = False,
    ) -> None:
        """``headers``: give each chunk its document's header (off: the text alone);
        ``table_headers``: and a chunk inside a table its column headings (off by default:
        on docugami's 10-Q questions they cost hit@5, see docs/quality.md)."""
        # The budget leaves room for the special tokens ([CLS], [SEP]) the model adds.
        self.budget = max(8, min(chunk_size, max_tokens - special_tokens))
        self._room = max(8, max_tokens - special_tokens)  # what the model reads, in all
        self._overlap = chunk_overlap
        self.headers = headers
        self.table_headers = headers and table_headers
        self._count = count_tokens
        # piece -> tokens, for the text being split (threads may share it: a count is a count)
        self._counted: dict[str, int] = {}
        self._special = special_tokens
        self._splitters: dict[int, RecursiveCharacterTextSplitter] = {}
        self._splitter = self._splitter_for(self.budget)

    def _splitter_for(self, budget: int) -> RecursiveCharacterTextSplitter:
        splitter = self._splitters.get(budget)
        if splitter is None:
            splitter = self._splitters[budget] = RecursiveCharacterTextSplitter(
                separators=SEPARATORS,
                chunk_size=budget,
                chunk_overlap=min(self._overlap, budget // 2),
                length_function=self._length,
                keep_separator="end",
                strip_whitespace=True,
            )
        return splitter

    def _length(self, text: str) -> int:
        # The splitter measures each piece up to three times (to sort it, to merge it, to drop
        # it from the overlap): counting each once makes chunking about 3x faster.
        tokens = self._counted.get(text)
        if tokens is None:
            tokens = self._counted[text] = max(0, self._count(text) - self._special)
        return tokens

    def split_text(self, text: str, budget: int | None = None) -> list[str]:
        """``text`` in pieces of at most ``budget`` tokens (default: the chunk size)."""
        budget = self.budget if budget is None else max(8, min(budget, self.budget))
        try:
            pieces = [p for p in self._splitter_for(budget).split_text(text) if p.strip()]
            return [q for p in pieces for q in self._enforce_budget(p, budget)]
        finally:
            self._counted.clear()

    def _enforce_budget(self, piece: str, budget: int) -> list[str]:
        """A last guard: halve any piece the splitter could not bring under the budget."""
        if self._length(piece) <= budget or len(piece) < 2:
            return [piece]
        middle = len(piece) // 2
        return (self._enforce_budget(piece[:middle], budget)
                + self._enforce_budget(piece[middle:], budget))

    def header_for(self, docs: Sequence[Document]) -> str:
        """The header of the file ``docs`` come from ("" with headers off or no documents)."""
        if not self.headers or not docs:
            return ""
        header = document_header(docs[0].source, docs)
        # a header never takes more than a third of what the model reads
        while header and self._count(header) - self._special > self._room // 3:
            header = header.rsplit(" ", 1)[0] if " " in header else ""
        return header

    def chunk_documents(
        self, docs: Sequence[Document], *, root: str, content_hash: str,
        context: str | None = None,
    ) -> list[Chunk]:
        """The chunks of one file's documents; ``context``: its header (default: built from
        the documents, see ``header_for``)."""
        header = self.header_for(docs) if context is None else context
        # the header, a line break and the chunk must fit what the model reads
        header_tokens = self._count(header) - self._special + 1 if header else 0
        budget = self._room - header_tokens
        chunks: list[Chunk] = []
        for doc in docs:
            found = tables(doc.text) if self.table_headers and context is None else []
            at = 0
            for piece in self.split_text(doc.text, budget):
                start = doc.text.find(piece, at)
                at = start + 1 if start >= 0 else at
                ctx = header
                table = next((t for t in found if t.start < start < t.end), None)
                if table is not None:  # a chunk inside a table, below its column headers
                    ctx = self._with_table(header, header_tokens, table.header, piece)
                digest = text_hash(f"{ctx}\n{piece}" if ctx else piece)
                index = len(chunks)
                chunks.append(
                    Chunk(
                        id=chunk_id(root, doc.source, index, digest, doc.heading),
                        text=piece,
                        source=doc.source,
                        page=doc.page,
                        heading=doc.heading,
                        chunk_index=index,
                        content_hash=content_hash,
                        chunk_hash=digest,
                        root=root,
                        context=ctx,
                    )
                )
        return chunks

    def _with_table(self, header: str, header_tokens: int, table: str, piece: str) -> str:
        """The document's header and as much of the table's (its last words: the column
        headings) as fits beside ``piece`` in what the model reads."""
        room = self._room - header_tokens - max(0, self._count(piece) - self._special) - 1
        words = table.split()
        while words and self._count(" ".join(words)) - self._special > room:
            words = words[max(1, len(words) // 4):]
        if not words:
            return header
        return f"{header}\n{' '.join(words)}" if header else " ".join(words)
