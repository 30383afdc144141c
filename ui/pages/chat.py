"""Chat page: ask the knowledge base, read the answer as it streams, check its numbered sources.

Conversations are kept in SQLite in the data directory (``rag.conversations``) and listed in the
sidebar. Everything else goes through ``rag`` (``ChatEngine.stream_answer``).
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from application.factory import App
from rag.chat import (
    ChatEngine,
    DoneEvent,
    SourcesEvent,
    TokenEvent,
    extract_note,
    left_out_note,
)
from rag.conversations import Turn
from rag.errors import RagError
from rag.retriever import MODES, Mode, SearchOptions
from rag.types import Answer, Message, RetrievedChunk, Source
from ui.collections import collection_picker
from ui.conversations_panel import conversation_panel
from ui.render import (
    UNSUPPORTED_MARK,
    UNSUPPORTED_NOTE,
    answer_markdown,
    checked_answer_markdown,
    citation_badge,
    escape_markdown,
    evidence_snippet,
    message_markdown,
    unsupported_markdown,
)
from ui.state import (
    EXTRACT,
    get_app,
    get_llm_choice,
    llm_named,
    model_label,
    model_options,
    ollama_models,
)

CURSOR = " ▌"


@dataclass(frozen=True)
class ChatOptions:
    """The sidebar's answer settings: who answers, how, and the search request."""

    model: str | None
    temperature: float
    search: SearchOptions  # top-k, retrieval mode, only these documents


# --- sidebar -------------------------------------------------------------------------------------


def indexed_sources(app: App) -> list[str]:
    """Documents with chunks in the index: the choices of the source filter."""
    try:
        return sorted({r.source for r in app.manifest.records() if r.status == "indexed"})
    except Exception:  # the library page reports manifest problems; here a filter just is empty
        return []


def settings_panel(app: App) -> ChatOptions:
    s = app.settings
    with st.expander("Answer settings", icon=":material/tune:", expanded=False):
        options = model_options()
        model = st.selectbox(
            "Answered by", options, key="model", format_func=model_label,
            help="Quoted from the documents: the passages' best sentences, no language model. "
            "Or a model that writes the answer (Ollama's when it answers, the in-process one); "
            "its sentences are checked against the passages they cite.")
        top_k = int(st.slider(
            "Passages given to the model (top-k)", 1, 20, min(s.top_k, 20), key="top_k",
            help="The in-process model is given only those within RAG_LOCAL_CONTEXT_TOKENS "
            f"({s.local_context_tokens} tokens), so that it starts answering sooner."))
        temperature = float(st.slider("Temperature", 0.0, 1.5, float(s.temperature), 0.05,
                                      key="temperature"))
        mode: Mode = st.selectbox(
            "Retrieval", MODES, index=MODES.index(s.retrieval_mode), key="retrieval_mode",
            help="dense: by meaning (embeddings); lexical: by words (BM25); hybrid: both, fused.")
        sources = st.multiselect("Only these documents", indexed_sources(app), key="source_filter",
                                 placeholder="All documents")
    search = SearchOptions(k=top_k, mode=mode, sources=tuple(sources) or None)
    return ChatOptions(model, temperature, search)


def index_status(app: App) -> None:
    try:
        chunks = app.store.count()
        documents = len({r.source for r in app.manifest.records()})
        st.caption(f":material/database: {documents} documents · {chunks} chunks")
        if chunks == 0:
            st.warning("The knowledge base is empty: add documents on the Library page, or run "
                       "`rag ingest DIR`.", icon=":material/info:")
    except RagError as exc:
        st.error(message_markdown(str(exc)), icon=":material/cloud_off:")


def llm_status(app: App) -> None:
    """Which model answers; when the configured one cannot, why and what to do."""
    s = app.settings
    try:
        choice = get_llm_choice()
    except RagError as exc:
        st.error(message_markdown(str(exc)), icon=":material/error:")
        return
    st.caption(f":material/smart_toy: {escape_markdown(model_label(choice.name))}")
    if s.llm_backend == "ollama":
        _, problem = ollama_models(s.ollama_host)
        if problem:
            st.error(message_markdown(problem), icon=":material/cloud_off:")
    elif s.llm_backend == "auto" and choice.llm is None and s.answer_mode == "auto":
        st.caption(message_markdown(
            f"Ollama does not answer at {s.ollama_host}, so answers are quoted from the "
            f"documents. For written answers run `ollama serve` and `ollama pull "
            f"{s.ollama_model}`, or set `RAG_GGUF_PATH` to a GGUF model."))
    elif s.llm_backend == "auto" and choice.name.startswith("llamacpp:"):
        st.caption(message_markdown(
            f"Ollama does not answer at {s.ollama_host}: the in-process model answers. For "
            f"better answers run `ollama serve` and `ollama pull {s.ollama_model}`."))


def sidebar(app: App) -> ChatOptions:
    with st.sidebar:
        index_status(app)
        llm_status(app)
        options = settings_panel(app)
        st.subheader("Conversations")
        conversation_panel(app.conversations)
    return options


# --- messages ------------------------------------------------------------------------------------


@st.cache_data(max_entries=32, show_spinner=False)
def _page_png(root: str, source: str, page: int, mtime_ns: int,
              highlights: tuple[str, ...] = ()) -> bytes | None:
    """A cited PDF page as PNG with its evidence boxed, cached per file version (``mtime_ns``)
    and evidence."""
    from application.preview import page_image

    return page_image(RetrievedChunk(id="", text="", source=source, page=page, heading="",
                                      score=0.0, root=root), highlights=highlights)


def source_actions(source: Source, key: str) -> None:
    """The source's file to download (the browser opens it), and for a PDF the cited page
    shown as it looks in the file, a box around each evidence sentence."""
    import mimetypes

    from application.preview import evidence_texts, has_page_image, source_file

    chunk = source.chunk
    path = source_file(chunk)
    if path is None:  # moved or deleted since it was indexed, or an answer from an old index
        return
    with st.container(horizontal=True, vertical_alignment="center"):
        st.download_button(
            "Download the file", data=path.read_bytes, file_name=path.name,
            mime=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            key=f"download_{key}", icon=":material/download:", type="tertiary",
            on_click="ignore", help=str(path),
        )
        show = has_page_image(chunk) and st.toggle("Show the page", key=f"page_{key}")
    if not show:
        return
    assert chunk.page is not None
    highlights = evidence_texts(source)
    image = _page_png(chunk.root, chunk.source, chunk.page, path.stat().st_mtime_ns, highlights)
    if image is None:
        st.caption("This page cannot be shown: the file changed or needs a password.")
        return
    boxed = " · boxed: the evidence" if highlights else ""
    st.image(image, caption=f"{chunk.source}, page {chunk.page} ({path}){boxed}",
             output_format="PNG")  # as rendered: JPEG would blur the text and the boxes


def render_sources(answer: Answer, key: str = "live") -> None:
    """The numbered passages the model was given. When it still said the documents do not
    answer, they are listed folded as "Passages searched": a small model refuses wrongly
    often enough that the user should be able to look."""
    if not answer.sources:
        return
    if answer.left_out and answer.mode == "generate":
        st.caption(f":material/speed: {left_out_note(answer.left_out)}")
    cited = {s.n for s in answer.cited_sources()}
    label = "Passages searched" if answer.refused else "Sources"
    with st.expander(f"{label} ({len(answer.sources)})", icon=":material/menu_book:",
                     expanded=not answer.refused):
        for s in answer.sources:
            page = f" · page {s.chunk.page}" if s.chunk.page is not None else ""
            mark = "" if s.n in cited else " · :gray[not cited]"
            with st.container(border=True, key=f"source_{id(answer)}_{s.n}"):
                st.markdown(f"{citation_badge(s.n)} **{escape_markdown(s.chunk.source)}**{page}"
                            f" · score {s.chunk.score:.2f}{mark}")
                heading = f"{escape_markdown(s.chunk.heading)} — " if s.chunk.heading else ""
                st.markdown(f":gray[{heading}]" * bool(heading) +
                            evidence_snippet(s.chunk.text, s.evidence))
                source_actions(s, f"{key}_{s.n}")


def mode_caption(answer: Answer) -> None:
    """Which mode answered: quoted from the documents (and how to get written answers), or
    written by a model (and whether its sentences were checked)."""
    if answer.refused or not answer.backend:
        return
    if answer.mode == "extract":
        st.caption(f":material/format_quote: Mode: extract · {message_markdown(extract_note())}")
        return
    checked = ("; each sentence checked against the passages it cites" if answer.sentences
               else "")
    st.caption(f":material/edit_note: Mode: generate · written by "
               f"{escape_markdown(answer.backend)}{checked}")


def answer_text(answer: Answer) -> None:
    """The finished answer: a generated one with its unsupported sentences marked (never with
    citation badges), and a warning when it cites nothing at all."""
    numbers = [s.n for s in answer.sources]
    if answer.mode != "generate" or answer.refused or not answer.sentences:
        st.markdown(answer_markdown(answer.text, numbers))
        mode_caption(answer)
        return
    if not any(s.cited for s in answer.sentences):
        st.markdown(answer_markdown(answer.text, numbers))
        st.warning("This answer cites no passage, so none of it could be checked against the "
                   "documents: read the sources before relying on it.", icon=":material/warning:")
        mode_caption(answer)
        return
    text, missing = checked_answer_markdown(answer.text, numbers, answer.sentences)
    st.markdown(text)
    if answer.unsupported():
        st.caption(f"{UNSUPPORTED_MARK} marks a sentence {UNSUPPORTED_NOTE}: check it against "
                   "the sources before relying on it.")
    for s in missing:
        st.caption(unsupported_markdown(s))
    mode_caption(answer)


def render_answer(answer: Answer, key: str) -> None:
    if answer.search_query and answer.search_query.strip() != answer.question.strip():
        st.caption(f":material/search: Searched for: {escape_markdown(answer.search_query)}")
    answer_text(answer)
    render_sources(answer, key)


def render_turn(turn: Turn, key: str) -> None:
    with st.chat_message(turn.role):
        if turn.answer is not None:
            render_answer(turn.answer, key)
        else:
            st.markdown(escape_markdown(turn.content))


# --- asking --------------------------------------------------------------------------------------


def build_engine(app: App, options: ChatOptions) -> ChatEngine:
    """The engine with the sidebar's model and temperature."""
    if options.model == EXTRACT:
        engine = app.chat_engine(extract=True)
    else:
        engine = app.chat_engine(llm_named(options.model) if options.model else None)
    engine.temperature = options.temperature
    return engine


def stream_answer(app: App, question: str, history: list[Message], options: ChatOptions) -> Answer:
    engine = build_engine(app, options)
    events = engine.stream_answer(question, history, options=options.search)
    with st.spinner("Searching the documents…"):
        first = next(events)
    assert isinstance(first, SourcesEvent)
    if first.search_query.strip() != question.strip():
        st.caption(f":material/search: Searched for: {escape_markdown(first.search_query)}")
    numbers = [s.n for s in first.sources]
    placeholder = st.empty()
    text = ""
    answer: Answer | None = None
    for event in events:
        if isinstance(event, TokenEvent):
            text += event.text
            placeholder.markdown(answer_markdown(text, numbers) + CURSOR)
        elif isinstance(event, DoneEvent):
            answer = event.answer
    assert answer is not None
    with placeholder.container():
        answer_text(answer)
    render_sources(answer)
    return answer


def ask(app: App, question: str, turns: list[Turn], options: ChatOptions) -> None:
    with st.chat_message("user"):
        st.markdown(escape_markdown(question))
    with st.chat_message("assistant"):
        try:
            answer = stream_answer(app, question, [t.message() for t in turns], options)
        except RagError as exc:
            st.error(message_markdown(str(exc)), icon=":material/error:")
            return
    store = app.conversations
    cid = st.session_state.get("conversation_id")
    if cid is None or store.get(cid) is None:
        cid = store.create(question)
        st.session_state.conversation_id = cid
    store.add_turn(cid, "user", question)
    store.add_turn(cid, "assistant", answer.text, answer)
    st.rerun()  # the sidebar lists the conversation, the page shows it from the store


def main() -> None:
    try:
        app = get_app()
    except RagError as exc:
        st.error(message_markdown(str(exc)))
        st.stop()
    app = collection_picker(app)  # the collection (knowledge base) this chat asks: ui/collections.py
    options = sidebar(app)
    cid = st.session_state.get("conversation_id")
    turns = app.conversations.turns(cid) if cid else []
    if not turns:
        st.title("Chat with your documents")
        st.caption("Answers come only from your documents, with numbered sources. "
                   "Ask a follow-up: the conversation is taken into account.")
    for i, turn in enumerate(turns):
        render_turn(turn, f"{cid}_{i}")
    question = st.chat_input("Ask a question about your documents")
    if question:
        ask(app, question, turns, options)


main()
