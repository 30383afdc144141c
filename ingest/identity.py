"""A document's identity: a short header that every chunk of it is embedded and indexed with.

A passage rarely says which document it is from: a 10-Q's note on gross margin names neither
the company nor the quarter, and twenty filings say the same things. So each chunk is embedded
and indexed for BM25 with a header naming its document, while the text shown and quoted stays
the chunk's own (the header lives in the chunk's metadata, ``Chunk.context``).

The header is the file name (its stem, separators made spaces: ``2023 Q3 AAPL``) and what the
document says it is:

- a filing's cover page: the registrant, the form and the period (``Apple Inc. | Form 10-Q |
  for the quarterly period ended July 1, 2023``);
- else a Markdown or HTML title (the first heading);
- else the first lines of a PDF's first page (a report's title), boilerplate such as
  ``Page 1 of 4`` or ``Table of Contents`` left out, or a text file's first line when it
  reads as a title.

It is at most ``MAX_WORDS`` words: a header takes room from the chunk it is embedded with.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

from rag.types import Document

__all__ = ["MAX_WORDS", "document_header"]

MAX_WORDS = 30
_TITLE_WORDS = 16  # of a title taken from the first lines

_FORM = re.compile(r"\bFORM\s+(10-[QK](?:/A)?|8-K|20-F|40-F|6-K|S-1|DEF\s+14A)\b", re.I)
_PERIOD = re.compile(
    r"\bfor\s+the\s+((?:quarterly|fiscal|annual)\s+)?(period|year|quarter)\s+ended\s+"
    r"([A-Z][a-z]+\.?\s+\d{1,2},?\s+\d{4})", re.I)
_REGISTRANT = re.compile(r"exact\s+name\s+of\s+(the\s+)?registrant", re.I)
_COMPANY = re.compile(
    r"^[A-Z0-9][\w.,&'’ -]{1,80}?\b(INC|INCORPORATED|CORP|CORPORATION|COMPANY|CO|LTD|LIMITED|"
    r"PLC|LLC|L\.P|N\.V|S\.A|AG|SE|HOLDINGS|GROUP)\b\.?$", re.I)
# Lines that say nothing about which document this is.
_NOISE = re.compile(
    r"^(page\s+\d+(\s+of\s+\d+)?|\d+|table\s+of\s+contents|contents|confidential|draft|"
    r"[-_=~.•·*\s]+|\(mark\s+one\))$", re.I)


def _name(source: str) -> str:
    stem = PurePosixPath(source).stem
    return " ".join(re.sub(r"[_]+", " ", stem).split())


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def _filing(lines: list[str]) -> list[str]:
    """Registrant, form and period from a securities filing's cover page; [] if it is none."""
    head = "\n".join(lines[:80])
    form = _FORM.search(head)
    if form is None:
        return []
    company = ""
    for n, line in enumerate(lines[:80]):
        if _REGISTRANT.search(line) and n > 0:
            company = lines[n - 1]
            break
    if not company:
        company = next((line for line in lines[:40] if _COMPANY.match(line)
                        and "securities" not in line.lower()), "")
    parts = [company.rstrip(" ,"), f"Form {form.group(1).upper()}"]
    period = _PERIOD.search(head)
    if period is not None:
        kind = (period.group(1) or "").lower()
        parts.append(f"for the {kind}{period.group(2).lower()} ended {period.group(3)}")
    return [p for p in parts if p]


def _title(lines: list[str], *, paged: bool) -> str:
    """A page's first lines that are not boilerplate, up to ``_TITLE_WORDS`` words (a title
    set on a PDF's first page often runs over several lines); in a text file, its first line
    when it reads as a title (short, not a sentence)."""
    body = [line for line in lines[:12] if not _NOISE.match(line)]
    if not paged:
        first = body[0] if body else ""
        return first if len(first.split()) <= 12 and not first.endswith((".", ":", ";")) else ""
    words: list[str] = []
    for line in body:
        words.extend(line.split())
        if len(words) >= _TITLE_WORDS:
            break
    return " ".join(words[:_TITLE_WORDS])


def document_header(source: str, docs: Sequence[Document]) -> str:
    """The header naming the document ``docs`` were read from (see the module docstring)."""
    parts = [_name(source)]
    first = next((d for d in docs if d.text.strip()), None)
    if first is not None:
        lines = _lines(first.text)
        found = _filing(lines)
        if not found:
            heading = next((d.heading for d in docs if d.heading), "")
            title = (heading.split(" > ")[0].strip() if heading
                     else _title(lines, paged=first.page is not None))
            found = [title] if title else []
        parts.extend(p for p in found if p.lower() != parts[0].lower())
    words = " | ".join(p for p in parts if p).split()
    return " ".join(words[:MAX_WORDS])
