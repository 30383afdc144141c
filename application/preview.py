"""The file and the page behind a source, so the UI can show the page an answer cites."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rag.types import RetrievedChunk, Source
from rag.uploads import is_inside


def source_file(chunk: RetrievedChunk) -> Path | None:
    """The file a chunk came from, when it is still there (inside the folder it was ingested
    from: a source name never leads outside it)."""
    if not chunk.root or not chunk.source:
        return None
    folder = Path(chunk.root)
    path = folder / chunk.source
    if not is_inside(folder, path) or not path.is_file():
        return None
    return path


def has_page_image(chunk: RetrievedChunk) -> bool:
    path = source_file(chunk)
    return path is not None and chunk.page is not None and path.suffix.lower() == ".pdf"


def page_image(chunk: RetrievedChunk, *, width: int = 900,
               highlights: Sequence[str] = ()) -> bytes | None:
    """The cited page of a PDF source as PNG, with a box around each text of ``highlights``
    found on it; ``None`` for other files or an unreadable page."""
    path = source_file(chunk)
    if path is None or chunk.page is None or path.suffix.lower() != ".pdf":
        return None
    from application.page_image import render_page_png

    return render_page_png(path, chunk.page, width=width, highlights=highlights)


def evidence_texts(source: Source) -> tuple[str, ...]:
    """The sentences of a source that support the answer, to be boxed on its page."""
    return tuple(e.text for e in source.evidence if e.text.strip())
