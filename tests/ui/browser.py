"""Debian's Chromium driven by Playwright for the browser tests: launched the one way they all
launch it, and a page opened on the served app's chat, waited for until its input shows.

The `rag ui` server itself (and the skip when Chromium or Playwright is missing) is the ``serve``
fixture in test_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WAIT_MS = 600_000  # generous: the embedded model on a loaded 2-core machine is slow


@contextmanager
def chromium() -> Iterator[Any]:
    """Playwright's Chromium browser, /usr/bin/chromium (not Playwright's download); closed
    on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_chat(browser: Any, url: str, *, width: int = 1360, height: int = 1000,
              timeout: int = WAIT_MS, expect_timeout: int | None = None,
              clipboard: bool = False, **context: Any) -> Any:
    """A page in a new browser context on ``url`` (the chat), once the chat's input shows.

    ``timeout``: the page's default timeout (ms); ``expect_timeout``: Playwright's
    ``expect`` timeout (set for the whole process, as ``expect.set_options`` does), by
    default the same; ``clipboard``: the page may read and write the clipboard;
    ``context``: more ``new_context`` options (``color_scheme="dark"``).
    """
    from playwright.sync_api import expect

    expect.set_options(timeout=timeout if expect_timeout is None else expect_timeout)
    page_context = browser.new_context(viewport={"width": width, "height": height}, **context)
    if clipboard:
        page_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    page = page_context.new_page()
    page.set_default_timeout(timeout)
    page.goto(url)
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_visible()
    return page


@contextmanager
def chat_page(url: str, **options: Any) -> Iterator[Any]:
    """``open_chat`` in a Chromium of its own, closed on the way out."""
    with chromium() as browser:
        yield open_chat(browser, url, **options)
