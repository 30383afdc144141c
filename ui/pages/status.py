"""Status page: what answers, where the index is, how big it is, which versions run."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

import streamlit as st

from application.status import collect_status
from rag.chat import extract_note
from rag.config import Settings
from rag.errors import RagError
from ui.render import escape_markdown, message_markdown
from ui.state import get_app, get_llm_choice, ollama_models

PACKAGES = ["chromadb", "sentence-transformers", "streamlit", "llama-cpp-python", "ollama",
            "torch", "plotly", "rag-local"]


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def literal(value: str) -> str:
    """A value as Markdown that shows it as it is: a code span (a table cell is Markdown)."""
    if not value:
        return ""
    if "`" in value:
        return escape_markdown(value)
    return f"`{value}`"


def settings_rows(settings: Settings) -> list[dict[str, str]]:
    """Every setting, as Markdown cells: its variable, its value in effect (marked when not the
    default), what it does."""
    rows = []
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        shown = "" if value is None else str(value)
        rows.append({
            "Variable": f"RAG_{name.upper()}",
            "Value": literal(shown) + ("" if value == field.default else " (set)"),
            "What": field.description or "",
        })
    return rows


def main() -> None:
    st.title("Status")
    try:
        app = get_app()
    except RagError as exc:
        st.error(message_markdown(str(exc)))
        st.stop()
    s = app.settings
    status = collect_status(app)

    st.subheader("Language model")
    try:
        choice = get_llm_choice()
        how = ("answers are quoted from the documents, no language model"
               if choice.llm is None else "a model writes the answers, each sentence checked")
        st.success(f"Answering with **{escape_markdown(choice.name)}** ({how})",
                   icon=":material/smart_toy:")
        if choice.llm is None:  # why quoting, and how to get written answers
            st.caption(message_markdown(extract_note()))
        elif not choice.reason.startswith("auto: Ollama is not"):
            st.caption(message_markdown(choice.reason))
    except RagError as exc:
        st.error(message_markdown(str(exc)), icon=":material/error:")
    models, problem = ollama_models(s.ollama_host)
    if problem:
        st.warning(message_markdown(problem), icon=":material/cloud_off:")
    else:
        st.markdown(f"Ollama at `{s.ollama_host}` answers; models: "
                    + (", ".join(f"`{m}`" for m in models) or "none (run `ollama pull "
                                                                   f"{s.ollama_model}`)"))

    st.subheader("Index")
    if "store_error" in status:
        st.error(message_markdown(status["store_error"]), icon=":material/cloud_off:")
    mode = "server" if s.uses_chroma_server else "embedded"
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Documents", status.get("documents", 0))
    c2.metric("Failed documents", status.get("documents_failed", 0))
    c3.metric("Chunks", status.get("chunks", "?"))
    c4.metric("Chroma", mode)
    st.markdown(
        f"- Location: `{status.get('store', '?')}`\n"
        f"- Collection: `{s.collection}` ({status.get('chunks', '?')} chunks)\n"
        f"- Embedder: `{s.embedding_model}`, run by `{s.embedding_backend}`"
        + (f" (the index was built with `{status['index_embedder']}`)"
           if status.get("index_embedder") and status["index_embedder"] != s.embedding_model
           else "") + "\n"
        f"- CPU: {escape_markdown(status['cpu'])}\n"
        f"- Data directory: `{status['data_dir']}`\n"
        f"- Uploads: `{s.uploads_dir.resolve()}`"
    )

    st.subheader("Settings")
    st.caption("In effect for this app, read once at start from `RAG_*` environment variables "
               "and `.env` (`.env.example` lists them all). Change them there and restart.")
    # A static table: every value and description in full, wrapped (a data frame cut them
    # off at the column's width)
    st.table(settings_rows(s), hide_index=True)

    st.subheader("Versions")
    rows = [{"Component": "python", "Version": platform.python_version()}]
    rows += [{"Component": p, "Version": package_version(p)} for p in PACKAGES]
    st.dataframe(rows, hide_index=True, width="content")


main()
