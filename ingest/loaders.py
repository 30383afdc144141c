"""One reader per file type. Each returns ``Document``s with page or heading metadata, or raises
``LoaderError`` with a short reason that the ingest summary shows."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from rag.errors import LoaderError
from rag.types import Document

Loader = Callable[[Path, str], list[Document]]


# --- text decoding -------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16/32 with BOM, else Latin-1; never raises."""
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252" if _looks_cp1252(data) else "latin-1", errors="replace")


def _looks_cp1252(data: bytes) -> bool:
    return any(0x80 <= b <= 0x9F for b in data[:65536])


# Control characters (tabs, newlines and form feeds aside), C1 controls, U+FFFD, private use.
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd\ue000-\uf8ff]")
_BINARY = "binary content in a text file: give it its real extension, or remove it"


def _read_text_file(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192] and not data.startswith(
        (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)
    ):
        raise LoaderError(_BINARY)
    text = decode_text(data)
    sample = text[:65536]
    # Bytes that are not text decode (as Latin-1) to many control characters; text has few.
    if len(_NOT_TEXT.findall(sample)) > len(sample) // 20:
        raise LoaderError(_BINARY)
    return text


def _nonempty(docs: list[Document]) -> list[Document]:
    kept = [d for d in docs if d.text.strip()]
    if not kept:
        raise LoaderError("empty: no text in the file")
    return kept


# --- plain text and Markdown ----------------------------------------------------------------


def load_text(path: Path, source: str) -> list[Document]:
    return _nonempty([Document(text=_read_text_file(path), source=source)])


_ATX = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def split_markdown(text: str, source: str) -> list[Document]:
    """One document per section; ``heading`` is the path of headings above it."""
    docs: list[Document] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        body = "\n".join(lines).strip()
        if body:
            docs.append(Document(text=body, source=source, heading=" > ".join(t for _, t in path)))
        lines.clear()

    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _ATX.match(line)
        if match:
            flush()
            level, title = len(match.group(1)), match.group(2).strip()
            path[:] = [(lvl, t) for lvl, t in path if lvl < level] + [(level, title)]
        lines.append(line)
    flush()
    return docs


def load_markdown(path: Path, source: str) -> list[Document]:
    return _nonempty(split_markdown(_read_text_file(path), source))


# --- HTML ------------------------------------------------------------------------------------


class _VisibleText(HTMLParser):
    """Visible text by section: scripts, styles and other invisible elements dropped."""

    HIDDEN = frozenset({"script", "style", "head", "noscript", "template", "svg", "iframe"})
    BLOCK = frozenset(
        {"p", "div", "br", "li", "tr", "section", "article", "header", "footer", "pre",
         "blockquote", "table", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "title"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hidden_depth = 0
        self.sections: list[tuple[str, list[str]]] = [("", [])]
        self.heading_path: list[tuple[int, str]] = []
        self.in_heading: int | None = None
        self.heading_text: list[str] = []
        self.title = ""
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden_depth += 1
            if tag == "head":
                self.hidden_depth -= 1  # <head> itself may hold <title>; its scripts are hidden
        if tag == "title":
            self.in_title = True
        if re.fullmatch(r"h[1-6]", tag) and not self.hidden_depth:
            self.in_heading, self.heading_text = int(tag[1]), []
        if tag in self.BLOCK:
            self.sections[-1][1].append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN and tag != "head":
            self.hidden_depth = max(0, self.hidden_depth - 1)
        if tag == "title":
            self.in_title = False
        if self.in_heading is not None and tag == f"h{self.in_heading}":
            title = " ".join("".join(self.heading_text).split())
            level = self.in_heading
            self.in_heading = None
            if title:
                self.heading_path = [(lv, t) for lv, t in self.heading_path if lv < level]
                self.heading_path.append((level, title))
                self.sections.append((" > ".join(t for _, t in self.heading_path), [title, "\n"]))
            return
        if tag in self.BLOCK:
            self.sections[-1][1].append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
            return
        if self.hidden_depth:
            return
        if self.in_heading is not None:
            self.heading_text.append(data)
        else:
            self.sections[-1][1].append(data)


def load_html(path: Path, source: str) -> list[Document]:
    parser = _VisibleText()
    parser.feed(_read_text_file(path))
    parser.close()
    docs = []
    for heading, parts in parser.sections:
        text = "\n".join(" ".join(line.split()) for line in "".join(parts).splitlines())
        text = re.sub(r"\n{3,}", "\n\n", text).strip()
        docs.append(Document(text=text, source=source, heading=heading or parser.title.strip()))
    return _nonempty(docs)


# --- Word --------------------------------------------------------------------------------------


def load_docx(path: Path, source: str) -> list[Document]:
    try:
        import docx
    except ImportError as exc:  # pragma: no cover - a dependency
        raise LoaderError("python-docx is not installed: run `make setup`") from exc
    try:
        document = docx.Document(str(path))
    except Exception as exc:
        raise LoaderError(f"malformed Word file ({exc.__class__.__name__})") from exc
    docs: list[Document] = []
    heading_path: list[tuple[int, str]] = []
    lines: list[str] = []

    def flush() -> None:
        if any(x.strip() for x in lines):
            docs.append(Document("\n".join(lines).strip(), source,
                                 heading=" > ".join(t for _, t in heading_path)))
        lines.clear()

    for para in document.paragraphs:
        style = (para.style.name if para.style is not None else "") or ""
        numbered = re.fullmatch(r"Heading (\d)", style)
        level = 0 if style == "Title" else int(numbered.group(1)) if numbered else None
        if level is not None and para.text.strip():
            flush()
            heading_path[:] = [(lv, t) for lv, t in heading_path if lv < level]
            heading_path.append((level, para.text.strip()))
        lines.append(para.text)
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text.strip() for cell in row.cells))
    flush()
    return _nonempty(docs)


# --- registry ----------------------------------------------------------------------------------


def _load_pdf(path: Path, source: str) -> list[Document]:
    from ingest.pdf import load_pdf

    return load_pdf(path, source)


# --- images: OCR -------------------------------------------------------------------------------

IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
_MAX_FRAMES = 1000  # pages of a multi-page TIFF
_MAX_IMAGE_PIXELS = 400_000_000  # larger is a decompression bomb, not a scan


def load_image(path: Path, source: str) -> list[Document]:
    """The text OCR reads in an image; each frame of a multi-page TIFF is a page."""
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    from ingest import ocr

    Image.MAX_IMAGE_PIXELS = _MAX_IMAGE_PIXELS
    try:
        image = Image.open(path)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
        raise LoaderError(f"not a readable image ({exc.__class__.__name__}: {exc}"[:200]
                          + "): open it and save it again, e.g. as PNG") from exc
    with image:
        frames = min(int(getattr(image, "n_frames", 1)), _MAX_FRAMES)
        docs: list[Document] = []
        for frame in range(frames):
            image.seek(frame)
            image.draft("RGB", (ocr.MAX_SIDE, ocr.MAX_SIDE))  # JPEG: decoded smaller, faster
            upright = ImageOps.exif_transpose(image) or image
            rgb = upright.convert("RGB")
            rgb.thumbnail((ocr.MAX_SIDE, ocr.MAX_SIDE))
            text = ocr.text_of(ocr.read_image(np.asarray(rgb), page=frame + 1))
            if text.strip():
                docs.append(Document(text=text, source=source,
                                     page=frame + 1 if frames > 1 else None))
    if not docs:
        raise LoaderError("no text found by OCR in the image")
    return docs


def _ocr_refused(path: Path, source: str) -> list[Document]:
    raise LoaderError("an image: OCR is off (RAG_OCR=off): set RAG_OCR=auto to read its text")


# Bump when a loader starts reading files it failed on before (2: PDF text through PDFium;
# 3: OCR of scanned pages and images; 4: contents pages of spaced leader dots are text, not
# garbage): each folder's failed files are then read again once, at its next sync.
LOADERS_VERSION = "4"

LOADERS: dict[str, Loader] = {
    ".pdf": _load_pdf,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".text": load_text,
    ".rst": load_text,
    ".csv": load_text,
    ".log": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".docx": load_docx,
    **dict.fromkeys(IMAGE_TYPES, load_image),
}


def loader_for(path: Path) -> Loader | None:
    return LOADERS.get(path.suffix.lower())


def load_file(path: Path, source: str, password: str | None = None, *,
              ocr: bool = True) -> list[Document]:
    """Read one file; ``LoaderError`` when it cannot be read. ``password``: of an encrypted PDF;
    ``ocr``: read images, and PDF pages without a text layer, by OCR (``RAG_OCR``)."""
    loader = loader_for(path)
    if loader is None:
        raise LoaderError(f"unsupported file type {path.suffix or '(none)'}")
    try:
        if path.stat().st_size == 0:
            raise LoaderError("empty: the file is 0 bytes")
        if path.suffix.lower() == ".pdf":
            from ingest.pdf import load_pdf

            return load_pdf(path, source, password=password, ocr=ocr)
        if loader is load_image and not ocr:
            loader = _ocr_refused
        return loader(path, source)
    except LoaderError:
        raise
    except MemoryError as exc:
        raise LoaderError("too large to read within the memory bound") from exc
    except Exception as exc:
        raise LoaderError(f"cannot read ({exc.__class__.__name__}: {exc})"[:300]) from exc
