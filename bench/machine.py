"""What the benchmarks record about the machine and the run: cores, CPU, load, memory, versions."""

from __future__ import annotations

import os
import platform
import resource
import time
from typing import Any

from rag.machine import cpu_flags, cpu_model

__all__ = ["children_cpu_seconds", "cpu_flags", "cpu_model", "load_average", "machine",
           "peak_rss_mb", "versions"]


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict[str, Any]:
    return {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "loadavg_1_5_15": load_average(),
    }


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory of this process and of the largest child (Linux: KiB units)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {"self": round(own, 1), "largest_child": round(children, 1)}


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round(usage.ru_utime + usage.ru_stime, 1)


def versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ("chromadb", "sentence_transformers", "torch", "onnxruntime", "pypdf"):
        try:
            module = __import__(name)
            out[name] = str(getattr(module, "__version__", "?"))
        except Exception:  # not installed: leave it out
            continue
    return out
