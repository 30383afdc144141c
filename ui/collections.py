"""Collections (knowledge bases) in the browser: which one the library page fills, and which one
each chat asks (``collection_picker``, called by the chat page).

A widget's value is dropped by Streamlit when a page without that widget runs, so each choice is
also kept under a plain session key and given back to its widget when the page runs again.
"""

from __future__ import annotations

import streamlit as st

from application.collections import (
    CollectionInfo,
    collection_app,
    collection_names,
    create_collection,
    delete_collection,
)
from application.factory import App
from rag.errors import RagError
from ui.render import escape_markdown, message_markdown
from ui.state import get_app

CHAT_CHOICE = "chat_collection"  # the chat sidebar's selectbox
LIBRARY_CHOICE = "library_collection"  # the library page's selectbox
_KEPT = "_kept_"  # prefix of the plain session keys that outlive the widgets
_BY_CHAT = "collection_of_chat"  # conversation id -> the collection it asked


NOTICE = "library_notice"


def notify(kind: str, text: str) -> None:
    """A message for the library page's next run (``show_notices`` draws them)."""
    st.session_state.setdefault(NOTICE, []).append((kind, text))


def show_notices() -> None:
    for kind, text in st.session_state.pop(NOTICE, []):
        icon = {"success": ":material/check_circle:", "warning": ":material/warning:",
                "error": ":material/error:"}[kind]
        getattr(st, kind)(message_markdown(text), icon=icon)


@st.cache_resource(show_spinner=False)
def _collection_app(name: str) -> App:
    return collection_app(get_app(), name)


def app_of(name: str) -> App:
    """The App of collection ``name`` (the start-up App for the default one), built once."""
    base = get_app()
    return base if name == base.settings.collection else _collection_app(name)


def forget_collection_apps() -> None:
    """After a collection was created or deleted: Apps holding its old handles are rebuilt."""
    _collection_app.clear()


def names_or_default(app: App, *, quiet: bool = False) -> list[str]:
    """The collections; when Chroma cannot say (a server down), the current one alone, with
    the reason unless ``quiet`` (the chat's sidebar says it already)."""
    try:
        return collection_names(app)
    except RagError as exc:
        if not quiet:
            st.error(message_markdown(str(exc)), icon=":material/error:")
        return [app.settings.collection]


def _restore(key: str, names: list[str], default: str) -> None:
    """Give the widget ``key`` its kept value (or ``default``) before it is drawn."""
    kept = st.session_state.get(_KEPT + key, default)
    st.session_state[key] = kept if kept in names else default


def _keep(key: str) -> None:
    st.session_state[_KEPT + key] = st.session_state[key]


def choose(key: str, name: str) -> None:
    """Select ``name`` in the selectbox ``key`` on its next run."""
    st.session_state[_KEPT + key] = name
    st.session_state.pop(key, None)


def _label(app: App, name: str) -> str:
    return f"{name} (default)" if name == app.settings.collection else name


def collection_picker(app: App) -> App:
    """The chat sidebar's collection: which knowledge base this chat asks. Kept per chat (going
    back to a conversation selects the collection it asked). Returns that collection's App."""
    names = names_or_default(app, quiet=True)
    cid = st.session_state.get("conversation_id")
    by_chat: dict[int | str, str] = st.session_state.setdefault(_BY_CHAT, {})
    if st.session_state.get("_picker_chat") != cid:  # another conversation opened
        st.session_state["_picker_chat"] = cid
        if cid in by_chat:
            st.session_state[_KEPT + CHAT_CHOICE] = by_chat[cid]
    _restore(CHAT_CHOICE, names, app.settings.collection)
    with st.sidebar:
        name = st.selectbox(
            "Collection", names, key=CHAT_CHOICE, on_change=_keep, args=(CHAT_CHOICE,),
            format_func=lambda n: _label(app, n), help="The knowledge base this chat asks. The "
            "Library page creates collections and adds documents to them.")
    if cid is not None:
        by_chat[cid] = name
    try:
        return app_of(name)
    except RagError as exc:
        st.error(message_markdown(str(exc)), icon=":material/error:")
        return app


# --- the library page's collection bar ------------------------------------------------------------


def _create(base: App) -> None:
    """The "Create" button's callback (before the page runs again, so the new collection is
    listed and selected at once)."""
    name = st.session_state.get("new_collection_name", "").strip()
    try:
        create_collection(base, name)
    except RagError as exc:
        notify("error", str(exc))
        return
    forget_collection_apps()
    choose(LIBRARY_CHOICE, name)
    st.session_state["new_collection_name"] = ""
    notify("success", f"Created collection {name}: add documents to it below, and pick it in "
                      "the chat's sidebar.")


def _delete(base: App, name: str) -> None:
    st.session_state.pop("collection_delete_pending", None)
    try:
        info = delete_collection(base, name)
    except (RagError, OSError) as exc:
        notify("error", f"Could not delete collection {name}: {exc}")
        return
    forget_collection_apps()
    choose(LIBRARY_CHOICE, base.settings.collection)
    notify("success", f"Deleted collection {name} ({info.describe()}) and its uploaded files.")


def _ask_delete(name: str) -> None:
    st.session_state["collection_delete_pending"] = name


def _cancel_delete() -> None:
    st.session_state.pop("collection_delete_pending", None)


def library_collection_bar(base: App) -> App:
    """Choose, create or delete a collection on the library page; the chosen one's App."""
    names = names_or_default(base)
    _restore(LIBRARY_CHOICE, names, base.settings.collection)
    left, middle, right = st.columns([3, 3, 1], vertical_alignment="bottom")
    name = left.selectbox(
        "Collection", names, key=LIBRARY_CHOICE, on_change=_keep, args=(LIBRARY_CHOICE,),
        format_func=lambda n: _label(base, n),
        help="A knowledge base: its own documents, index and embedding model. Each chat picks "
             "one in its sidebar; `rag --collection NAME` uses one from the command line.")
    with middle.popover("New collection", icon=":material/library_add:", width="stretch"):
        st.text_input("Name", key="new_collection_name", placeholder="e.g. research-papers",
                      help="3 to 63 letters, digits, '-', '_' or '.'")
        st.button("Create", key="create_collection", type="primary", on_click=_create,
                  args=(base,), icon=":material/add:")
    right.button("Delete", key="delete_collection", icon=":material/delete_forever:",
                 help="Delete this collection", width="stretch", on_click=_ask_delete,
                 args=(name,))
    if st.session_state.get("collection_delete_pending") == name:
        confirm_collection_delete(base, name)
    try:
        return app_of(name)
    except RagError as exc:
        st.error(message_markdown(str(exc)), icon=":material/error:")
        return base


def confirm_collection_delete(base: App, name: str) -> None:
    try:
        from application.collections import collection_info

        info: CollectionInfo | None = collection_info(base, name)
    except RagError:
        info = None
    what = f" ({info.describe()})" if info else ""
    with st.container(border=True, key="collection_delete_confirm"):
        st.warning(
            f"Delete collection **{escape_markdown(name)}**{what}? Its chunks, manifest and BM25 "
            "index are deleted, and the files uploaded into it are removed from disk. Folders "
            "ingested with `rag ingest` stay.", icon=":material/warning:")
        with st.container(horizontal=True):
            st.button("Delete the collection", key="collection_delete_yes", type="primary",
                      on_click=_delete, args=(base, name), icon=":material/delete_forever:")
            st.button("Cancel", key="collection_delete_no", on_click=_cancel_delete)


def chat_app() -> App:
    """The App of the collection the open chat asks (as ``collection_picker`` last chose it)."""
    base = get_app()
    name = st.session_state.get(_KEPT + CHAT_CHOICE, base.settings.collection)
    try:
        return app_of(name)
    except RagError:
        return base
