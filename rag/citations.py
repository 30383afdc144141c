"""The ``[n]`` citation markers of an answer: found, normalised, checked against the sources."""

from __future__ import annotations

import re

CITATION = re.compile(r"\[(\d{1,3})\]")
_CITATION_GROUP = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})+)\]")


def normalise_citations(text: str) -> str:
    """``[1, 2]`` becomes ``[1][2]`` so every marker maps to one source."""
    return _CITATION_GROUP.sub(
        lambda m: "".join(f"[{n.strip()}]" for n in m.group(1).split(",")), text
    )


def cited_numbers(text: str) -> set[int]:
    return {int(n) for n in CITATION.findall(normalise_citations(text))}


def check_citations(text: str, valid: set[int]) -> tuple[str, set[int]]:
    """Remove ``[n]`` markers that point at no given source; return the text and the removed."""
    text = normalise_citations(text)
    invalid = {n for n in cited_numbers(text) if n not in valid}
    if invalid:
        text = CITATION.sub(lambda m: "" if int(m.group(1)) in invalid else m.group(0), text)
    return text, invalid
