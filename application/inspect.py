"""The chunk inspector: one document's chunks as the index holds them (page, heading, text), read
from the store, so that bad parsing (empty pages, a heading alone, run-together columns) is seen
before asking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from application.factory import App


@dataclass(frozen=True)
class ChunkView:
    n: int  # 1-based, in the file's order
    page: int | None  # None: a format without pages (Markdown, text)
    heading: str
    text: str
    tokens: int  # in the embedder's tokens, as the chunker counted them

    @property
    def words(self) -> int:
        return len(self.text.split())


@dataclass(frozen=True)
class DocumentChunks:
    source: str
    root: str
    chunks: list[ChunkView]
    expected: int  # the chunks the manifest recorded for the file

    @property
    def count(self) -> int:
        return len(self.chunks)

    @property
    def consistent(self) -> bool:
        """Whether the index holds as many chunks as the manifest says it wrote."""
        return self.count == self.expected


def document_chunks(app: App, root: str, source: str) -> DocumentChunks:
    """The chunks of ``source`` (ingested from folder ``root``) in the index, in file order."""
    record = app.manifest.get(root, source)
    stored = app.store.chunks_of(source, root=root)
    views = [ChunkView(n=i, page=c.page, heading=c.heading, text=c.text,
                       tokens=app.embedder.count_tokens(c.text))
             for i, c in enumerate(stored, start=1)]
    expected = len(record.chunk_ids) if record is not None else 0
    return DocumentChunks(source=source, root=root, chunks=views, expected=expected)
