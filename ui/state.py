"""Objects the Streamlit pages share, built once per process with ``st.cache_resource``."""

from __future__ import annotations

import re

import streamlit as st

from rag.config import load_settings
from rag.factory import App, LLMChoice

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


@st.cache_resource(show_spinner="Loading the embedding model…")
def get_app() -> App:
    app = App(load_settings())
    _ = app.embedder  # load the model now, once, not on the first question
    return app


@st.cache_resource(show_spinner="Starting the language model…")
def get_llm_choice() -> LLMChoice:
    return get_app().llm_choice


def escape_markdown(text: str) -> str:
    """Document text shown as literal text: no Markdown or HTML from a document is rendered."""
    return _MD_SPECIAL.sub(r"\\\1", text)
