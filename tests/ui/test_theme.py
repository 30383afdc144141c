"""In Chromium: the page follows the browser's dark or light preference (Playwright's
``color_scheme``), and what the app colours itself stays readable in both (citation badges,
highlighted evidence, the explorer's query marker); the status page's settings table shows
every value in full. Saves ``docs/screenshots/dark.png``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.ui.browser import chat_page, chromium, open_chat
from tests.ui.test_browser import (  # noqa: F401  (serve, server: fixtures)
    SCREENSHOTS,
    SHORT_QUESTION,
    _open_page,
    _screenshot,
    serve,
    server,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _rgb(css: str) -> tuple[float, float, float]:
    """``rgb(r, g, b)``/``rgba(...)``/``#rrggbb`` as 0..1 floats."""
    if css.startswith("#"):
        return tuple(int(css[i:i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]
    r, g, b = (float(v) / 255 for v in re.findall(r"[\d.]+", css)[:3])
    return r, g, b


def _luminance(css: str) -> float:
    """WCAG relative luminance: 0 black, 1 white."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(c) for c in _rgb(css))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


_COLOURED_SPANS = """() => [...document.querySelectorAll(
    '[data-testid=stChatMessage] .stMarkdownBadge, '
    + '[data-testid=stChatMessage] .stMarkdownColoredBackground')].map(e => {
        const s = getComputedStyle(e);
        return [e.className, e.textContent, s.color, s.backgroundColor];
    })"""


def _background(page: Any) -> str:
    return str(page.evaluate(
        "getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor"))


def _query_marker_colour(page: Any) -> str:
    """The colour of the explorer's "Your query" star, as Plotly drew it."""
    return str(page.evaluate("""() => {
        const plot = document.querySelector('.js-plotly-plot');
        const trace = plot.data.find(t => t.name === 'Your query');
        return trace.marker.color;
    }"""))


def _check_scheme(browser: Any, url: str, scheme: str) -> None:
    from playwright.sync_api import expect

    dark = scheme == "dark"
    page = open_chat(browser, url, color_scheme=scheme)
    chat_input = page.get_by_test_id("stChatInputTextArea")
    background = _background(page)
    if dark:
        assert _luminance(background) < 0.05, background
    else:
        assert _luminance(background) > 0.9, background

    if dark:
        chat_input.fill(SHORT_QUESTION)
        chat_input.press("Enter")
    else:  # the same answer, reopened from the conversations
        page.get_by_test_id("stSidebar").get_by_role("button", name=SHORT_QUESTION).click()
    assistant = page.get_by_test_id("stChatMessage").nth(1)
    expect(assistant.get_by_text(re.compile(r"Sources \(\d+\)"))).to_be_visible()
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()
    spans = page.evaluate(_COLOURED_SPANS)
    kinds = {cls.split()[0] for cls, *_ in spans}
    assert {"stMarkdownBadge", "stMarkdownColoredBackground"} <= kinds, spans
    for cls, text, colour, fill in spans:  # WCAG AA for normal text
        assert _contrast(colour, fill) >= 4.5, (scheme, cls, text, colour, fill)
    answer = page.get_by_test_id("stChatMessage").nth(1).get_by_test_id(
        "stMarkdownContainer").first
    assert _contrast(answer.evaluate("e => getComputedStyle(e).color"), background) >= 7
    if dark:
        _screenshot(page, "dark", top=page.get_by_test_id("stChatMessage").first)

    _open_page(page, "Explorer")
    search = page.get_by_label("Search the map")
    search.fill(SHORT_QUESTION)
    search.press("Enter")
    expect(page.get_by_text("Nearest passages to")).to_be_visible()
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()
    page.wait_for_function("""() => {
        const plot = document.querySelector('.js-plotly-plot');
        return plot && plot.data && plot.data.some(t => t.name === 'Your query');
    }""")
    marker = _query_marker_colour(page)
    assert _contrast(marker, _background(page)) >= 3, (scheme, marker, _background(page))
    page.context.close()


def test_the_page_follows_the_browsers_colour_scheme_and_stays_readable(
    server: str,  # noqa: F811
) -> None:
    """Dark, then light: the page's background, the answer's badges and highlighted
    evidence (WCAG AA contrast), and the explorer's query marker against the map."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        for scheme in ("dark", "light"):
            _check_scheme(browser, server, scheme)


def test_the_status_pages_settings_show_every_value_in_full(
    server: str, data_dir: Path  # noqa: F811
) -> None:
    """Issue 14, item 6: the settings table cut values and descriptions off at the column's
    width (a data frame draws cells on a canvas, one line each)."""
    from playwright.sync_api import expect

    from rag.config import Settings

    longest = max((f.description or "" for f in Settings.model_fields.values()), key=len)
    with chat_page(server, width=1100, height=900) as page:
        _open_page(page, "Status")
        expect(page.get_by_text("Answering with")).to_be_visible()
        main = page.get_by_test_id("stMain")
        # The longest description, word for word, and the data directory's full path.
        words = re.sub(r"`", "", longest).split()
        cell = main.get_by_role("cell").filter(has_text=" ".join(words[:4])).first
        expect(cell).to_be_visible()
        shown = " ".join(str(cell.inner_text()).split())
        assert shown.endswith(" ".join(words[-4:])), shown
        row = main.get_by_role("row").filter(has_text="RAG_DATA_DIR").first
        expect(row).to_contain_text(f"{data_dir} (set)")
        # No cell is cut: none is wider inside than the room it has.
        cut = page.evaluate("""() => [...document.querySelectorAll(
            '[data-testid=stMain] td, [data-testid=stMain] th')]
            .filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.textContent)""")
        assert cut == []
