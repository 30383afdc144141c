"""Shared fixtures. Real components: Chroma in a temp dir and the real embedding model, loaded
once per test session. Answers come from tests/fakes.py's ScriptedLLM (what the bundled model
writes differs between CPUs); test_llamacpp_smoke.py loads the in-process model itself."""

from __future__ import annotations

import os

# Before any model library is imported: no hub downloads, no telemetry.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
for _key in [k for k in os.environ if k.startswith("RAG_")]:
    del os.environ[_key]  # a developer's own settings must not leak into the tests
# One ONNX export of the embedding model for every data dir the tests make (and their
# subprocesses): exporting takes ~10 s, and a fresh data dir would otherwise do it again.
os.environ["RAG_MODELS_DIR"] = os.path.join(
    __import__("tempfile").gettempdir(), f"rag-test-models-{os.getuid()}"
)

import shutil  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from rag.config import Settings  # noqa: E402
from rag.machine import cpu_summary  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE_BASE = ROOT / "knowledge_base"
SHARED_DATA = ROOT.parent / "shared" / "data"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # The CPU the suite ran on: results must not depend on it, and when one CPU kind fails and
    # the other passes, the log says which it was (at the end, where a CI log is read, even -q).
    terminalreporter.write_line(f"cpu: {cpu_summary()}")


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Settings read `.env` from the working directory; tests run where there is none."""
    monkeypatch.chdir(tmp_path_factory.getbasetemp())


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    return Settings(data_dir=data_dir, _env_file=None, **overrides)  # type: ignore[call-arg]


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ui_serving(url: str) -> bool:
    """Whether a Streamlit server answers its health check at ``url``."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def rag_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `rag` subprocess: this data dir, an Ollama host where nothing
    answers (so the embedded model does), the shared ONNX export, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"RAG_DATA_DIR": str(data_dir), "RAG_MODELS_DIR": os.environ["RAG_MODELS_DIR"],
                "RAG_OLLAMA_HOST": f"http://127.0.0.1:{closed_port()}", **extra})
    return env


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The default embedder, as `rag` builds it: all-MiniLM-L6-v2 in int8 on OpenVINO."""
    from application.factory import build_embedder

    return build_embedder(make_settings(Path("unused")))


@pytest.fixture(scope="session")
def torch_embedder():  # type: ignore[no-untyped-def]
    """The same model on PyTorch (RAG_EMBEDDING_BACKEND=torch)."""
    from rag.config import DEFAULT_EMBEDDING_MODEL
    from rag.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(DEFAULT_EMBEDDING_MODEL)


@pytest.fixture
def make_app(tmp_path: Path, embedder) -> Callable[..., object]:  # type: ignore[no-untyped-def]
    """An App on a fresh data dir, sharing the session's embedder (no reload per test)."""
    from application.factory import App

    def _make(data_dir: Path | None = None, **overrides: object) -> App:
        app = App(make_settings(data_dir or tmp_path / "data", **overrides))
        app.__dict__["embedder"] = embedder  # cached_property: reuse the loaded model
        return app

    return _make


@pytest.fixture(scope="session")
def kb_data_dir(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:  # type: ignore[no-untyped-def]
    """A data dir with knowledge_base/ ingested once for the session."""
    from application.factory import App

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
