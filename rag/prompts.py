"""The system prompt, the numbered context layout and the ``[n]`` citation markers."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.citations import CITATION
from rag.text import Analyzer
from rag.types import Message, Source

REFUSAL = "The knowledge base does not contain the answer to this question."

SYSTEM_PROMPT = (
    "You answer questions using only the numbered context passages given with the question. "
    "After each statement, cite the passage it comes from with its number in square brackets, "
    "like [1] or [2]. Do not use outside knowledge. If the passages do not contain the answer, "
    f'reply exactly: "{REFUSAL}" Answer concisely.'
)

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


def is_refusal(text: str) -> bool:
    return REFUSAL.lower().rstrip(".") in text.lower()


# --- follow-up rewriting -------------------------------------------------------------------------

REWRITE_PROMPT = (
    "Rewrite the user's follow-up question as one standalone question that can be understood "
    "without the conversation: replace pronouns and vague words with the topic they refer to. "
    "Do not answer it. Reply with the rewritten question only."
)

_LABEL = re.compile(
    r"^\s*(?:standalone|rewritten|reformulated|new|search)?\s*(?:question|query)\s*:\s*", re.I
)
_NOT_A_QUESTION = re.compile(r"^(?:i |i'm|sorry|as an ai|sure|here|the answer|answer:)", re.I)


def build_rewrite_messages(question: str, history: Sequence[Message]) -> list[Message]:
    """The short prompt that turns a follow-up into a standalone search query."""
    turns = []
    for m in history[-4:]:
        if m.role in ("user", "assistant"):
            text = " ".join(m.content.split())
            turns.append(f"{m.role.capitalize()}: {text[:300]}")
    user = (
        "Conversation:\n" + "\n".join(turns) + f"\n\nFollow-up question: {question}\n"
        "Standalone question:"
    )
    return [Message("system", REWRITE_PROMPT), Message("user", user)]


def _content_terms(text: str) -> set[str]:
    return Analyzer().content_terms(text)


def clean_rewrite(raw: str, question: str, history: Sequence[Message]) -> str | None:
    """The LLM's rewrite as a search query, or None when it is not usable.

    Usable: one line, not an answer (a sentence ending in a full stop) or a refusal, not much
    longer than the question, keeping the follow-up's own words and adding some from the
    conversation's earlier user turns.
    """
    line = next((ln for ln in raw.strip().splitlines() if ln.strip()), "")
    line = _LABEL.sub("", line).strip().strip("\"'*`").strip()
    if not line or len(line) > 2 * len(question) + 200 or len(line) < 3:
        return None
    if _NOT_A_QUESTION.match(line) or is_refusal(line) or CITATION.search(line):
        return None
    if line.endswith("."):  # a statement: the model answered instead of asking
        return None
    own = _content_terms(question)
    earlier = set().union(*(_content_terms(m.content) for m in history if m.role == "user"))
    got = _content_terms(line)
    if own and not own & got:
        return None  # lost the follow-up (often: the previous question echoed)
    if not (got - own) & earlier:
        return None  # brought nothing from the conversation: the heuristic does better
    return line
