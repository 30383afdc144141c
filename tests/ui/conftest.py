"""Fixtures for the browser app: a private copy of the ingested data dir, settings in the
environment (the app reads them like `rag ui` does), and a fresh Streamlit resource cache."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import closed_port

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"


@pytest.fixture
def data_dir(tmp_path: Path, kb_data_dir: Path) -> Path:
    """The session's ingested knowledge base, copied so a test may change it."""
    target = tmp_path / "data"
    shutil.copytree(kb_data_dir, target)
    return target


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Iterator[Path]:
    """RAG_DATA_DIR and an Ollama host where nothing answers, so the embedded model does."""
    import streamlit as st

    monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
    monkeypatch.setenv("RAG_OLLAMA_HOST", f"http://127.0.0.1:{closed_port()}")
    st.cache_resource.clear()
    st.cache_data.clear()
    yield data_dir
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def open_app(app_env: Path) -> Callable[..., object]:
    """Start the app headless (AppTest) on a page: ``open_app("pages/library.py")``."""
    from streamlit.testing.v1 import AppTest

    def _open(page: str | None = None) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=300)
        at.run()
        if page is not None:
            at.switch_page(page).run()
        assert not at.exception, at.exception
        return at

    return _open
