"""The page an answer cites, shown as the user would see it in a PDF viewer."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, NameObject

from rag.preview import page_image, source_file
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
