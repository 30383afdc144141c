from pathlib import Path

import pytest

from ingest.loaders import decode_text, load_file, split_markdown
from rag.errors import LoaderError
from tests.conftest import KNOWLEDGE_BASE


def test_markdown_sections_keep_their_heading_path() -> None:
    text = "# Guide\nintro\n## Search\nabout search\n```\n# not a heading\n```\n### HNSW\ngraphs\n## Other\nx"
    docs = split_markdown(text, "g.md")
    assert [d.heading for d in docs] == [
        "Guide", "Guide > Search", "Guide > Search > HNSW", "Guide > Other"
    ]
    assert "# not a heading" in docs[1].text


def test_html_visible_text_only(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text(
        "<html><head><title>T</title><style>body{color:red}</style>"
        "<script>var secret = 1;</script></head><body><h1>Main</h1><p>Visible &amp; kept</p>"
        "<noscript>hidden</noscript><h2>Sub</h2><p>more</p></body></html>"
    )
    docs = load_file(page, "p.html")
    joined = "\n".join(d.text for d in docs)
    assert "Visible & kept" in joined and "more" in joined
    assert "secret" not in joined and "color" not in joined and "hidden" not in joined
    assert docs[-1].heading == "Main > Sub"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("café".encode(), "café"),
        ("café".encode("utf-8-sig"), "café"),
        ("café".encode("utf-16"), "café"),
        ("café".encode("latin-1"), "café"),
        (b"\xff\xfe\xfd undecodable", None),
    ],
)
def test_text_in_any_common_encoding(data: bytes, expected: str | None) -> None:
    text = decode_text(data)
    if expected is not None:
        assert text == expected
    assert isinstance(text, str)


def test_binary_with_text_extension_is_a_clear_failure(tmp_path: Path) -> None:
    f = tmp_path / "x.txt"
    f.write_bytes(b"\x00\x01\x02binary" * 100)
    with pytest.raises(LoaderError, match="binary"):
        load_file(f, "x.txt")


def test_empty_file_is_a_clear_failure(tmp_path: Path) -> None:
    f = tmp_path / "e.md"
    f.write_text("   \n")
    with pytest.raises(LoaderError, match="empty"):
        load_file(f, "e.md")


def test_docx_headings_and_paragraphs(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Report", level=1)
    document.add_paragraph("First finding.")
    document.add_heading("Details", level=2)
    document.add_paragraph("The detail is 42.")
    path = tmp_path / "r.docx"
    document.save(str(path))
    docs = load_file(path, "r.docx")
    assert docs[-1].heading == "Report > Details"
    assert "The detail is 42." in docs[-1].text


def test_pdf_pages_are_numbered_from_one() -> None:
    pdf = next(KNOWLEDGE_BASE.glob("*.pdf"))
    docs = load_file(pdf, pdf.name)
    assert [d.page for d in docs] == list(range(1, len(docs) + 1))
    assert len(docs) >= 2 and all(d.text.strip() for d in docs)
    assert not any("\r" in d.text or "\ufffe" in d.text for d in docs)


def test_pdfium_line_breaks_and_joined_hyphenation_read_as_plain_text() -> None:
    from ingest.pdf import _pdfium_text

    # PDFium ends lines with CR LF and marks a word it joined across a line break with U+FFFE.
    assert _pdfium_text("a system\ufffe" "recorded value\r\nnext line\rlast") == (
        "a system-recorded value\nnext line\nlast")


def _encrypted_copy(tmp_path: Path, password: str) -> Path:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=str(next(KNOWLEDGE_BASE.glob("*.pdf"))))
    writer.encrypt(user_password=password, owner_password="owner", algorithm="AES-128")
    out = tmp_path / "locked.pdf"
    with out.open("wb") as fh:
        writer.write(fh)
    return out


def test_pdf_with_empty_password_opens(tmp_path: Path) -> None:
    assert load_file(_encrypted_copy(tmp_path, ""), "locked.pdf")


def test_pdf_with_a_password_says_how_to_give_it(tmp_path: Path) -> None:
    path = _encrypted_copy(tmp_path, "s3cret")
    with pytest.raises(LoaderError, match="encrypted: give the password"):
        load_file(path, "locked.pdf")
    path.with_name("locked.pdf.password").write_text("s3cret\n")
    assert load_file(path, "locked.pdf")


def test_malformed_pdf_is_a_clear_failure(tmp_path: Path) -> None:
    f = tmp_path / "bad.pdf"
    f.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage")
    with pytest.raises(LoaderError):
        load_file(f, "bad.pdf")


# --- issue 3: every bad file gets a clear outcome -----------------------------------------


def test_zero_byte_file_is_empty_whatever_its_type(tmp_path: Path) -> None:
    for name in ("e.pdf", "e.txt", "e.docx"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(LoaderError, match="empty"):
            load_file(tmp_path / name, name)


def test_binary_without_nul_bytes_is_not_indexed_as_text(tmp_path: Path) -> None:
    import random

    f = tmp_path / "noise.md"
    rng = random.Random(7)
    f.write_bytes(bytes(rng.choice(range(1, 256)) for _ in range(20000)))
    with pytest.raises(LoaderError, match="binary content"):
        load_file(f, "noise.md")
    prose = tmp_path / "prose.txt"
    prose.write_bytes("naïve café, “quoted” — déjà vu\tand a form feed\f\n".encode("cp1252") * 50)
    assert "déjà vu" in load_file(prose, "prose.txt")[0].text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Total revenue $ 52,747 (17,488) 12.5%", True),
        ("حَبيبي habibi حَبيبي", True),
        ("第一章 总则 第一条", True),
        ("/g437/g258", False),  # unmapped Type3 glyphs, as pypdf writes them
        ('"7+%-', False),  # a TrueType subset without a Unicode map
        ("\ufffd" * 12, False),
        ("\ue000\ue001\ue002 a", False),
        ("   \n ", False),
        ("Message from the Director . . . . . . . . . . . . . . . . . . . . . . 1", True),
        ("Overview . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . . 3", True),
        ("Revenue ....................................... 1", True),
    ],
)
def test_readable_tells_text_from_garbage(text: str, expected: bool) -> None:
    from ingest.pdf import readable

    assert readable(text) is expected


def _pdf(*objects: bytes, root: int = 1) -> bytes:
    """A PDF with these objects (numbered from 1) and a correct cross-reference table."""
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, root, xref)
    return out


_PAGE_OBJECTS = (
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 4 0 R >>",
    b"<< /Length 44 >>\nstream\nBT /F1 12 Tf 20 100 Td (Hello loop) Tj ET\nendstream",
    b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
)


def test_a_page_tree_with_a_cycle_is_read_once_per_page(tmp_path: Path) -> None:
    # /Kids of the root node lists the node itself; /Resources are inherited from it.
    f = tmp_path / "loop.pdf"
    f.write_bytes(_pdf(
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Count 1 /Resources << /Font << /F1 5 0 R >> >> >>",
        *_PAGE_OBJECTS,
    ))
    docs = load_file(f, "loop.pdf")
    assert [(d.page, d.text.strip()) for d in docs] == [(1, "Hello loop")]


def test_pages_are_found_when_the_page_tree_is_lost(tmp_path: Path) -> None:
    f = tmp_path / "lost.pdf"
    f.write_bytes(_pdf(
        b"<< /Type /Catalog /Pages 9 0 R >>",  # no object 9
        b"<< /Type /Pages /Count 1 /Resources << /Font << /F1 5 0 R >> >> >>",
        *_PAGE_OBJECTS,
    ))
    docs = load_file(f, "lost.pdf")
    assert [d.text.strip() for d in docs] == ["Hello loop"]
    assert docs[0].page is None  # the order of pages is unknown: no page number is made up


def test_a_contents_page_with_spaced_leader_dots_is_read(tmp_path: Path) -> None:
    # "Overview . . . . . 3": the dots outnumber the letters; they were taken for garbage, the
    # page was dropped (and the whole file went through pypdf, ten times slower than PDFium).
    line = b"(Message from the Director" + b" ." * 60 + b" 1) Tj"
    content = b"BT /F1 10 Tf 20 150 Td " + line + b" 0 -14 Td (Overview" + b" ." * 70 + b" 3) Tj ET"
    f = tmp_path / "contents.pdf"
    f.write_bytes(_pdf(
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 800 200] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        _PAGE_OBJECTS[2],
    ))
    docs = load_file(f, "contents.pdf", ocr=False)
    assert [d.page for d in docs] == [1]
    assert "Message from the Director" in docs[0].text and "Overview" in docs[0].text
