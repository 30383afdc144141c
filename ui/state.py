"""Objects the Streamlit pages share, built once per process with ``st.cache_resource``."""

from __future__ import annotations

import contextlib
import logging

import streamlit as st

from application.factory import App, LLMChoice, build_llamacpp, build_ollama
from rag.config import load_settings
from rag.errors import RagError
from rag.llm import LLM, OllamaLLM
from ui.render import escape_markdown

__all__ = ["EXTRACT", "escape_markdown", "get_app", "get_llm_choice", "llm_named", "model_label",
           "model_options"]

log = logging.getLogger(__name__)


@st.cache_resource(show_spinner="Loading the embedding model…")
def get_app() -> App:
    app = App(load_settings())
    _ = app.embedder  # load the model now, once, not on the first question
    return app


@st.cache_resource(show_spinner="Starting the language model…")
def get_llm_choice() -> LLMChoice:
    return get_app().llm_choice


@st.cache_data(ttl=30, show_spinner=False)
def ollama_models(host: str) -> tuple[list[str], str]:
    """(models, "") when Ollama answers at ``host``, else ([], the reason with the fix)."""
    probe = build_ollama(get_app().settings.model_copy(update={"ollama_host": host}), timeout=2.0)
    assert isinstance(probe, OllamaLLM)
    try:
        return probe.list_models(), ""
    except RagError as exc:
        return [], str(exc)


@st.cache_resource(show_spinner="Connecting to the model…")
def _ollama_llm(model: str) -> LLM:
    return build_ollama(get_app().settings.model_copy(update={"ollama_model": model}))


@st.cache_resource(show_spinner="Starting the embedded model…")
def _embedded_llm() -> LLM:
    return build_llamacpp(get_app().settings)


EXTRACT = "extract"  # the model option for answers quoted from the documents (no LLM)
EMBEDDED = "llamacpp:embedded"


def in_process_available() -> bool:
    """Whether llama-cpp-python is installed (an optional extra), so the GGUF model can run."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def model_label(name: str) -> str:
    """How a ``model_options`` entry reads in the picker."""
    if name == EXTRACT:
        return "Quoted from the documents (extract)"
    if name == EMBEDDED:
        return "In-process model (llamacpp)"
    return name


def model_options() -> list[str]:
    """What can answer in the chat: quoting the documents (``extract``, always), the models
    Ollama serves when it answers, and the in-process model when llama-cpp-python is installed.

    The choice made at start (``get_llm_choice``) comes first, so it is the default.
    """
    options: list[str] = []
    with contextlib.suppress(RagError):
        options.append(get_llm_choice().name)
    options.append(EXTRACT)
    settings = get_app().settings
    if settings.llm_backend != "llamacpp":
        models, _ = ollama_models(settings.ollama_host)
        # "llama3.2:latest" is the "llama3.2" the settings name: listed once, as Ollama's
        # own `ollama run` takes it
        options += [f"ollama:{m.removesuffix(':latest')}" for m in models]
    if (settings.llm_backend != "ollama" and in_process_available()
            and not any(o.startswith("llamacpp:") for o in options)):
        options.append(EMBEDDED)
    return list(dict.fromkeys(options))


def llm_named(name: str) -> LLM | None:
    """The LLM for a ``model_options`` entry; None for ``extract`` (the one picked at start is
    reused, not rebuilt)."""
    if name == EXTRACT:
        return None
    try:
        choice = get_llm_choice()
    except RagError:
        choice = None
    if choice is not None and choice.llm is not None and choice.name == name:
        return choice.llm
    if name.startswith("ollama:"):
        return _ollama_llm(name.removeprefix("ollama:"))
    return _embedded_llm()
