"""The system prompt, the numbered context layout and the ``[n]`` citation markers."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.types import Message, Source

REFUSAL = "The knowledge base does not contain the answer to this question."

SYSTEM_PROMPT = (
    "You answer questions using only the numbered context passages given with the question. "
    "After each statement, cite the passage it comes from with its number in square brackets, "
    "like [1] or [2]. Do not use outside knowledge. If the passages do not contain the answer, "
    f'reply exactly: "{REFUSAL}" Answer concisely.'
)

_CITATION = re.compile(r"\[(\d{1,3})\]")
_CITATION_GROUP = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})+)\]")


def format_context(sources: Sequence[Source]) -> str:
    blocks = []
    for s in sources:
        where = s.chunk.source + (f", page {s.chunk.page}" if s.chunk.page is not None else "")
        heading = f" — {s.chunk.heading}" if s.chunk.heading else ""
        blocks.append(f"[{s.n}] ({where}{heading})\n{s.chunk.text.strip()}")
    return "\n\n".join(blocks)


def build_messages(
    question: str, sources: Sequence[Source], history: Sequence[Message] = ()
) -> list[Message]:
    """System prompt, recent turns, then the context blocks and the question."""
    user = (
        f"Context passages:\n\n{format_context(sources)}\n\n"
        f"Question: {question}\n"
        "Answer from the passages above and cite them with [n]."
    )
    return [Message("system", SYSTEM_PROMPT), *history[-4:], Message("user", user)]


def normalise_citations(text: str) -> str:
    """``[1, 2]`` becomes ``[1][2]`` so every marker maps to one source."""
    return _CITATION_GROUP.sub(
        lambda m: "".join(f"[{n.strip()}]" for n in m.group(1).split(",")), text
    )


def cited_numbers(text: str) -> set[int]:
    return {int(n) for n in _CITATION.findall(normalise_citations(text))}


def check_citations(text: str, valid: set[int]) -> tuple[str, set[int]]:
    """Remove ``[n]`` markers that point at no given source; return the text and the removed."""
    text = normalise_citations(text)
    invalid = {n for n in cited_numbers(text) if n not in valid}
    if invalid:
        text = _CITATION.sub(lambda m: "" if int(m.group(1)) in invalid else m.group(0), text)
    return text, invalid


def is_refusal(text: str) -> bool:
    return REFUSAL.lower().rstrip(".") in text.lower()
