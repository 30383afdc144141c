"""Chat page: ask the knowledge base, read the answer as it streams, check its numbered sources.

Conversations are kept in SQLite in the data directory (``rag.conversations``) and listed in the
sidebar. Everything else goes through ``rag`` (``ChatEngine.stream_answer``).

How a question is answered, so that nothing the user typed is lost:

- sending it (``chat_input``'s ``on_submit``, or Regenerate / Edit the question) only records
  it as ``pending``; the run that follows answers it with the input disabled and a Stop button;
- the question is stored before the answer starts, the answer when it is done; an answer cut
  short (Stop, another click, the page left) is stored as far as it got, marked stopped.
  Streamlit starts the next run in a new thread while the cut one is still unwinding, so the
  next run waits (``ANSWERING``) until that answer is stored before it reads the conversation.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import streamlit as st

from application.factory import App
from application.scores import SIMILARITY_HELP, similarities, similarity_text
from rag.chat import (
    ChatEngine,
    ChatEvent,
    DoneEvent,
    SourcesEvent,
    TokenEvent,
    extract_note,
    left_out_note,
)
from rag.conversations import ConversationStore, Turn
from rag.errors import RagError
from rag.retriever import MODES, Mode, SearchOptions
from rag.types import Answer, Message, RetrievedChunk, Source
from ui.collections import chat_app, collection_picker
from ui.conversations_panel import conversation_panel
from ui.render import (
    UNSUPPORTED_MARK,
    UNSUPPORTED_NOTE,
    answer_markdown,
    checked_answer_markdown,
    citation_badge,
    escape_markdown,
    evidence_snippet,
    is_heading_only,
    message_markdown,
    source_anchor,
    streaming_markdown,
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
PENDING = "pending_question"  # the question the next run answers (session state)
EDITING = "editing_question"  # the last question is being edited (session state)
MODEL_OF = "model_of_conversation"  # the conversation whose model the picker shows
ANSWERING = "answering_lock"  # held while a run answers (session state)
FAILED = "answer_failed"  # (conversation, why) of the last question that got no answer
STOPPED_NOTE = "Stopped: the answer was cut short here."


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


def restore_model(store: ConversationStore, options: list[str]) -> str | None:
    """When another conversation is opened, the picker shows the model picked in it. What was
    picked but does not answer now (an Ollama model gone) is named, and the picker left as is."""
    cid = st.session_state.get("conversation_id")
    if st.session_state.get(MODEL_OF) == cid:
        return None
    st.session_state[MODEL_OF] = cid
    model = store.model(cid) if cid else None
    if model is None:
        return None
    if model in options:
        st.session_state.model = model
        return None
    return model


def _remember_model() -> None:
    """The picker changed: the open conversation keeps the new choice."""
    cid = st.session_state.get("conversation_id")
    if cid:
        get_app().conversations.set_model(cid, st.session_state.get("model"))


def model_picker(app: App) -> str | None:
    """Who answers: quoting the documents, the Ollama models that answer, the in-process
    model. Kept per conversation."""
    options = model_options()
    gone = restore_model(app.conversations, options)
    if st.session_state.get("model") not in options:
        st.session_state.pop("model", None)
    model = st.selectbox(
        "Answered by", options, key="model", format_func=model_label, on_change=_remember_model,
        help="Quoted from the documents: the passages' best sentences, no language model. "
        "Or a model that writes the answer (Ollama's models that answer, the in-process one); "
        "its sentences are checked against the passages they cite. Each chat keeps its choice.")
    if gone:
        st.caption(message_markdown(f"This chat was answered by {gone}, which does not answer "
                                    "now: pick another model."))
    return model


def settings_panel(app: App) -> ChatOptions:
    s = app.settings
    model = model_picker(app)
    with st.expander("Answer settings", icon=":material/tune:", expanded=False):
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


# --- sources -------------------------------------------------------------------------------------


@st.cache_data(max_entries=32, show_spinner=False)
def _page_png(root: str, source: str, page: int, mtime_ns: int,
              highlights: tuple[str, ...] = ()) -> bytes | None:
    """A cited PDF page as PNG with its evidence boxed, cached per file version (``mtime_ns``)
    and evidence."""
    from application.preview import page_image

    return page_image(RetrievedChunk(id="", text="", source=source, page=page, heading="",
                                      score=0.0, root=root), highlights=highlights)


@st.cache_data(max_entries=256, ttl=600, show_spinner=False)
def _similarities(query: str, ids: tuple[str, ...]) -> list[float | None]:
    """The passages' cosine to the query (``application.scores``), the scale of every score
    shown; None for a passage no longer in the index."""
    app = chat_app()  # the collection this chat asks (ui/collections.py)
    chunks = [RetrievedChunk(id=i, text="", source="", page=None, heading="", score=0.0)
              for i in ids]
    try:
        return similarities(app.embedder, app.store, query, chunks)
    except RagError:
        return [None] * len(ids)


def page_image(source: Source) -> None:
    """A cited PDF page as it looks in the file, a box around each evidence sentence."""
    from application.preview import evidence_texts, source_file

    chunk = source.chunk
    path = source_file(chunk)
    if path is None or chunk.page is None:
        return
    highlights = evidence_texts(source)
    image = _page_png(chunk.root, chunk.source, chunk.page, path.stat().st_mtime_ns, highlights)
    if image is None:
        st.caption("This page cannot be shown: the file changed or needs a password.")
        return
    boxed = " · boxed: the evidence" if highlights else ""
    st.image(image, caption=f"{chunk.source}, page {chunk.page} ({path}){boxed}",
             output_format="PNG")  # as rendered: JPEG would blur the text and the boxes


def source_actions(source: Source, key: str) -> None:
    """The source's file to download (the browser opens it), and for a PDF the cited page
    shown as it looks in the file, a box around each evidence sentence. A file deleted or
    moved since the answer is said to be so."""
    import mimetypes

    from application.preview import has_page_image, source_file

    chunk = source.chunk
    path = source_file(chunk)
    if path is None:  # moved or deleted since it was indexed, or an answer from an old index
        st.caption(f":material/block: {escape_markdown(chunk.source)}: file deleted since (or "
                   "moved): no download or page to show. The passage above is as it was.")
        return
    with st.container(horizontal=True, vertical_alignment="center"):
        st.download_button(
            "Download the file", data=path.read_bytes, file_name=path.name,
            mime=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            key=f"download_{key}", icon=":material/download:", type="tertiary",
            on_click="ignore", help=str(path),
        )
        show = has_page_image(chunk) and st.toggle("Show the page", key=f"page_{key}")
    if show:
        page_image(source)


def source_card(answer: Answer, s: Source, score: float | None, key: str, *,
                cited: bool, min_score: float) -> None:
    """One numbered source: badge, file, page, similarity; the passage as plain text with its
    evidence highlighted; its file and page."""
    page = f" · page {s.chunk.page}" if s.chunk.page is not None else ""
    mark = "" if cited else " · :gray[not cited]"
    shown = f" · {similarity_text(score, min_score)}" if score is not None else ""
    with st.container(border=True, key=f"source_{key}_{s.n}"):
        # the target of the answer's [n] badge (an id only: no visible content)
        st.html(f'<div id="{source_anchor(key, s.n)}"></div>')
        st.markdown(f"{citation_badge(s.n)} **{escape_markdown(s.chunk.source)}**{page}{shown}"
                    f"{mark}", help=SIMILARITY_HELP if score is not None else None)
        heading = f"{escape_markdown(s.chunk.heading)} —" if s.chunk.heading else ""
        st.markdown(f":gray[{heading}] " * bool(heading) +
                    evidence_snippet(s.chunk.text, s.evidence))
        source_actions(s, f"{key}_{s.n}")


def render_sources(answer: Answer, key: str) -> None:
    """The numbered passages the model was given. When it still said the documents do not
    answer, they are listed folded as "Passages searched": a small model refuses wrongly
    often enough that the user should be able to look. A passage that is only a heading (the
    chunker cut it off from its text) is listed only when the answer cites it."""
    if not answer.sources:
        return
    cited = {s.n for s in answer.cited_sources()}
    shown = [s for s in answer.sources if s.n in cited or not is_heading_only(s.chunk.text)]
    scores = _similarities(answer.search_query or answer.question,
                           tuple(s.chunk.id for s in shown))
    label = "Passages searched" if answer.refused else "Sources"
    min_score = get_app().settings.min_score
    with st.expander(f"{label} ({len(shown)})", icon=":material/menu_book:",
                     expanded=not answer.refused):
        for s, score in zip(shown, scores, strict=True):
            source_card(answer, s, score, key, cited=s.n in cited, min_score=min_score)
        hidden = len(answer.sources) - len(shown)
        if hidden:
            st.caption(f"{hidden} passage{'s' * (hidden > 1)} that {'are' if hidden > 1 else 'is'}"
                       " only a heading, without its text, not shown.")
        if answer.left_out and answer.mode == "generate":
            st.caption(f":material/speed: {left_out_note(answer.left_out)}")


@st.dialog("Source", width="large")
def source_dialog(answer: Answer, n: int, key: str) -> None:
    """Source ``n`` opened from its badge: the card and, for a PDF, the page with the evidence
    boxed."""
    [source] = [s for s in answer.sources if s.n == n]
    [score] = _similarities(answer.search_query or answer.question, (source.chunk.id,))
    cited = n in {s.n for s in answer.cited_sources()}
    source_card(answer, source, score, f"{key}_dialog", cited=cited,
                min_score=get_app().settings.min_score)
    page_image(source)


def cited_badges(answer: Answer, key: str) -> None:
    """The cited sources as buttons that open each one (for a PDF, its page)."""
    cited = answer.cited_sources()
    if not cited or answer.refused:
        return
    with st.container(horizontal=True, vertical_alignment="center", gap="small",
                      key=f"cited_{key}"):
        st.caption("Open a source:", width="content")
        for s in cited:
            page = f", page {s.chunk.page}" if s.chunk.page is not None else ""
            if st.button(f"{citation_badge(s.n)}", key=f"open_source_{key}_{s.n}", type="tertiary",
                         help=f"{s.chunk.source}{page}"):
                source_dialog(answer, s.n, key)


# --- answers -------------------------------------------------------------------------------------


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


def answer_text(answer: Answer, key: str | None = None) -> None:
    """The finished answer: a generated one with its unsupported sentences marked (never with
    citation badges), and a warning when it cites nothing at all. With ``key`` its badges
    link to their source cards."""
    numbers = [s.n for s in answer.sources]
    if answer.mode != "generate" or answer.refused or not answer.sentences:
        st.markdown(answer_markdown(answer.text, numbers, key))
        mode_caption(answer)
        return
    if not any(s.cited for s in answer.sentences):
        st.markdown(answer_markdown(answer.text, numbers, key))
        st.warning("This answer cites no passage, so none of it could be checked against the "
                   "documents: read the sources before relying on it.", icon=":material/warning:")
        mode_caption(answer)
        return
    text, missing = checked_answer_markdown(answer.text, numbers, answer.sentences, key)
    st.markdown(text)
    if answer.unsupported():
        st.caption(f"{UNSUPPORTED_MARK} marks a sentence {UNSUPPORTED_NOTE}: check it against "
                   "the sources before relying on it.")
    for s in missing:
        st.caption(unsupported_markdown(s))
    mode_caption(answer)


def render_answer(answer: Answer, key: str, *, stopped: bool = False) -> None:
    if answer.search_query and answer.search_query.strip() != answer.question.strip():
        st.caption(f":material/search: Searched for: {escape_markdown(answer.search_query)}")
    if stopped:
        numbers = [s.n for s in answer.sources]
        st.markdown(answer_markdown(answer.text, numbers, key) if answer.text.strip()
                    else ":gray[(no answer yet)]")
        st.caption(f":material/stop_circle: {STOPPED_NOTE}")
    else:
        answer_text(answer, key)
        cited_badges(answer, key)
    render_sources(answer, key)


def copy_button(text: str, key: str) -> None:
    """The answer as plain text (its [n] markers kept) with the code block's copy button."""
    with st.popover("Copy", icon=":material/content_copy:", type="tertiary",
                    help="The answer as text, to copy", key=f"copy_{key}"):
        st.caption("The copy button is at the block's top right.")
        st.code(text, language=None, wrap_lines=True)


def _regenerate(cid: str, index: int, question: str) -> None:
    get_app().conversations.drop_turns_from(cid, index)
    st.session_state[PENDING] = question
    st.session_state.pop(FAILED, None)


def _edit(on: bool) -> None:
    st.session_state[EDITING] = on


def _ask_edited(cid: str, index: int) -> None:
    question = str(st.session_state.get("edited_question", "")).strip()
    st.session_state[EDITING] = False
    if question:
        _regenerate(cid, index, question)


def turn_actions(turn: Turn, key: str, *, last_question: tuple[str, int, str] | None) -> None:
    """Under an answer: copy it; under the last one also answer again and edit the question."""
    busy = PENDING in st.session_state
    with st.container(horizontal=True, gap="small", key=f"actions_{key}"):
        if turn.content.strip():
            copy_button(turn.content, key)
        if last_question is not None:
            cid, index, question = last_question
            st.button("Regenerate", key=f"regenerate_{key}", icon=":material/refresh:",
                      type="tertiary", on_click=_regenerate, args=(cid, index, question),
                      disabled=busy, help="Ask the last question again; the new answer "
                      "replaces this one")
            st.button("Edit the question", key=f"edit_{key}", icon=":material/edit:",
                      type="tertiary", on_click=_edit, args=(True,), disabled=busy,
                      help="Change the last question and ask it again")


def edit_form(cid: str, index: int, question: str) -> None:
    with st.form("edit_question_form", border=False):
        st.text_area("Your question", value=question, key="edited_question")
        with st.container(horizontal=True, gap="small"):
            st.form_submit_button("Ask", icon=":material/send:", type="primary",
                                  on_click=_ask_edited, args=(cid, index))
            st.form_submit_button("Cancel", on_click=_edit, args=(False,))


def render_turns(cid: str, turns: list[Turn]) -> None:
    """The conversation; the last question can be asked again or edited."""
    last_user = max((i for i, t in enumerate(turns) if t.role == "user"), default=None)
    editing = st.session_state.get(EDITING) and PENDING not in st.session_state
    for i, turn in enumerate(turns):
        key = f"{cid}_{i}"
        with st.chat_message(turn.role):
            if turn.role == "user" and i == last_user and editing:
                edit_form(cid, i, turn.content)
                continue
            if turn.role == "user":
                st.markdown(escape_markdown(turn.content))
                if i == len(turns) - 1 and PENDING not in st.session_state:
                    failed = st.session_state.get(FAILED)
                    if failed and failed[0] == cid:  # why this question got no answer
                        st.error(message_markdown(failed[1]), icon=":material/error:")
                    else:
                        st.caption("Not answered.")
                    turn_actions(Turn("assistant", ""), key,
                                 last_question=(cid, i, turn.content))
                continue
            if turn.answer is not None:
                render_answer(turn.answer, key, stopped=turn.stopped)
            else:
                st.markdown(escape_markdown(turn.content))
                if turn.stopped:
                    st.caption(f":material/stop_circle: {STOPPED_NOTE}")
            last = (cid, last_user, turns[last_user].content) if (
                last_user is not None and i == len(turns) - 1) else None
            turn_actions(turn, key, last_question=last)


# --- asking --------------------------------------------------------------------------------------


def build_engine(app: App, options: ChatOptions) -> ChatEngine:
    """The engine with the sidebar's model and temperature."""
    if options.model == EXTRACT:
        engine = app.chat_engine(extract=True)
    else:
        engine = app.chat_engine(llm_named(options.model) if options.model else None)
    engine.temperature = options.temperature
    return engine


def _wait(slot: Any, label: str, events: Any) -> ChatEvent | None:
    """The next event, with a spinner and ``label`` in the answer's place until it comes."""
    with slot.container(), st.spinner(label, show_time=True):
        event: ChatEvent | None = next(events, None)
    return event


class Partial:
    """What has arrived of an answer: kept when it is cut short."""

    def __init__(self, question: str) -> None:
        self.question = question
        self.sources: SourcesEvent | None = None
        self.text = ""
        self.backend = ""
        self.mode = "generate"

    def answer(self) -> Answer:
        first = self.sources
        return Answer(question=self.question, text=self.text.strip(),
                      sources=list(first.sources) if first else [],
                      search_query=first.search_query if first else "",
                      backend=self.backend, left_out=first.left_out if first else 0,
                      mode="extract" if self.mode == "extract" else "generate")


def stream_answer(engine: ChatEngine, question: str, history: list[Message],
                  options: ChatOptions, partial: Partial) -> Answer:
    """The answer as it streams: a spinner until the sources, "Thinking…" until the first
    word, then the words with a cursor, then the checked answer; a Stop button throughout."""
    partial.backend, partial.mode = engine.backend, engine.mode
    st.button("Stop", key="stop_answer", icon=":material/stop_circle:", type="secondary",
              help="Stop the answer here; what it has written so far is kept")
    slot = st.empty()
    events = engine.stream_answer(question, history, options=options.search)
    try:
        first = _wait(slot, "Searching the documents…", events)
        assert isinstance(first, SourcesEvent)
        partial.sources = first
        if first.search_query.strip() != question.strip():
            st.caption(f":material/search: Searched for: {escape_markdown(first.search_query)}")
        numbers = [s.n for s in first.sources]
        placeholder = st.empty()
        label = ("Thinking…" if engine.llm is not None and first.sources
                 else "Choosing the sentences…")
        event = _wait(slot, label, events)
        slot.empty()
        answer: Answer | None = None
        while event is not None:
            if isinstance(event, TokenEvent):
                partial.text += event.text
                placeholder.markdown(streaming_markdown(partial.text, numbers) + CURSOR)
            elif isinstance(event, DoneEvent):
                answer = event.answer
            event = next(events, None)
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()  # cut short: the model stops generating
    assert answer is not None
    placeholder.empty()
    return answer


def ensure_conversation(store: ConversationStore, question: str, model: str | None) -> str:
    cid = st.session_state.get("conversation_id")
    if cid is None or store.get(cid) is None:
        cid = store.create(question, model=model)
        st.session_state.conversation_id = cid
        st.session_state[MODEL_OF] = cid
    return cid


def answer_pending(app: App, question: str, turns: list[Turn], options: ChatOptions) -> None:
    """Answer the question sent: stored at once; its answer stored when done, or as far as it
    got (marked stopped) when the run is cut short by Stop or any other click."""
    store = app.conversations
    cid = ensure_conversation(store, question, options.model)
    store.add_turn(cid, "user", question)
    with st.chat_message("user"):
        st.markdown(escape_markdown(question))
    partial = Partial(question)
    done = False
    with st.chat_message("assistant"), answering_lock():
        try:
            engine = build_engine(app, options)
            answer = stream_answer(engine, question, [t.message() for t in turns], options,
                                   partial)
            store.add_turn(cid, "assistant", answer.text, answer)
            done = True
        except RagError as exc:
            done = True  # the question stays, unanswered, with why: it can be asked again
            st.session_state[FAILED] = (cid, str(exc))
        finally:
            if not done:  # Stop, another click or the page left while it streamed
                stopped = partial.answer()
                store.add_turn(cid, "assistant", stopped.text, stopped, stopped=True)
    st.rerun()  # the sidebar lists the conversation, the page shows it from the store


def answering_lock() -> threading.Lock:
    """The session's lock held while a run answers (see the module's docstring)."""
    lock: threading.Lock = st.session_state.setdefault(ANSWERING, threading.Lock())
    return lock


def wait_for_answer_stored(seconds: float = 60.0) -> None:
    """When the previous run was cut short while answering, until its answer is stored."""
    lock = answering_lock()
    if lock.acquire(timeout=seconds):
        lock.release()


def _send() -> None:
    question = str(st.session_state.get("chat_question") or "").strip()
    if question and PENDING not in st.session_state:
        st.session_state[PENDING] = question
        st.session_state[EDITING] = False
        st.session_state.pop(FAILED, None)


def main() -> None:
    try:
        app = get_app()
    except RagError as exc:
        st.error(message_markdown(str(exc)))
        st.stop()
    wait_for_answer_stored()
    app = collection_picker(app)  # the collection (knowledge base) this chat asks: ui/collections.py
    options = sidebar(app)
    cid = st.session_state.get("conversation_id")
    turns = app.conversations.turns(cid) if cid else []
    pending = st.session_state.get(PENDING)
    if not turns and not pending:
        st.title("Chat with your documents")
        st.caption("Answers come only from your documents, with numbered sources. "
                   "Ask a follow-up: the conversation is taken into account.")
    if cid:
        render_turns(cid, turns)
    st.chat_input("Ask a question about your documents" if not pending else
                  "Answering… (Stop to ask something else)", key="chat_question",
                  on_submit=_send, disabled=bool(pending))
    if pending:
        del st.session_state[PENDING]  # answered once, even when this run is cut short
        answer_pending(app, pending, turns, options)


main()
