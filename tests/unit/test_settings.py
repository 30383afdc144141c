from pathlib import Path

import pytest

from rag.config import Settings, load_settings
from rag.errors import ConfigError


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.data_dir == Path("data")
    assert s.llm_backend == "auto"
    assert s.ollama_model == "llama3.2"
    assert s.embedding_model.endswith("all-MiniLM-L6-v2")
    assert not s.uses_chroma_server


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("RAG_TOP_K=9\nRAG_OLLAMA_MODEL=qwen2.5\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("RAG_GGUF_PATH", "")
    s = load_settings()
    assert (s.top_k, s.ollama_model, s.uses_chroma_server) == (9, "qwen2.5", True)
    assert s.gguf_path is None


def test_invalid_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_LLM_BACKEND", "gpt")
    with pytest.raises(ConfigError, match="RAG_LLM_BACKEND"):
        load_settings()


def test_overlap_must_be_smaller_than_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CHUNK_SIZE", "50")
    monkeypatch.setenv("RAG_CHUNK_OVERLAP", "50")
    with pytest.raises(ConfigError, match="RAG_CHUNK_OVERLAP"):
        load_settings()


def test_env_example_lists_every_setting() -> None:
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    for name in Settings.model_fields:
        assert f"RAG_{name.upper()}=" in example, f"RAG_{name.upper()} missing from .env.example"


def test_query_rewrite_is_auto_and_the_old_flag_values_still_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().query_rewrite == "auto"
    for old, new in [("true", "on"), ("false", "off"), ("on", "on"), ("auto", "auto")]:
        monkeypatch.setenv("RAG_QUERY_REWRITE", old)
        assert load_settings().query_rewrite == new
    monkeypatch.setenv("RAG_QUERY_REWRITE", "sometimes")
    with pytest.raises(ConfigError, match="RAG_QUERY_REWRITE"):
        load_settings()
