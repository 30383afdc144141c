"""The browser app in a real browser: `rag ui` served on a free port, Debian's Chromium driven
by Playwright. Asks a question (no Ollama: the answer is quoted from the documents), shows the
cited PDF page with its evidence boxed, visits every page; then, with the Ollama protocol server
(tests/fake_ollama.py) scripted to invent a claim, watches a written answer stream in with that
claim marked. Saves screenshots into docs/screenshots/ (README shows them).

Needs /usr/bin/chromium (`apt-get install chromium`; `.ci/run` installs it). Playwright's own
browser download is not used.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.evidence import EXTRACT_LABEL
from tests.conftest import KNOWLEDGE_BASE, ROOT, closed_port, rag_env, ui_serving
from tests.fake_ollama import FakeOllama
from tests.ui.browser import CHROMIUM, chat_page
from tests.ui.scripted import INVENTED, QUESTION, SUPPORTED, grounded_then_invented

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = ROOT / "docs" / "screenshots"
RAG = ROOT / ".venv" / "bin" / "rag"
SHORT_QUESTION = "What does ef_search control?"
CURSOR = "▌"  # ui/pages/chat.py shows it after the text while the answer streams


def _chunks(data_dir: Path) -> int:
    """Chunks in the index, by the manifest (the server alone opens Chroma)."""
    from ingest.manifest import Manifest

    manifest = Manifest(data_dir / "manifest.sqlite3")
    try:
        return sum(len(r.chunk_ids) for r in manifest.records())
    finally:
        manifest.close()


Serve = Callable[..., str]


@pytest.fixture
def serve(data_dir: Path, tmp_path: Path) -> Iterator[Serve]:
    """``serve(**env)``: `rag ui` on a free port over a copy of the ingested knowledge base,
    with ``env`` added to its environment; its URL."""
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM}: install Debian's Chromium (apt-get install chromium) to run "
                    "the browser tests; .ci/run does")
    pytest.importorskip("playwright.sync_api", reason="playwright is a dev extra: "
                        "pip install -e '.[dev]'")
    # The project's Streamlit config (theme as the browser prefers, minimal toolbar), without
    # the checkout's .env.
    shutil.copytree(ROOT / ".streamlit", tmp_path / ".streamlit")
    started: list[tuple[subprocess.Popen[bytes], Any]] = []

    def _serve(**extra: str) -> str:
        port = closed_port()
        url = f"http://127.0.0.1:{port}"
        env = rag_env(data_dir, RAG_UPLOAD_MAX_MB="50", **extra)
        log_path = tmp_path / f"rag-ui-{port}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            [str(RAG), "ui", "--port", str(port), "--address", "127.0.0.1"], cwd=tmp_path,
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        started.append((process, log))
        deadline = time.monotonic() + 180
        while not ui_serving(url):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"`rag ui` did not serve {url}:\n"
                            + log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.5)
        return url

    try:
        yield _serve
    finally:
        for process, log in started:
            os.killpg(process.pid, signal.SIGTERM)  # rag ui and the streamlit it started
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            log.close()


@pytest.fixture
def server(serve: Serve) -> str:
    """`rag ui` with no Ollama answering (answers quoted from the documents); its URL."""
    return serve()


def _main_text(page: Any) -> str:
    return str(page.locator("[data-testid='stMain']").inner_text())


def _open_page(page: Any, name: str) -> None:
    page.locator("[data-testid='stSidebarNav']").get_by_role("link", name=name).click()
    page.wait_for_url(f"**/{name.lower()}")


def _screenshot(page: Any, name: str, *, top: Any = None, block: str = "start") -> None:
    """Once the script run is over (no "Running…" widget) and tables have drawn; ``top``: an
    element scrolled into view first (to the top, or ``block="center"``)."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()
    page.wait_for_timeout(500)  # data frames draw on a canvas after they appear
    if top is not None:
        top.evaluate(f"e => e.scrollIntoView({{block: '{block}'}})")
        page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def _highlight_pixels(png: bytes) -> int:
    """Pixels of the evidence boxes' outline colour in a page image."""
    import io

    from PIL import Image

    from application.page_image import HIGHLIGHT_RGB

    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(1 for p in image.getdata() if p == HIGHLIGHT_RGB)


def test_ask_in_the_browser_and_screenshot_every_page(server: str, data_dir: Path) -> None:
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with chat_page(server) as page:
        chat_input = page.get_by_test_id("stChatInputTextArea")
        # No Ollama, only the bundled model: answers are quoted from the documents.
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_text("Quoted from the documents (extract)").first).to_be_visible()

        chat_input.fill(SHORT_QUESTION)
        chat_input.press("Enter")
        assistant = page.get_by_test_id("stChatMessage").nth(1)
        expect(assistant.get_by_text(re.compile(r"Sources \(\d+\)"))).to_be_visible()
        answer = assistant.get_by_test_id("stMarkdownContainer").first
        expect(answer).to_contain_text(EXTRACT_LABEL)
        expect(answer).to_contain_text("ef_search")
        expect(assistant.get_by_text("Mode: extract").first).to_be_visible()
        expect(assistant.get_by_text("vector-search-handbook.pdf").first).to_be_visible()
        # The conversation is listed once the page has rerun from the store; only then is
        # the download button the one that stays (a click on the first run's button finds
        # its file gone).
        expect(sidebar.get_by_role("button", name=SHORT_QUESTION)).to_be_visible()
        # A source's file comes to the browser as it is on disk.
        expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()  # the rerun is over
        with page.expect_download(timeout=60_000) as download:
            page.get_by_test_id("stChatMessage").nth(1).get_by_role(
                "button", name="Download the file").first.click()
        name = download.value.suggested_filename
        assert Path(download.value.path()).read_bytes() == (KNOWLEDGE_BASE / name).read_bytes()
        # docs/screenshots/chat.png comes from test_chat_browser.py (a written answer).

        # The cited PDF page, its evidence boxed where it is on the page.
        assistant = page.get_by_test_id("stChatMessage").nth(1)
        assistant.get_by_text("Show the page").first.click()
        image = assistant.get_by_test_id("stImage").first
        expect(image).to_be_visible()
        expect(image).to_contain_text("boxed: the evidence")
        img = image.locator("img").first
        expect(img).to_have_js_property("complete", True)
        png = page.request.get(str(img.evaluate("e => e.src"))).body()
        assert _highlight_pixels(png) > 500
        _screenshot(page, "evidence", top=img, block="center")

        _open_page(page, "Library")
        expect(page.get_by_test_id("stDataFrame")).to_be_visible()
        # One upload limit: RAG_UPLOAD_MAX_MB is Streamlit's too (its own default is 200 MB)
        expect(page.get_by_test_id("stFileUploader")).to_contain_text(
            re.compile(r"(?<!\d)50(\.0)?\s?MB per file"))
        # docs/screenshots/library.png comes from test_library_collections.py.

        _open_page(page, "Explorer")
        expect(page.locator(".js-plotly-plot")).to_be_visible()
        search = page.get_by_label("Search the map")
        search.fill("What does ef_search control?")
        search.press("Enter")
        expect(page.get_by_text("Nearest passages to")).to_be_visible()
        expect(page.locator(".js-plotly-plot").get_by_text("Your query").first).to_be_attached()
        _screenshot(page, "explorer")

        _open_page(page, "Status")
        expect(page.get_by_text("Answering with")).to_be_visible()
        expect(page.get_by_test_id("stMetric")).to_have_count(4)
        expect(page.get_by_test_id("stTable")).to_have_count(1)  # settings, in full
        expect(page.get_by_test_id("stDataFrame")).to_have_count(1)  # versions
        text = _main_text(page)
        assert "Answering with extract" in text and "ollama serve" in text
        assert "RAG_GGUF_PATH" in text  # how to get written answers
        assert "embedded" in text and f"{_chunks(data_dir)} chunks" in text
        _screenshot(page, "status")


def test_a_written_answer_streams_and_its_unsupported_sentence_is_marked(serve: Serve) -> None:
    """Ollama (the protocol server, scripted) writes one sentence its passage supports and
    one it does not: the first keeps its citation badge, the second is marked."""
    from playwright.sync_api import expect

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with FakeOllama(reply=grounded_then_invented, delay=0.2) as ollama, \
            chat_page(serve(RAG_OLLAMA_HOST=ollama.host)) as page:
        chat_input = page.get_by_test_id("stChatInputTextArea")
        expect(page.get_by_test_id("stSidebar").get_by_text("ollama:llama3.2").first
               ).to_be_visible()
        chat_input.fill(QUESTION)
        chat_input.press("Enter")
        # The answer streams (a word every 0.2 s, so a loaded machine still sees it): the
        # cursor shows while words arrive, then the checked answer replaces it.
        assistant = page.get_by_test_id("stChatMessage").nth(1)
        expect(assistant).to_contain_text(CURSOR)  # under the Stop button, while it streams
        expect(assistant.get_by_text(re.compile(r"Sources \(\d+\)"))).to_be_visible()
        expect(assistant).not_to_contain_text(CURSOR)
        answer = assistant.get_by_test_id("stMarkdownContainer").first
        expect(answer).to_contain_text(SUPPORTED)
        expect(answer).to_contain_text(f"⚠ {INVENTED}")
        expect(answer).to_contain_text("not supported by the passage it cites")
        expect(assistant.get_by_text(
            "⚠ marks a sentence not supported by the passage it cites")).to_be_visible()
        expect(assistant.get_by_text("Mode: generate").first).to_be_visible()
        # One badge: the supported sentence's; the invented one's citation is not a badge.
        text = answer.inner_text()
        cited = text.split(INVENTED)[0]
        assert re.search(r"query\s*\d+\s*\.", cited), text  # the badge of [n]
        assert not re.search(r"penguins\s*\d", text), text
        expect(assistant.get_by_text("Show the page").first).to_be_visible()
        _screenshot(page, "unsupported", top=page.get_by_test_id("stChatMessage").first)
