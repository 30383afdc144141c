"""PDF pages with pypdf: one ``Document`` per page with its 1-based number.

Encrypted PDFs open with an empty password, a password given per file, or a sidecar file
``NAME.pdf.password`` beside the PDF. pypdf's safety limits are raised for large valid files
(some SEC filings have arrays longer than pypdf's default cap); the bound on memory and time
for a pathological file is enforced by the ingest worker, not here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rag.errors import LoaderError
from rag.types import Document

log = logging.getLogger(__name__)

# pypdf's default caps (100,000 array elements) reject valid, large filings such as two
# Microsoft 10-Qs; the process running the loader bounds memory and time instead.
def _raised_limits() -> Any:
    import pypdf

    return pypdf.Configuration(
        array_maximum_element_count=20_000_000,
        dictionary_maximum_element_count=2_000_000,
        stream_parsing_work_maximum_count=50_000_000,
    )


def sidecar_password(path: Path) -> str | None:
    side = path.with_name(path.name + ".password")
    if side.is_file():
        return side.read_text(encoding="utf-8").strip("\r\n")
    return None


def load_pdf(path: Path, source: str, password: str | None = None) -> list[Document]:
    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    with pypdf.apply_configuration(_raised_limits()):
        return _read_pages(path, source, password)


def _read_pages(path: Path, source: str, password: str | None) -> list[Document]:
    import pypdf
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = pypdf.PdfReader(str(path), strict=False)
    except MemoryError:
        raise
    except Exception as exc:  # pypdf raises many types on damaged files; all mean "malformed"
        raise LoaderError(f"malformed PDF ({exc.__class__.__name__}: {exc})"[:300]) from exc
    try:
        encrypted = reader.is_encrypted
    except MemoryError:
        raise
    except Exception as exc:
        raise LoaderError(f"malformed PDF ({exc.__class__.__name__}: {exc})"[:300]) from exc
    if encrypted:
        candidates = [p for p in (password, sidecar_password(path), "") if p is not None]
        opened = False
        for candidate in candidates:
            try:
                if reader.decrypt(candidate):
                    opened = True
                    break
            except (NotImplementedError, FileNotDecryptedError, PdfReadError) as exc:
                raise LoaderError(f"encrypted with an unsupported method ({exc})"[:300]) from exc
            except MemoryError:
                raise
            except Exception as exc:  # a damaged encryption dictionary
                raise LoaderError(f"malformed PDF ({exc.__class__.__name__}: {exc})"[:300]) from exc
        if not opened and len(candidates) > 1:
            raise LoaderError(
                "encrypted: the password given does not open it; give the right one with "
                f"`rag ingest --password FILE=PASSWORD` or in {path.name}.password"
            )
        if not opened:
            raise LoaderError(
                "encrypted: give the password with `rag ingest --password FILE=PASSWORD` "
                f"or in a sidecar file {path.name}.password"
            )
    try:
        pages = reader.pages
        docs = []
        for number, page in enumerate(pages, start=1):
            text = page.extract_text() or ""
            docs.append(Document(text=text, source=source, page=number))
    except FileNotDecryptedError as exc:
        raise LoaderError("encrypted: give the password with `rag ingest --password`") from exc
    except MemoryError:
        raise
    except Exception as exc:  # damaged streams, page-tree loops, missing filters, limits
        raise LoaderError(f"malformed PDF ({exc.__class__.__name__}: {exc})"[:300]) from exc
    kept = [d for d in docs if d.text.strip()]
    if not kept:
        raise LoaderError("no text layer (scanned?): run OCR on it first, e.g. `ocrmypdf`")
    return kept
