"""The CPU this runs on, as `rag status`, the benchmarks and the test log name it.

Speed here depends on the CPU's vector extensions: the int8 embedder runs several times faster
with AVX-512 VNNI than with AVX2 alone (docs/performance.md), so every figure and every status
says which it had. Read from /proc/cpuinfo (Linux); elsewhere the model is what ``platform``
knows and the flags are unknown.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

# The extensions that matter for the embedder, in the order they are named.
VECTOR_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile",
                "amx_int8")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_model() -> str:
    found = re.search(r"^model name\s*:\s*(.*)$", _cpuinfo(), re.M)
    return found.group(1).strip() if found else (platform.processor() or "unknown")


def cpu_flags() -> list[str]:
    """Which of ``VECTOR_FLAGS`` this CPU has (empty when they cannot be read)."""
    found = re.search(r"^flags\s*:\s*(.*)$", _cpuinfo(), re.M)
    have = set(found.group(1).split()) if found else set()
    return [f for f in VECTOR_FLAGS if f in have]


def cpu_summary() -> str:
    """One line: "AMD EPYC 9R14, 2 cores, flags: avx2 avx512f avx512_vnni avx512_bf16"."""
    flags = cpu_flags()
    return (f"{cpu_model()}, {os.cpu_count()} cores, flags: "
            + (" ".join(flags) or "none of " + ", ".join(VECTOR_FLAGS)))
