"""The chat's sidebar list of conversations: open, search (titles and messages), rename, export
as Markdown with the sources, delete after a confirmation.

Storage is ``rag.conversations.ConversationStore``; the open conversation is
``st.session_state.conversation_id`` (None: a new chat).
"""

from __future__ import annotations

import re
import time

import streamlit as st

from rag.conversations import Conversation, ConversationStore
from ui.render import escape_markdown

SEARCH_KEY = "conversation_search"
CONFIRM_KEY = "conversation_confirm_delete"


def export_file_name(conversation: Conversation) -> str:
    """A file name from the title: letters, digits and dashes, never empty."""
    slug = re.sub(r"[^\w]+", "-", conversation.title.casefold()).strip("-_")[:50].rstrip("-_")
    return f"{slug or 'conversation'}.md"


def _open(cid: str | None) -> None:
    st.session_state.conversation_id = cid
    st.session_state.pop(CONFIRM_KEY, None)


def _confirm_delete(store: ConversationStore, conv: Conversation) -> None:
    """Asked in the list, in place of the conversation's row: deleting cannot be undone."""
    with st.container(border=True, key=f"confirm_{conv.id}"):
        messages = f" and its {conv.turns} messages" if conv.turns else ""
        st.markdown(f"Delete **{escape_markdown(conv.title)}**{messages}? This cannot be undone.")
        yes, no = st.columns(2)
        if yes.button("Delete", key=f"confirm_delete_{conv.id}", type="primary",
                      icon=":material/delete:", width="stretch"):
            store.delete(conv.id)
            if st.session_state.get("conversation_id") == conv.id:
                st.session_state.conversation_id = None
            st.session_state.pop(CONFIRM_KEY, None)
            st.toast(f"Deleted “{conv.title}”.", icon=":material/delete:")
            st.rerun()
        if no.button("Cancel", key=f"cancel_delete_{conv.id}", width="stretch"):
            st.session_state.pop(CONFIRM_KEY, None)
            st.rerun()


def _actions(store: ConversationStore, conv: Conversation) -> None:
    """The row's menu: rename, export, delete (which asks first)."""
    with st.popover("", icon=":material/more_vert:", type="tertiary",
                    help="Rename, export or delete"):
        with st.form(key=f"rename_form_{conv.id}", border=False):
            title = st.text_input("Title", value=conv.title, key=f"rename_{conv.id}",
                                  max_chars=200)
            if st.form_submit_button("Rename", icon=":material/edit:", width="stretch"):
                try:
                    store.rename(conv.id, title)
                except ValueError as exc:
                    st.error(str(exc))
                else:
                    st.rerun()
        st.download_button("Export as Markdown",
                           data=lambda: (store.export_markdown(conv.id) or "").encode(),
                           file_name=export_file_name(conv), mime="text/markdown",
                           key=f"export_{conv.id}", icon=":material/download:",
                           on_click="ignore", width="stretch",
                           help="The questions, answers and the file and page of every source")
        if st.button("Delete…", key=f"delete_{conv.id}", icon=":material/delete:",
                     width="stretch"):
            st.session_state[CONFIRM_KEY] = conv.id
            st.rerun()


def conversation_panel(store: ConversationStore) -> None:
    """New chat, a search box, then the conversations (most recently used first)."""
    current = st.session_state.get("conversation_id")
    if st.button("New chat", key="new_chat", icon=":material/add:", width="stretch"):
        _open(None)
        st.rerun()
    query = st.text_input("Search conversations", key=SEARCH_KEY, icon=":material/search:",
                          placeholder="Search titles and messages",
                          label_visibility="collapsed") or ""
    conversations = store.search(query)
    if not conversations:
        st.caption(f"No conversation mentions “{escape_markdown(query.strip())}”."
                   if query.strip() else "Your conversations appear here.")
    confirming = st.session_state.get(CONFIRM_KEY)
    for conv in conversations:
        if conv.id == confirming:
            _confirm_delete(store, conv)
            continue
        with st.container(key=f"conversation_row_{conv.id}"):
            _row(store, conv, current)


def _row(store: ConversationStore, conv: Conversation, current: str | None) -> None:
    """The title (a click opens the conversation) and its menu."""
    left, right = st.columns([6, 1], vertical_alignment="center", gap="small")
    if left.button(escape_markdown(conv.title), key=f"open_{conv.id}",
                   type="secondary" if conv.id == current else "tertiary",
                   help=f"{escape_markdown(conv.title)} · last used "  # a long title is cut
                   + time.strftime("%Y-%m-%d %H:%M", time.localtime(conv.updated_at)),
                   width="content"):  # left-aligned, like a list
        _open(conv.id)
        st.rerun()
    with right:
        _actions(store, conv)
