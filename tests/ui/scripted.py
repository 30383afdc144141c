"""Scripted replies for the Ollama protocol server (tests/fake_ollama.py) in the UI tests."""

from __future__ import annotations

import re
from typing import Any

QUESTION = "What does the ef_search parameter of HNSW control?"
SUPPORTED = "ef_search is the size of the dynamic candidate list kept during a query"
INVENTED = "It was designed on the Moon in 1850 by a committee of penguins."

# "[n] (file, page 2 — heading)" then the passage, up to the next block: the one on ef_search
_EF_SEARCH_BLOCK = re.compile(r"^\[(\d+)\] \(.*\n(?:.*\n)*?.*ef_search \(called ef", re.M)


def grounded_then_invented(messages: list[dict[str, Any]]) -> str:
    """Two sentences citing the prompt's ef_search passage: what it says, then a claim it does
    not make. "I don't know." when the prompt has no such passage."""
    found = _EF_SEARCH_BLOCK.search(str(messages[-1].get("content", "")))
    if found is None:
        return "I don't know."
    n = found.group(1)
    return f"{SUPPORTED} [{n}]. {INVENTED[:-1]} [{n}]."


def ef_search_source(messages: list[dict[str, Any]]) -> str:
    """The number of the prompt's ef_search passage ("1" when it has none)."""
    found = _EF_SEARCH_BLOCK.search(str(messages[-1].get("content", "")))
    return found.group(1) if found else "1"
