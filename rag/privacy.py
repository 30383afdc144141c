"""Nothing leaves the machine: telemetry of the libraries we use is switched off here.

Called by every entry point (CLI, UI) before the libraries are imported; modules that import
such a library themselves (``rag.onnx_embedder``, ``rag.openvino_embedder``, ``ingest.ocr``)
also call ``library_defaults`` first, so code that builds them without the app (tests,
benchmarks) is covered too.
"""

from __future__ import annotations

import os
import sys

_DEFAULTS = {
    "ANONYMIZED_TELEMETRY": "False",  # Chroma (also off in its client Settings)
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    # onnxruntime (the default embedder) sends usage events to mobile.events.data.microsoft.com
    # from native code, which Python cannot see: seen with strace while the model is exported.
    "ORT_DISABLE_TELEMETRY": "1",
    "LANGSMITH_TRACING": "false",  # LangChain sends traces only when asked; make sure
    "LANGCHAIN_TRACING_V2": "false",
    # Library progress bars would garble the CLI's own output and its one-line errors.
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "NNCF_CI": "1",  # NNCF's own telemetry switch (below: its module is not importable anyway)
}


def _no_openvino_telemetry() -> None:
    """openvino's converter and NNCF (the default embedder's quantiser) import
    ``openvino_telemetry``, which reports usage to Google Analytics when a user has opted in.
    Neither needs it to quantise or run a model: the module is made unimportable in this
    process before either is imported, and both then fall back to their no-op stand-ins."""
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]


def library_defaults() -> None:
    """The telemetry opt-outs alone (no offline switch), unless the user set them."""
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    _no_openvino_telemetry()


def disable_telemetry(offline_models: bool = True) -> None:
    """Set the opt-outs unless the user set them; ``offline_models`` also forbids hub downloads."""
    library_defaults()
    if offline_models:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
