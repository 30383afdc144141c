"""Tables in a page's text, and the column headers their rows are read with.

A financial statement extracted from a PDF is one line per row: a label and its figures
(``Total net sales 81,797 82,959 293,787 304,182``). Its column headers (the periods) and its
title stand above the first row, so a chunk that starts further down holds figures without
saying which period or which statement they belong to. ``tables`` finds each run of such rows
and the lines above it that head it; the chunker gives a chunk that starts inside a run the
run's header with the document's (``Chunk.context``), for embedding and BM25 only: the text
shown and quoted is the page's own. It does so only with ``Chunker(table_headers=True)``: on
docugami's 10-Q questions the headers in the embedding put the gold filing first more often but
in the top 5 less often (docs/quality.md), so ingest leaves them off.

The structure found is the plain text's: rows are lines that end in two or more figures; the
header is the short lines right above the first row (column headings, dates, the statement's
title), up to ``MAX_HEADER_WORDS`` words, nearest first. Cells are not recovered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_HEADER_WORDS", "Table", "tables"]

MAX_HEADER_WORDS = 40

# A figure cell: $ 60,584 | (265) | 1.27 | 44.5 % | — ; a row ends in two or more of them.
_CELL = r"(?:\$\s?)?\(?-?\d[\d,]*(?:\.\d+)?\)?\s?%?|—|–|-"
_ROW = re.compile(rf"(?:^|\s)(?:{_CELL})(?:\s+(?:{_CELL})){{1,}}\s*$")
# A line of column headings: years or dates alone ("2022 2023 2022 2023", "June 30, 2023").
_MONTH = (r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?")
_PERIODS = re.compile(rf"^(?:(?:{_MONTH}\s+\d{{1,2}},?\s+)?(?:19|20)\d\d\s*)+$", re.I)
_PROSE_WORDS = 14


@dataclass(frozen=True)
class Table:
    """Rows from ``start`` (the first row's offset in the text) to ``end``, headed by
    ``header`` (the lines above the first row, one line)."""

    start: int
    end: int
    header: str


def _is_row(line: str) -> bool:
    return (bool(_ROW.search(line)) and not line.rstrip().endswith(".")
            and not _PERIODS.match(line.strip()))


def _is_prose(line: str) -> bool:
    words = line.split()
    end = line.rstrip()
    return (len(words) >= _PROSE_WORDS and end.endswith((".", ";"))) or (
        len(words) > 4 and end.endswith((".", ":")))  # "The following tables show ...:"


def _header(lines: list[str]) -> str:
    """The lines above a table's first row that head it, nearest last, one line."""
    kept: list[str] = []
    words = 0
    for line in reversed(lines[-12:]):
        text = " ".join(line.split())
        if not text:
            continue
        if _is_row(text) or _is_prose(text):
            break
        if text.endswith(":") or (text.startswith("(") and len(text.split()) > 6):
            continue  # a row group's label ("Net sales:"), a note ("(In millions, except ...)")
        if words + len(text.split()) > MAX_HEADER_WORDS:
            break
        kept.append(text)
        words += len(text.split())
    return " ".join(reversed(kept))


def tables(text: str) -> list[Table]:
    """The runs of figure rows in ``text`` that have a header above them."""
    found: list[Table] = []
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    n = 0
    while n < len(lines):
        if not _is_row(lines[n].strip()):
            n += 1
            continue
        first = n
        last = n
        n += 1
        # the run goes on through rows and short label lines ("Operating expenses:")
        while n < len(lines):
            line = lines[n].strip()
            if _is_row(line):
                last = n
            elif not line or _is_prose(line) or len(line.split()) > 12:
                break
            n += 1
        if last > first:  # one figure line is a sentence's numbers, not a table
            header = _header([line.rstrip("\n") for line in lines[max(0, first - 12):first]])
            if header:
                found.append(Table(offsets[first], offsets[last + 1], header))
    return found
