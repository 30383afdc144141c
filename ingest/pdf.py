"""PDF pages: one ``Document`` per page with its 1-based number.

Text comes from PDFium (``pypdfium2``, the engine of Chrome's viewer) when it reads every page
of the file cleanly: it is about ten times faster than pypdf here (8 s against about 115 s of
CPU for docugami's 2,985 pages) and keeps words together where pypdf splits them at font
changes ("AnnuAl PerFo rmAn ce"). Anything else (PDFium cannot open the file, a page fails or
yields unreadable text, no page has text) goes through pypdf, which decides the outcome.

Every PDF gets a clear outcome: its pages, or a ``LoaderError`` whose reason starts with what
it is (``encrypted``, ``no text layer (scanned?)``, ``no readable text``, ``malformed PDF``)
and says what to do.

- Encrypted PDFs open with an empty password, a password given per file, or a sidecar file
  ``NAME.pdf.password`` beside the PDF. A PDF whose crypt filters leave its streams and
  strings unencrypted (``/Identity``: only its attachments are protected) is read without one.
- A damaged page tree (a cycle, a missing ``/Pages``) is walked with a visited set, and failing
  that the file's objects are scanned for pages (their order, hence page numbers, unknown).
- A page whose text cannot be extracted is left out; the file fails only when no page could be.
- Text that is mostly not letters or digits (glyph names such as ``/g437``, U+FFFD, private-use
  code points: fonts without a Unicode mapping) is not indexed: it would only match noise.
- With ``ocr`` on (``RAG_OCR=auto``), a page without a text layer (a scan), and each page of a
  file whose text is unreadable, is rendered by PDFium and read by OCR (``ocr.py``); pages with
  text are never OCRed. A file in which OCR finds nothing either fails as above.

pypdf's safety limits are raised for large valid files (some SEC filings have arrays longer than
pypdf's default cap); the bound on memory and time for a pathological file is enforced by the
ingest worker, not here.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

from rag.errors import LoaderError
from rag.types import Document

log = logging.getLogger(__name__)

_OCR_HINT = "run OCR on it first, e.g. `ocrmypdf`"
_NO_TEXT = f"no text layer (scanned?): {_OCR_HINT}"
_UNREADABLE = ("no readable text (its fonts map no characters; garbage such as glyph names): "
               "run OCR on it first, e.g. `ocrmypdf --force-ocr`")
# Attributes a page inherits from its ancestors in the page tree (PDF 32000-1, 7.7.3.4).
_INHERITED = ("/Resources", "/MediaBox", "/CropBox", "/Rotate")
_MAX_TREE_NODES = 1_000_000


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


def load_pdf(path: Path, source: str, password: str | None = None, *,
             ocr: bool = True) -> list[Document]:
    """The pages with text; ``ocr``: pages without a text layer are rendered and OCRed."""
    fast = _pdfium_pages(path, source, password, ocr=ocr)
    if fast is not None:
        return fast
    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    with pypdf.apply_configuration(_raised_limits()):
        try:
            return _read_pages(path, source, password)
        except LoaderError as exc:
            if ocr and str(exc) == _UNREADABLE:
                docs = _ocr_unreadable(path, source, password)
                if docs:
                    return docs
            if ocr and str(exc) == _NO_TEXT:
                raise LoaderError("no text layer (scanned?), and OCR found no text on its "
                                  "pages: check the scan, or run OCR on it first, e.g. "
                                  "`ocrmypdf`") from None
            raise


# --- the fast path: PDFium -------------------------------------------------------------------

PDFIUM_LOCK = threading.Lock()  # PDFium is not thread-safe; a loader may run in a thread
_LINE_BREAKS = re.compile(r"\r\n?")


def _pdfium_text(raw: str) -> str:
    # PDFium writes U+FFFE where it joined a word hyphenated across a line break.
    return _LINE_BREAKS.sub("\n", raw).replace("\ufffe", "-")


def _pdfium_pages(path: Path, source: str, password: str | None, *,
                  ocr: bool = False) -> list[Document] | None:
    """Every page's text through PDFium, or ``None`` when pypdf must decide (see the top)."""
    try:
        import pypdfium2 as pdfium
    except ImportError:  # pragma: no cover - declared dependency; pypdf alone still works
        return None
    candidates: list[str | None] = [p for p in (password, sidecar_password(path)) if p]
    with PDFIUM_LOCK:
        for candidate in [*candidates, None]:
            try:
                pdf = pdfium.PdfDocument(str(path), password=candidate)
            except Exception:  # a password needed, a damaged file: tried again with pypdf
                continue
            try:
                try:
                    read = _pdfium_read(pdf, source)
                except Exception as exc:  # pragma: no cover - PDFium errors on a damaged page
                    log.info("%s: PDFium: %s: %s; reading with pypdf", source,
                             exc.__class__.__name__, exc)
                    return None
                if read is None:
                    return None
                docs, textless = read
                if ocr and textless:  # OCR's own errors are not PDFium's: not caught above
                    docs = sorted(docs + _ocr_pages(pdf, textless, source),
                                  key=lambda d: d.page or 0)
                return docs or None
            finally:
                pdf.close()
    return None


def _page_text(page: Any) -> str:
    """A PDFium page's text layer, cleaned by ``_pdfium_text``."""
    textpage = page.get_textpage()
    try:
        return _pdfium_text(textpage.get_text_range())
    finally:
        textpage.close()


def _pdfium_read(pdf: Any, source: str) -> tuple[list[Document], list[int]] | None:
    """The pages with text, and the indices of those without that draw something (a blank
    page is not worth OCR: docugami has 12 among its 2,985 pages); ``None``: pypdf decides."""
    docs: list[Document] = []
    textless: list[int] = []
    for index in range(len(pdf)):
        page = pdf[index]
        try:
            text = _page_text(page)
            drawn = not text.strip() and next(iter(page.get_objects(max_depth=1)), None)
        finally:
            page.close()
        if not text.strip():
            if drawn is not None:
                textless.append(index)
            continue
        if not readable(text):
            return None  # pypdf decides what an unreadable page means
        docs.append(Document(text=text, source=source, page=index + 1))
    return docs, textless


# --- pages without a text layer: OCR ---------------------------------------------------------


def _ocr_unreadable(path: Path, source: str, password: str | None) -> list[Document]:
    """A file whose text is garbage (fonts without a Unicode map): each page with readable
    text keeps it, the others are OCRed; nothing when PDFium cannot open it."""
    import pypdfium2 as pdfium

    with PDFIUM_LOCK:
        for candidate in [p for p in (password, sidecar_password(path)) if p] + [None]:
            try:
                pdf = pdfium.PdfDocument(str(path), password=candidate)
            except Exception:
                continue
            try:
                docs: list[Document] = []
                unusable: list[int] = []
                for index in range(len(pdf)):
                    page = pdf[index]
                    try:
                        text = _page_text(page)
                    finally:
                        page.close()
                    if text.strip() and readable(text):
                        docs.append(Document(text=text, source=source, page=index + 1))
                    else:
                        unusable.append(index)
                ocred = _ocr_pages(pdf, unusable, source)
                return sorted(docs + ocred, key=lambda d: d.page or 0) if ocred else []
            finally:
                pdf.close()
    return []


def _ocr_pages(pdf: Any, indices: list[int], source: str) -> list[Document]:
    """The text OCR finds on these pages (0-based), each rendered by ``_render``. The caller holds
    ``PDFIUM_LOCK``. A page OCR fails on is left out (and logged); when every page fails,
    ``LoaderError`` says why."""
    from ingest import ocr

    docs: list[Document] = []
    failed: list[tuple[int, Exception]] = []
    for index in indices:
        try:
            text = ocr.text_of(ocr.read_image(_render(pdf, index), page=index + 1))
        except MemoryError:
            raise
        except Exception as exc:
            log.warning("%s: page %d: OCR failed: %s: %s", source, index + 1,
                        exc.__class__.__name__, exc)
            failed.append((index, exc))
            continue
        if text.strip():
            docs.append(Document(text=text, source=source, page=index + 1))
        else:
            log.info("%s: page %d: OCR found no text", source, index + 1)
    if failed and len(failed) == len(indices):
        first, error = failed[0]
        raise LoaderError(f"OCR failed on page {first + 1} ({error.__class__.__name__}: {error}"
                          [:240] + "): run the ingest with -v to see more") from error
    return docs


def _render(pdf: Any, index: int) -> Any:
    """Page ``index`` as an RGB array, upright (``/Rotate`` applied), at ``RENDER_DPI`` and at
    most ``MAX_SIDE`` pixels on a side."""
    from ingest import ocr

    page = pdf[index]
    try:
        width, height = page.get_size()
        scale = min(ocr.RENDER_DPI / 72, ocr.MAX_SIDE / max(width, height, 1.0))
        bitmap = page.render(scale=scale, may_draw_forms=True)
        try:
            image = bitmap.to_numpy()
        finally:
            bitmap.close()
    finally:
        page.close()
    return image[:, :, 2::-1] if image.ndim == 3 else image  # PDFium renders BGR(A)


# --- what the text is worth ------------------------------------------------------------------

_GLYPH_NAMES = re.compile(r"/(?:[A-Za-z]{1,6}\d+|\.notdef)")  # pypdf's output for unmapped glyphs
# Space, leaders and rules: "....", ". . . ." (a contents page's spaced leader dots), "____".
_NEUTRAL = re.compile(r"\s+|([^\w\s])(?:[ \t]?\1){2,}|_{3,}")
# Not a letter or digit in any script; private-use code points (U+E000-U+F8FF) are not \w.
_NOT_LETTER_OR_DIGIT = re.compile(r"[\W_]")


def readable(text: str) -> bool:
    """True when at least half of the non-space characters are letters or digits.

    Real text, tables of figures included, is mostly letters and digits; what a font without a
    Unicode mapping yields is glyph names, U+FFFD, private-use code points or punctuation.
    Leader dots and fill-in rules ("Name: ________") count for nothing either way.
    """
    chars = _NEUTRAL.sub("", _GLYPH_NAMES.sub("", text))
    if not chars:
        return False
    good = len(chars) - len(_NOT_LETTER_OR_DIGIT.findall(chars))  # the others are fewer to list
    return good * 2 >= len(chars)


# --- reading ---------------------------------------------------------------------------------


def _malformed(exc: BaseException) -> LoaderError:
    detail = f"{exc.__class__.__name__}: {exc}"[:200]
    return LoaderError(f"malformed PDF ({detail}): repair it, e.g. `qpdf in.pdf repaired.pdf`, "
                       "or export it again")


def _undecryptable(exc: BaseException) -> LoaderError:
    detail = f"{exc.__class__.__name__}: {exc}"[:160]
    return LoaderError(f"encrypted with a method that cannot be decrypted here ({detail}): "
                       "decrypt it first, e.g. `qpdf --decrypt --password=PASSWORD in.pdf out.pdf`")


def _raised_by_decryption(exc: BaseException) -> bool:
    """Whether ``exc`` comes from pypdf's decryption code (not from a damaged file)."""
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if "_encryption" in name or "_crypt_providers" in name:
            return True
        tb = tb.tb_next
    return False


def _read_pages(path: Path, source: str, password: str | None) -> list[Document]:
    import pypdf

    try:
        reader = pypdf.PdfReader(str(path), strict=False)
        encrypted = reader.is_encrypted
    except MemoryError:
        raise
    except Exception as exc:  # pypdf raises many types on damaged files; all mean "malformed"
        raise (_undecryptable(exc) if _raised_by_decryption(exc) else _malformed(exc)) from exc
    opened_with = _decrypt(reader, path, password) if encrypted else None
    try:
        # Recovering pages from a damaged tree makes no sense when the damage may be a wrong key.
        pages, ordered = _pages(reader, recover=not encrypted)
    except MemoryError:
        raise
    except Exception as exc:
        if opened_with == "":  # the empty password "worked" but nothing decrypts: a variant
            raise LoaderError(  # pypdf gets wrong (pdf.js issue 19484), or a damaged file
                "encrypted: it opens with an empty password, but its content does not decrypt "
                f"here ({exc.__class__.__name__}: {exc}"[:200] + "): decrypt it first, e.g. "
                "`qpdf --decrypt in.pdf out.pdf`, or print it to a new PDF") from exc
        raise _malformed(exc) from exc
    docs: list[Document] = []
    garbage = 0
    errors: list[Exception] = []
    for number, page in enumerate(pages, start=1):
        try:
            text = page.extract_text() or ""
        except MemoryError:
            raise
        except Exception as exc:  # a damaged content stream, a missing filter, a limit
            log.info("%s: page %d: %s: %s", source, number, exc.__class__.__name__, exc)
            errors.append(exc)
            continue
        if not text.strip():
            continue
        if not readable(text):
            garbage += 1
            continue
        docs.append(Document(text=text, source=source, page=number if ordered else None))
    if docs:
        return docs
    if garbage:
        raise LoaderError(_UNREADABLE)
    if errors:
        raise _malformed(errors[0]) from errors[0]
    if not pages:
        raise LoaderError("empty: the PDF has no pages")
    raise LoaderError(_NO_TEXT)


def _decrypt(reader: Any, path: Path, password: str | None) -> str | None:
    """Open an encrypted PDF; the password that opened it (``None``: no password was needed)."""
    candidates = [p for p in (password, sidecar_password(path)) if p is not None]
    failure: Exception | None = None
    for candidate in [*candidates, ""]:
        try:
            if reader.decrypt(candidate):
                return candidate
        except MemoryError:
            raise
        except Exception as exc:  # an unsupported method or a damaged encryption dictionary
            failure = failure or exc
    if _content_unencrypted(reader):
        # pypdf refuses every object until a password verifies, although with /Identity crypt
        # filters nothing but attachments is encrypted; readers (pdf.js, poppler) open these.
        reader._encryption = None
        return None
    if failure is not None:
        raise _undecryptable(failure) from failure
    if candidates:
        raise LoaderError(
            "encrypted: the password given does not open it; give the right one with "
            f"`rag ingest --password FILE=PASSWORD` or in {path.name}.password"
        )
    raise LoaderError(
        "encrypted: give the password with `rag ingest --password FILE=PASSWORD` "
        f"or in a sidecar file {path.name}.password"
    )


def _content_unencrypted(reader: Any) -> bool:
    """Crypt filters of streams and strings both /Identity (PDF 1.5+, V 4 or 5)."""
    try:
        encrypt = reader.trailer["/Encrypt"].get_object()
        version = int(encrypt.get("/V", 0))
        stream_filter = str(encrypt.get("/StmF", "/Identity"))
        string_filter = str(encrypt.get("/StrF", "/Identity"))
    except Exception:
        return False
    return version >= 4 and stream_filter == string_filter == "/Identity"


# --- pages, also from a damaged page tree ------------------------------------------------------


def _pages(reader: Any, *, recover: bool) -> tuple[list[Any], bool]:
    """The pages, and whether their order (hence their numbers) is known."""
    try:
        return list(reader.pages), True
    except MemoryError:
        raise
    except Exception as exc:
        if not recover:
            raise
        log.info("damaged page tree (%s: %s); recovering pages", exc.__class__.__name__, exc)
        pages = _walk_page_tree(reader)
        if pages:
            return pages, True
        pages = _scan_for_pages(reader)
        if pages:
            return pages, False
        raise


def _page(reader: Any, ref: Any, node: Any, inherit: dict[str, Any]) -> Any:
    from pypdf import PageObject
    from pypdf.generic import NameObject

    page = PageObject(reader, ref)
    page.update(node)
    for key, value in inherit.items():
        if key not in page:
            page[NameObject(key)] = value
    return page


def _walk_page_tree(reader: Any) -> list[Any]:
    """The page tree in document order, each node visited once (cycles and loops cut)."""
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

    try:
        top = reader.trailer["/Root"].get_object()["/Pages"]
    except Exception:
        return []
    pages: list[Any] = []
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[Any, dict[str, Any]]] = [(top, {})]
    visited = 0
    while stack and visited < _MAX_TREE_NODES:
        node, inherit = stack.pop()
        visited += 1
        ref = node if isinstance(node, IndirectObject) else None
        if ref is not None:
            if (ref.idnum, ref.generation) in seen:
                continue
            seen.add((ref.idnum, ref.generation))
        try:
            obj = node.get_object()
            kids = obj.get("/Kids") if isinstance(obj, DictionaryObject) else None
            kids = kids.get_object() if kids is not None else None
        except Exception:
            continue
        if not isinstance(obj, DictionaryObject):
            continue
        if obj.get("/Type") == "/Page" or kids is None:
            try:
                pages.append(_page(reader, ref, obj, inherit))
            except Exception:
                continue
        elif isinstance(kids, ArrayObject):
            inherit = {**inherit, **{k: obj[k] for k in _INHERITED if k in obj}}
            stack.extend((kid, inherit) for kid in reversed(kids))
    return pages


def _scan_for_pages(reader: Any) -> list[Any]:
    """Every object of type /Page, in object-number order: the page tree is unusable."""
    from pypdf.generic import DictionaryObject, IndirectObject

    ids = {(idnum, gen) for gen, table in reader.xref.items() for idnum in table}
    ids |= {(idnum, 0) for idnum in getattr(reader, "xref_objStm", {})}
    pages = []
    for idnum, gen in sorted(ids):
        ref = IndirectObject(idnum, gen, reader)
        try:
            obj = ref.get_object()
        except Exception:
            continue
        if isinstance(obj, DictionaryObject) and obj.get("/Type") == "/Page":
            try:
                pages.append(_page(reader, ref, obj, _inherited(obj)))
            except Exception:
                continue
    return pages


def _inherited(node: Any) -> dict[str, Any]:
    """Attributes a page would inherit through its /Parent chain."""
    inherit: dict[str, Any] = {}
    seen: set[int] = set()
    try:
        parent = node.get("/Parent")
        while parent is not None and len(seen) < 1000:
            obj = parent.get_object()
            if id(obj) in seen:
                break
            seen.add(id(obj))
            for key in _INHERITED:
                if key in obj and key not in inherit:
                    inherit[key] = obj[key]
            parent = obj.get("/Parent")
    except Exception:
        pass
    return inherit
