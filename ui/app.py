"""Chat page: ask the knowledge base, read the answer as it streams, check its sources.

Thin by design: everything it does goes through ``rag`` (ChatEngine); no logic lives here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

# `streamlit run ui/app.py` puts ui/ on sys.path, not the project; the package may be editable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import streamlit as st

from rag.chat import DoneEvent, SourcesEvent, TokenEvent
from rag.errors import RagError
from rag.types import Answer, Message
from ui.state import escape_markdown, get_app, get_llm_choice

st.set_page_config(page_title="Chat with your documents", page_icon="📚", layout="wide")


def render_sources(answer: Answer) -> None:
    if answer.refused or not answer.sources:
        return
    cited = {s.n for s in answer.cited_sources()}
    with st.expander(f"Sources ({len(answer.sources)})", expanded=True):
        for s in answer.sources:
            page = f", page {s.chunk.page}" if s.chunk.page is not None else ""
            mark = "" if s.n in cited else " · not cited"
            st.markdown(
                f"**[{s.n}] {escape_markdown(s.chunk.source)}{page}** "
                f"· score {s.chunk.score:.2f}{mark}"
            )
            snippet = " ".join(s.chunk.text.split())
            st.caption(escape_markdown(snippet[:400] + ("…" if len(snippet) > 400 else "")))


def sidebar() -> int:
    with st.sidebar:
        st.header("Knowledge base")
        try:
            app = get_app()
            st.caption(f"{app.store.count()} chunks · {app.store.location}")
            st.caption(f"Embedder: {app.embedder.model_id}")
        except RagError as exc:
            st.error(str(exc))
        try:
            choice = get_llm_choice()
            st.success(f"LLM: {choice.llm.name}")
            st.caption(choice.reason)
        except RagError as exc:
            st.error(str(exc))
        top_k = int(st.slider("Top-k", min_value=1, max_value=20,
                              value=get_app().settings.top_k, key="top_k"))
        if st.button("New chat", key="new_chat"):
            st.session_state.messages = []
            st.rerun()
    return top_k


def main() -> None:
    st.title("Chat with your documents")
    top_k = sidebar()
    messages: list[dict] = st.session_state.setdefault("messages", [])
    for msg in messages:
        with st.chat_message(msg["role"]):
            st.markdown(msg["content"])
            if msg.get("answer") is not None:
                render_sources(msg["answer"])

    question = st.chat_input("Ask a question about your documents")
    if not question:
        return
    history = [Message(m["role"], m["content"]) for m in messages]
    messages.append({"role": "user", "content": question})
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        try:
            engine = get_app().chat_engine(get_llm_choice().llm)
            events = engine.stream_answer(question, history, k=top_k)
            done: list[Answer] = []

            def tokens() -> Iterator[str]:
                for event in events:
                    if isinstance(event, TokenEvent):
                        yield event.text
                    elif isinstance(event, DoneEvent):
                        done.append(event.answer)

            with st.spinner("Searching the documents…"):
                first = next(events)
            assert isinstance(first, SourcesEvent)
            st.write_stream(tokens())
            answer = done[0]
        except RagError as exc:
            st.error(str(exc))
            messages.pop()
            return
        render_sources(answer)
    messages.append({"role": "assistant", "content": answer.text, "answer": answer})


main()
