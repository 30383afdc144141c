"""The browser app in a real browser: `rag ui` served on a free port, Debian's Chromium driven
by Playwright. Asks a question, watches the answer stream in and its sources appear, visits
every page, and saves a screenshot of each into docs/screenshots/ (README shows them).

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
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KNOWLEDGE_BASE, ROOT, closed_port, rag_env

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "screenshots"
RAG = ROOT / ".venv" / "bin" / "rag"
QUESTION = "What does the ef_search parameter of HNSW control?"
CURSOR = "▌"  # ui/pages/chat.py shows it after the text while the answer streams
WAIT_MS = 600_000  # generous: the embedded model on a loaded 2-core machine is slow
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _serving(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _chunks(data_dir: Path) -> int:
    """Chunks in the index, by the manifest (the server alone opens Chroma)."""
    from ingest.manifest import Manifest

    manifest = Manifest(data_dir / "manifest.sqlite3")
    try:
        return sum(len(r.chunk_ids) for r in manifest.records())
    finally:
        manifest.close()


@pytest.fixture
def server(data_dir: Path, tmp_path: Path) -> Iterator[str]:
    """`rag ui` on a free port over a copy of the ingested knowledge base; its URL."""
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM}: install Debian's Chromium (apt-get install chromium) to run "
                    "the browser tests; .ci/run does")
    pytest.importorskip("playwright.sync_api", reason="playwright is a dev extra: "
                        "pip install -e '.[dev]'")
    # The project's Streamlit config (light theme, minimal toolbar), without the checkout's .env.
    shutil.copytree(ROOT / ".streamlit", tmp_path / ".streamlit")
    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    # Short answers: the test checks that one streams and cites, not how long it is.
    env = rag_env(data_dir, RAG_MAX_ANSWER_TOKENS="96", RAG_UPLOAD_MAX_MB="50")
    log = (tmp_path / "rag-ui.log").open("wb")
    process = subprocess.Popen(
        [str(RAG), "ui", "--port", str(port), "--address", "127.0.0.1"], cwd=tmp_path, env=env,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not _serving(url):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"`rag ui` did not serve {url}:\n"
                            + (tmp_path / "rag-ui.log").read_text(errors="replace")[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # rag ui and the streamlit it started
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _main_text(page: Any) -> str:
    return str(page.locator("[data-testid='stMain']").inner_text())


def _open_page(page: Any, name: str) -> None:
    page.locator("[data-testid='stSidebarNav']").get_by_role("link", name=name).click()
    page.wait_for_url(f"**/{name.lower()}")


def _screenshot(page: Any, name: str, *, top: Any = None) -> None:
    """Once the script run is over (no "Running…" widget) and tables have drawn; ``top``: an
    element scrolled to the top first."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()
    page.wait_for_timeout(500)  # data frames draw on a canvas after they appear
    if top is not None:
        top.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_ask_in_the_browser_and_screenshot_every_page(server: str, data_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            page.goto(server)
            chat_input = page.get_by_test_id("stChatInputTextArea")
            expect(chat_input).to_be_visible()
            expect(page.get_by_text("llamacpp:", exact=False).first).to_be_visible()

            chat_input.fill(QUESTION)
            chat_input.press("Enter")
            # The answer streams: the cursor shows while tokens arrive, then the text grows
            # until the finished answer replaces it, with its numbered sources below.
            assistant = page.get_by_test_id("stChatMessage").nth(1)
            answer = assistant.get_by_test_id("stMarkdownContainer").first
            expect(answer).to_contain_text(CURSOR)
            partial = answer.inner_text().replace(CURSOR, "").strip()
            # "Passages searched" when the small model said the documents do not answer.
            sources = assistant.get_by_text(re.compile(r"(Sources|Passages searched) \(\d+\)"))
            expect(sources).to_be_visible()
            expect(assistant).not_to_contain_text(CURSOR)
            assert len(answer.inner_text().strip()) > len(partial) > 0  # it grew, then stopped
            if "Passages searched" in sources.inner_text():
                sources.click()  # folded: unfold to see them
            expect(assistant.get_by_text("vector-search-handbook.pdf").first).to_be_visible()
            # A source's file comes to the browser as it is on disk.
            expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()  # the rerun is over
            with page.expect_download() as download:
                page.get_by_test_id("stChatMessage").nth(1).get_by_role(
                    "button", name="Download the file").first.click()
            name = download.value.suggested_filename
            assert Path(download.value.path()).read_bytes() == (KNOWLEDGE_BASE / name).read_bytes()
            expect(page.get_by_test_id("stSidebar").get_by_role("button", name=QUESTION)).to_be_visible()
            # The question and the answer at the top of the screenshot, sources below.
            _screenshot(page, "chat", top=page.get_by_test_id("stChatMessage").first)

            _open_page(page, "Library")
            expect(page.get_by_test_id("stDataFrame")).to_be_visible()
            # One upload limit: RAG_UPLOAD_MAX_MB is Streamlit's too (its own default is 200 MB)
            expect(page.get_by_test_id("stFileUploader")).to_contain_text(
                re.compile(r"(?<!\d)50(\.0)?\s?MB per file"))
            _screenshot(page, "library")

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
            expect(page.get_by_test_id("stDataFrame")).to_have_count(2)  # settings, versions
            text = _main_text(page)
            assert "llamacpp:SmolLM2" in text and "ollama serve" in text
            assert "embedded" in text and f"{_chunks(data_dir)} chunks" in text
            _screenshot(page, "status")
        finally:
            browser.close()
