"""Shared fixtures. Real components: Chroma in a temp dir, the real embedding model, the real
in-process LLM. Expensive models load once per test session."""

from __future__ import annotations

import os

# Before any model library is imported: no hub downloads, no telemetry.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
for _key in [k for k in os.environ if k.startswith("RAG_")]:
    del os.environ[_key]  # a developer's own settings must not leak into the tests

import shutil  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from rag.config import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE_BASE = ROOT / "knowledge_base"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Settings read `.env` from the working directory; tests run where there is none."""
    monkeypatch.chdir(tmp_path_factory.getbasetemp())


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    return Settings(data_dir=data_dir, _env_file=None, **overrides)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    from rag.config import DEFAULT_EMBEDDING_MODEL
    from rag.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(DEFAULT_EMBEDDING_MODEL)


@pytest.fixture(scope="session")
def llamacpp_llm():  # type: ignore[no-untyped-def]
    from rag.factory import build_llamacpp

    return build_llamacpp(make_settings(Path("unused")))


@pytest.fixture
def make_app(tmp_path: Path, embedder) -> Callable[..., object]:  # type: ignore[no-untyped-def]
    """An App on a fresh data dir, sharing the session's embedder (no reload per test)."""
    from rag.factory import App

    def _make(data_dir: Path | None = None, **overrides: object) -> App:
        app = App(make_settings(data_dir or tmp_path / "data", **overrides))
        app.__dict__["embedder"] = embedder  # cached_property: reuse the loaded model
        return app

    return _make


@pytest.fixture(scope="session")
def kb_data_dir(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:  # type: ignore[no-untyped-def]
    """A data dir with knowledge_base/ ingested once for the session."""
    from rag.factory import App

    data_dir = tmp_path_factory.mktemp("kb") / "data"
    app = App(make_settings(data_dir))
    app.__dict__["embedder"] = embedder
    report = app.pipeline.sync(KNOWLEDGE_BASE)
    assert not report.failed, report.failed
    return data_dir


@pytest.fixture
def kb_copy(tmp_path: Path) -> Iterator[Path]:
    """A private copy of knowledge_base/ a test may change."""
    target = tmp_path / "kb"
    shutil.copytree(KNOWLEDGE_BASE, target)
    yield target
