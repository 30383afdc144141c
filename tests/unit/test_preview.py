"""The page an answer cites, shown as the user would see it in a PDF viewer."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, NameObject

from application.preview import page_image, source_file
from rag.types import RetrievedChunk


def _pdf(path: Path) -> None:
    """Page 1 blank, page 2 painted black all over."""
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=300)
    dark = writer.add_blank_page(width=200, height=300)
    stream = DecodedStreamObject()
    stream.set_data(b"0 0 0 rg 0 0 200 300 re f")
    dark[NameObject("/Contents")] = writer._add_object(stream)
    with path.open("wb") as fh:
        writer.write(fh)


def _chunk(root: Path, source: str, page: int | None) -> RetrievedChunk:
    return RetrievedChunk(id="x", text="", source=source, page=page, heading="", score=1.0,
                          root=str(root))


def _mean(png: bytes) -> float:
    image = Image.open(io.BytesIO(png)).convert("L")
    return sum(image.getdata()) / (image.width * image.height)


def test_the_cited_page_is_rendered_not_another(tmp_path: Path) -> None:
    _pdf(tmp_path / "report.pdf")
    first = page_image(_chunk(tmp_path, "report.pdf", 1), width=300)
    second = page_image(_chunk(tmp_path, "report.pdf", 2), width=300)
    assert first is not None and second is not None
    assert Image.open(io.BytesIO(second)).size == (300, 450)  # the page's shape, 300 wide
    assert _mean(first) > 250 and _mean(second) < 5  # blank page 1, black page 2
    assert page_image(_chunk(tmp_path, "report.pdf", 3)) is None  # no such page


def test_no_image_for_other_files_gone_files_or_paths_outside_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    _pdf(tmp_path / "outside.pdf")
    (folder / "notes.md").write_text("# Notes\n")
    assert page_image(_chunk(folder, "notes.md", None)) is None
    assert source_file(_chunk(folder, "notes.md", None)) == folder / "notes.md"
    assert page_image(_chunk(folder, "../outside.pdf", 1)) is None  # never outside the folder
    assert page_image(_chunk(folder, "deleted.pdf", 1)) is None
    _pdf(folder / "report.pdf")
    assert page_image(_chunk(folder, "report.pdf", 1)) is not None
    unknown_folder = RetrievedChunk(id="x", text="", source="report.pdf", page=1, heading="",
                                    score=1.0, root="")  # an index from before roots were kept
    assert page_image(unknown_folder) is None
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7 not really")
    assert page_image(_chunk(folder, "broken.pdf", 1)) is None


HANDBOOK = Path(__file__).resolve().parents[2] / "knowledge_base" / "vector-search-handbook.pdf"
# On page 2, over two lines ("...the algorithm explores" / "that many candidates..."), as a
# chunk holds it (the page writes CR LF where the chunk has a line break)
SENTENCE = ("ef_construction is the size of the candidate list used while a vector is inserted: "
            "the algorithm explores\nthat many candidates to choose the M best neighbours to "
            "link to.")


def _highlight_pixels(png: bytes) -> list[tuple[int, int]]:
    from application.page_image import HIGHLIGHT_RGB

    image = Image.open(io.BytesIO(png)).convert("RGB")
    pixels = image.load()
    return [(x, y) for y in range(image.height) for x in range(image.width)
            if pixels[x, y] == HIGHLIGHT_RGB]


def _expected_region(width: int) -> tuple[float, float, float, float]:
    """Where PDFium's own search puts the sentence's first words, the end of its first line
    and its last words, in pixels."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(HANDBOOK))
    try:
        sheet = pdf[1]
        scale = width / sheet.get_width()
        height = sheet.get_height()
        textpage = sheet.get_textpage()
        boxes = []
        for words in ("ef_construction is the size", "the algorithm explores",
                      "neighbours to link to."):
            index, count = textpage.search(words, match_case=True).get_next()
            boxes += [textpage.get_charbox(i) for i in (index, index + count - 1)]
        left = min(b[0] for b in boxes) * scale
        right = max(b[2] for b in boxes) * scale
        top = (height - max(b[3] for b in boxes)) * scale  # PDF y runs up from the bottom
        bottom = (height - min(b[1] for b in boxes)) * scale
        return left, top, right, bottom
    finally:
        pdf.close()


def test_the_evidence_is_boxed_where_it_is_on_the_page(tmp_path: Path) -> None:
    chunk = _chunk(HANDBOOK.parent, HANDBOOK.name, 2)
    plain = page_image(chunk, width=600)
    boxed = page_image(chunk, width=600, highlights=[SENTENCE])
    assert plain is not None and boxed is not None
    assert _highlight_pixels(plain) == []  # no highlight, no box
    pixels = _highlight_pixels(boxed)
    assert len(pixels) > 500
    left, top, right, bottom = _expected_region(600)
    margin = 8  # the box is drawn a few pixels outside the glyphs
    xs, ys = [x for x, _ in pixels], [y for _, y in pixels]
    assert left - margin <= min(xs) <= left and right <= max(xs) <= right + margin
    assert top - margin <= min(ys) <= top and bottom <= max(ys) <= bottom + margin
    # Text that is not on the page draws nothing; the page itself is unchanged elsewhere.
    missing = page_image(chunk, width=600, highlights=["Nothing like this is on page two."])
    assert missing is not None and _highlight_pixels(missing) == []
