"""Text from documents and file names, made safe to print on a terminal.

A document can hold escape sequences (``ESC [ 2 J`` clears the screen, OSC 8 makes links, some
terminals answer a query by typing into the shell) and a file name can hold a newline that
forges a line of output. Plain output shows every control character escaped, as Python writes
it in a string (``\\x1b``, ``\\n``); bidirectional overrides, which reorder what is shown, too.
JSON output needs none of this: ``json.dumps`` escapes them itself.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: object, *, lines: bool = False) -> str:
    """``str(text)`` with control characters and bidi overrides written as escapes; ``lines``:
    line breaks kept (an answer streamed to the terminal)."""
    def escape(m: re.Match[str]) -> str:
        return m.group() if lines and m.group() == "\n" else \
            m.group().encode("unicode_escape").decode("ascii")

    return _UNSAFE.sub(escape, str(text))
