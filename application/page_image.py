"""A PDF page as a picture, with the evidence of an answer boxed where it is on the page.

For the sources of an answer: the user sees the page that was cited, rendered locally by PDFium,
and a box around each evidence sentence, placed from PDFium's own character positions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ingest.pdf import PDFIUM_LOCK, sidecar_password

log = logging.getLogger(__name__)

HIGHLIGHT_RGB = (230, 81, 0)  # the outline of a box around a highlighted sentence (orange)
_HIGHLIGHT_FILL = (255, 193, 7, 72)  # its translucent fill (amber)


def render_page_png(path: Path, page: int, *, width: int = 900,
                    highlights: Sequence[str] = ()) -> bytes | None:
    """Page ``page`` (1-based) of the PDF at ``path`` as a PNG ``width`` pixels wide, through
    PDFium; ``None`` when the file cannot be opened (damaged, a password that is not given) or
    has no such page. For the sources of an answer: the user sees the page that was cited.

    Each text of ``highlights`` found on the page (see ``find_text_boxes``) gets a box drawn
    around it, one per line it covers: the answer's evidence, where it is on the page.
    """
    import io

    import pypdfium2 as pdfium

    with PDFIUM_LOCK:
        for candidate in [sidecar_password(path), None]:
            try:
                pdf = pdfium.PdfDocument(str(path), password=candidate)
            except Exception:
                continue
            try:
                if not 1 <= page <= len(pdf):
                    return None
                sheet = pdf[page - 1]
                scale = width / max(sheet.get_width(), 1.0)
                bitmap = sheet.render(scale=scale)
                image = bitmap.to_pil()
                if highlights:
                    boxes = _highlight_boxes(sheet, highlights, image.width, image.height)
                    image = _draw_boxes(image, boxes)
                out = io.BytesIO()
                image.save(out, format="PNG", optimize=False)
                return out.getvalue()
            except Exception as exc:
                log.info("%s: cannot render page %d: %s", path.name, page, exc)
                return None
            finally:
                pdf.close()
    return None


Box = tuple[int, int, int, int]  # left, top, right, bottom in pixels of the rendered page


def find_text_boxes(textpage: Any, text: str) -> list[tuple[float, float, float, float]]:
    """Where ``text`` is on a PDFium text page: one rectangle (left, bottom, right, top in PDF
    points, y upwards) per line of its first occurrence; ``[]`` when it is not on the page.

    The text is matched ignoring case and whitespace (a sentence of a chunk runs over line
    breaks the page writes as CR LF, or as U+FFFE after a hyphen), character by character
    against the page's own characters, so the offsets are PDFium's.
    """
    wanted = _squeeze(text)
    if not wanted:
        return []
    chars, where = [], []
    for i in range(textpage.count_chars()):
        c = _squeeze(_char(textpage, i))
        if c:
            chars.append(c)
            where.extend([i] * len(c))
    found = "".join(chars).find(wanted)
    if found < 0:
        return []
    first, last = where[found], where[found + len(wanted) - 1]
    n = textpage.count_rects(first, last - first + 1)
    return [tuple(textpage.get_rect(k)) for k in range(n)]


def _squeeze(text: str) -> str:
    return "".join(text.replace("\ufffe", "-").replace("\u00ad", "-").casefold().split())


def _char(textpage: Any, index: int) -> str:
    import pypdfium2.raw as pdfium_c

    code = pdfium_c.FPDFText_GetUnicode(textpage.raw, index)
    return chr(code) if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000 else ""


def _highlight_boxes(sheet: Any, highlights: Sequence[str], width: int, height: int) -> list[Box]:
    """The pixel boxes of every highlighted text found on the page."""
    textpage = sheet.get_textpage()
    try:
        rects = [r for text in highlights for r in find_text_boxes(textpage, text)]
    finally:
        textpage.close()
    boxes = []
    for left, bottom, right, top in rects:
        x0, y0 = _to_pixels(sheet, left, top, width, height)
        x1, y1 = _to_pixels(sheet, right, bottom, width, height)
        boxes.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    return boxes


def _to_pixels(sheet: Any, x: float, y: float, width: int, height: int) -> tuple[int, int]:
    """A point of the page (PDF points, y up from the bottom) in pixels of the page rendered
    ``width`` x ``height`` (y down from the top); PDFium applies the crop box and rotation."""
    import ctypes

    import pypdfium2.raw as pdfium_c

    dx, dy = ctypes.c_int(), ctypes.c_int()
    ok = pdfium_c.FPDF_PageToDevice(sheet.raw, 0, 0, width, height, 0, x, y,
                                    ctypes.byref(dx), ctypes.byref(dy))
    if ok:
        return dx.value, dy.value
    left, _, right, top = sheet.get_bbox()  # pragma: no cover - PDFium converts any point
    scale = width / max(right - left, 1.0)
    return round((x - left) * scale), round((top - y) * scale)


def _draw_boxes(image: Any, boxes: Sequence[Box]) -> Any:
    """``image`` with a translucent fill and an outline around each box (a little padded)."""
    if not boxes:
        return image
    from PIL import Image, ImageDraw

    base = image.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    pad = max(2, base.width // 300)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle((x0 - pad, y0 - pad, x1 + pad, y1 + pad), fill=_HIGHLIGHT_FILL,
                       outline=(*HIGHLIGHT_RGB, 255), width=max(2, pad))
    return Image.alpha_composite(base, layer).convert("RGB")
