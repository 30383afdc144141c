"""Every file of ../shared/data/pdf_robustness/ gets exactly one outcome, the one its label in
labels.tsv calls for, and the run finishes: encrypted, scanned, malformed and fuzzed PDFs.

The mapping from label to outcome (``expected`` below):

- valid_varied: indexed; "no text layer" where pdftotext found no character either.
- scanned_with_ocr_layer: indexed.
- scanned_no_text: failed "no text layer (scanned?)".
- encrypted: indexed when it opens without a password (qpdf_requires_password is not "yes")
  or when its password is given; otherwise failed with a reason starting "encrypted".
- malformed_or_odd: indexed where pdftotext reads text from it; the three files whose text
  is garbage (fonts without a Unicode mapping) fail "no readable text"; every other file is
  indexed or fails with a reason of a known kind (malformed PDF, no text layer, no readable
  text, encrypted, timed out, exceeded the memory bound) -- never a crash or a missing outcome.

``EXCEPTIONS`` lists the files where the measured label columns do not tell the whole story,
each with the reason.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from rag.retriever import SearchOptions
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.slow

FOLDER = SHARED_DATA / "pdf_robustness"
INDEXED = "indexed"
NO_TEXT = "no text layer (scanned?)"
GARBAGE = "no readable text"
ENCRYPTED = "encrypted"
KNOWN_FAILURES = ("malformed PDF", NO_TEXT, GARBAGE, ENCRYPTED, "timed out",
                  "exceeded the memory bound")

# file -> (outcome without passwords, outcome with the passwords of labels.tsv, why)
EXCEPTIONS: dict[str, tuple[str, str, str]] = {
    "scanned_no_text/ocrmypdf__multipage.pdf": (
        INDEXED, INDEXED, "page 4 carries a text layer; pdftotext's count covers pages 1-3"),
    "valid_varied/samplefiles__imagemagick-images.pdf": (
        INDEXED, INDEXED, "the word 'Background' is drawn outside the 3.84 pt page box: in the "
        "content stream, cropped by pdftotext"),
    "valid_varied/samplefiles__unreadablemetadata.pdf": (
        INDEXED, INDEXED, "its /Pages object is lost (damaged xref); pages found by scanning "
        "objects carry text that poppler does not reach"),
    "encrypted/pdfjs__issue15893_reduced.pdf": (
        ENCRYPTED, INDEXED, "qpdf's recovery of the damaged file drops /Encrypt; its text "
        "decrypts only with the password 'test'"),
    "encrypted/pdfjs__auth-event-ef-open.pdf": (
        INDEXED, INDEXED, "/Identity crypt filters: only attachments are encrypted"),
    "encrypted/pdfjs__encrypted-attachment.pdf": (
        INDEXED, INDEXED, "/Identity crypt filters: only attachments are encrypted"),
    "encrypted/pdfjs__bug1782186.pdf": (
        ENCRYPTED, NO_TEXT, "once decrypted: vector drawing only, no text"),
    "encrypted/pdfjs__issue3371.pdf": (
        ENCRYPTED, NO_TEXT, "once decrypted: JBIG2 and JPEG 2000 scans, no text"),
    "malformed_or_odd/ocrmypdf__type3_font_nomapping.pdf": (
        GARBAGE, GARBAGE, "Type3 font without ToUnicode: glyph names, not text"),
    "malformed_or_odd/ocrmypdf__truetype_font_nomapping.pdf": (
        GARBAGE, GARBAGE, "TrueType subset without a Unicode map: '\"7+%-'"),
    "malformed_or_odd/pdfjs__issue9418.pdf": (
        INDEXED, INDEXED, "a drawing whose labels (Scale, Project, Date, Sheet) PDFium reads, as "
        "pdf.js shows them; pdftotext finds no text and pypdf only U+FFFD"),
    "malformed_or_odd/pdfjs__bug1250079.pdf": (
        "malformed PDF", "malformed PDF", "truncated before its EOF marker: pypdf cannot parse it"),
    "malformed_or_odd/pdfjs__poppler-90-0-fuzzed.pdf": (
        INDEXED, INDEXED, "PDFium reads pages 3, 10 and 14 past the fuzzed ASCIIHex stream "
        "that stops pypdf (pdftotext reads text too)"),
}


def _labels() -> dict[str, dict[str, str]]:
    with (FOLDER / "labels.tsv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    header = [h.split("(", 1)[0] for h in rows[0]]
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows[1:]}


def _password(label: dict[str, str]) -> str | None:
    """The user password of labels.tsv, else the owner password; None when unknown."""
    match = re.match(r"(?:user|owner)=(\S+)", label["passwords"])
    return None if match is None or match.group(1) == '""' else match.group(1)


def expected(source: str, label: dict[str, str], *, with_passwords: bool) -> str | tuple[str, ...]:
    """The outcome a file must get: "indexed", a reason's prefix, or a tuple of allowed ones."""
    if source in EXCEPTIONS:
        return EXCEPTIONS[source][1 if with_passwords else 0]
    category = label["category"]
    has_text = label["nonspace_text_chars_first3pages"] not in ("", "0")
    if category == "valid_varied":
        return INDEXED if has_text else NO_TEXT
    if category == "scanned_with_ocr_layer":
        return INDEXED
    if category == "scanned_no_text":
        return NO_TEXT
    if category == "encrypted":
        needs_password = label["qpdf_requires_password"] == "yes"
        if not needs_password or (with_passwords and _password(label) is not None):
            return INDEXED
        return ENCRYPTED
    assert category == "malformed_or_odd", category
    return INDEXED if has_text else (INDEXED, *KNOWN_FAILURES)


def _outcomes(report) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """source -> every outcome the report gives it ("indexed" or the failure reason)."""
    out: dict[str, list[str]] = {}
    for items in (report.indexed, report.updated, report.unchanged):
        for source in items:
            out.setdefault(source, []).append(INDEXED)
    for source in report.skipped:
        out.setdefault(source, []).append("skipped")
    for source, reason in report.failed.items():
        out.setdefault(source, []).append(reason)
    for source in report.removed:
        out.setdefault(source, []).append("removed")
    return out


def _check(report, labels: dict[str, dict[str, str]], *, with_passwords: bool) -> list[str]:  # type: ignore[no-untyped-def]
    files = sorted(p.relative_to(FOLDER).as_posix() for p in FOLDER.rglob("*") if p.is_file())
    outcomes = _outcomes(report)
    assert report.files == len(files)
    assert sorted(outcomes) == files, "every file gets an outcome, no other source"
    several = {s: o for s, o in outcomes.items() if len(o) != 1}
    assert not several, f"files with more than one outcome: {several}"
    wrong = []
    for source, label in labels.items():
        got = outcomes[source][0]
        want = expected(source, label, with_passwords=with_passwords)
        allowed = want if isinstance(want, tuple) else (want,)
        if not any(got == a if a == INDEXED else got.startswith(a) for a in allowed):
            wrong.append(f"{source}: got {got!r}, want {want!r}")
    # The files without a label: the folder's documentation is text, its tables are skipped.
    assert outcomes["MANIFEST.txt"] == [INDEXED]
    assert outcomes["scanned_no_text/ocrmypdf__linn.txt"] == [INDEXED]
    for name in ("labels.tsv", "full_suites_qpdf_check.tsv", "pdfjs_test_manifest.json",
                 "pypdf_tests_example_files.yaml"):
        assert outcomes[name] == ["skipped"]
    return wrong


@pytest.fixture(scope="module")
def labels() -> dict[str, dict[str, str]]:
    if not (FOLDER / "labels.tsv").is_file():
        pytest.skip(f"{FOLDER} is missing: the shared robustness data set is not on this machine")
    return _labels()


def test_every_file_gets_the_outcome_its_label_calls_for(  # type: ignore[no-untyped-def]
        make_app, labels: dict[str, dict[str, str]], tmp_path: Path) -> None:
    # A stalling file costs CI 20 s, not 2 minutes. OCR off: this is about each file's outcome
    # as a PDF; what OCR reads from the scans is tested in test_ocr.py (and bench/ocr_cer.py).
    app = make_app(ingest_file_timeout=20, ocr="off")
    try:
        plain = app.pipeline.sync(FOLDER)
        wrong = _check(plain, labels, with_passwords=False)
        assert not wrong, "without passwords:\n" + "\n".join(wrong)
        for source, reason in plain.failed.items():
            if reason.startswith("encrypted: give the password"):
                assert "--password FILE=PASSWORD" in reason and ".password" in reason, source

        passwords = {s: pw for s, label in labels.items() if (pw := _password(label)) is not None}
        given = app.pipeline.sync(FOLDER, passwords=passwords)
        wrong = _check(given, labels, with_passwords=True)
        assert not wrong, "with passwords:\n" + "\n".join(wrong)
        # Only the files a password changes are read again; the rest is unchanged.
        assert given.embedded < plain.embedded and not given.indexed
        assert "encrypted/pypdf__r6-both-passwords.pdf" in given.updated
        assert "valid_varied/samplefiles__multicolumn.pdf" in given.unchanged
    finally:
        app.pipeline.close()

    root = str(FOLDER.resolve())
    rows = {r.source: r for r in app.manifest.records(root)}
    multipage = rows["scanned_no_text/ocrmypdf__multipage.pdf"]
    pages = {meta.get("page") for _, _, meta, _ in app.store.records(multipage.chunk_ids)}
    assert multipage.chunk_ids and pages == {4}  # the one page with a text layer, cited by its number
    hits = app.retriever.search("Hello pdf.js world", SearchOptions(k=3))
    assert hits[0].source == "encrypted/pdfjs__saslprep-r6.pdf"  # SASLprep password opened it
