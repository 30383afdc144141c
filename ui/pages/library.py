"""Library page: choose, create or delete a collection (knowledge base); upload documents into
it, see what is indexed, delete a document (after a confirmation), inspect a document's chunks
as the index holds them, re-sync a folder.

Uploads are saved (sanitised names, bounded size, known types) into the collection's upload
folder (``DATA_DIR/uploads`` for the default one), which is then synced like any folder
(``app.pipeline.sync``); the table comes from the manifest. A file that would be refused says
why next to its name as soon as it is chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from application.factory import App
from ingest.lock import ingest_lock
from rag.errors import RagError
from rag.uploads import (
    SavedUpload,
    UploadPolicy,
    UploadRejectedError,
    is_inside,
    save_upload,
    upload_problem,
)
from ui.collections import library_collection_bar, notify, show_notices
from ui.render import escape_markdown, message_markdown
from ui.state import get_app


def accepted_suffixes() -> list[str]:
    from ingest.loaders import LOADERS

    return sorted(LOADERS)


def sync_folder(app: App, folder: Path) -> str:
    """Sync ``folder`` into the index with a progress bar; the report's one-line summary."""
    bar = st.progress(0.0, text=f"Indexing {escape_markdown(folder.name)}…")

    def progress(done: int, total: int, source: str) -> None:
        fraction = done / total if total else 1.0
        label = f"{done}/{total} · {escape_markdown(source)}" if source else f"{done}/{total}"
        bar.progress(min(fraction, 1.0), text=label)

    try:
        with ingest_lock(app.settings.data_dir, str(folder)):
            report = app.pipeline.sync(folder, progress=progress)
    finally:
        # Every Streamlit run is a new thread, and loader processes are only reused by the
        # thread that started them: stop them now rather than keep them idle until then.
        app.pipeline.close()
        bar.empty()
    failed = "; ".join(f"{k}: {v}" for k, v in report.failed.items())
    return report.summary() + (f" Failed: {failed}" if failed else "")


# --- upload --------------------------------------------------------------------------------------


def upload_section(app: App) -> None:
    s = app.settings
    suffixes = accepted_suffixes()
    key = f"uploader_{st.session_state.get('uploader_round', 0)}"
    # No ``type=`` filter: the widget would refuse other files with only a red icon (the reason
    # on hover); they are let through and the reason is written next to the name below.
    files = st.file_uploader(
        f"Add documents to {app.settings.collection}", accept_multiple_files=True, key=key,
        help=f"{', '.join(suffixes)}; up to {s.upload_max_mb:g} MB per file "
             f"(RAG_UPLOAD_MAX_MB). Saved in {s.uploads_dir} and indexed.",
    )
    if not files:
        return
    problems = {f.file_id: rejected_upload(f, app) for f in files}
    files = [f for f in files if not problems[f.file_id]]
    if not files:
        return
    if not st.button(f"Add {len(files)} file{'s' * (len(files) != 1)} to the library",
                     key="upload_submit", type="primary", icon=":material/upload:"):
        return
    for problem in filter(None, problems.values()):  # still said once the uploader is cleared
        notify("warning", f"Not added: {problem}")
    add_uploads(app, files)
    st.session_state.uploader_round = st.session_state.get("uploader_round", 0) + 1
    st.rerun()


def rejected_upload(f: UploadedFile, app: App) -> str | None:
    """Why ``f`` would be refused (shown under the uploader at once), or None."""
    policy = UploadPolicy.of(app.settings.upload_max_mb, accepted_suffixes())
    problem = upload_problem(f.name, f.size, policy)
    if problem:
        st.error(message_markdown(f"Not added: {problem}"), icon=":material/block:")
    return problem


def add_uploads(app: App, files: Sequence[UploadedFile]) -> None:
    """Save each file into the upload folder (or say why not), then sync that folder once."""
    s = app.settings
    policy = UploadPolicy.of(s.upload_max_mb, accepted_suffixes())
    saved: list[SavedUpload] = []
    for f in files:
        try:
            upload = save_upload(s.uploads_dir, f.name, f, policy)
        except UploadRejectedError as exc:
            notify("warning", str(exc))
            continue
        except OSError as exc:
            notify("error", f"{f.name!r} could not be saved in {s.uploads_dir}: {exc.strerror}")
            continue
        saved.append(upload)
        if upload.name != f.name:
            notify("warning", f"{f.name!r} was saved as {upload.name}: folders and unsafe "
                              "characters are removed from uploaded file names.")
    if saved:
        names = ", ".join(x.name + " (replaced)" * x.replaced for x in saved)
        run_and_report(lambda: sync_folder(app, s.uploads_dir), f"Saved {names}.")


def run_and_report(action: Callable[[], str], prefix: str = "") -> None:
    try:
        notify("success", f"{prefix} {action()}".strip())
    except RagError as exc:
        notify("error", f"{prefix} {exc}".strip())


# --- table ---------------------------------------------------------------------------------------


def folder_label(app: App, root: str) -> str:
    uploads = app.settings.uploads_dir.resolve()
    return "uploads" if Path(root) == uploads else Path(root).name


def documents_table(app: App) -> list[Any]:
    import pandas as pd

    records = app.manifest.records()
    if not records:
        st.info("No documents yet: add some above, or run `rag ingest DIR`.",
                icon=":material/info:")
        return []
    rows = [{
        "Document": r.source,
        "Folder": folder_label(app, r.root),
        "Type": Path(r.source).suffix.lstrip(".").upper() or "?",
        "Pages": r.pages,
        "Chunks": len(r.chunk_ids),
        "Size (KB)": round(r.size / 1024, 1),
        "Status": r.status,
        "Error": r.reason,
        "Ingested at": pd.to_datetime(r.ingested_at, unit="s") if r.ingested_at else None,
    } for r in records]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="documents",
                 column_config={
                     "Ingested at": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                     "Error": st.column_config.TextColumn(width="medium"),
                 })
    return records


def is_upload(app: App, rec: Any) -> bool:
    """Whether the document's file is one uploaded here (deleting it removes the file)."""
    uploads = app.settings.uploads_dir
    return Path(rec.root) == uploads.resolve() and is_inside(uploads, Path(rec.root) / rec.source)


def _ask_delete() -> None:
    st.session_state["delete_pending"] = st.session_state.get("delete_choice")


def _cancel_delete() -> None:
    st.session_state.pop("delete_pending", None)


def _delete(app: App, rec: Any) -> None:
    """The confirmation's callback: it runs before the page does, so the table, the box and
    the inspector are drawn without the document at once."""
    st.session_state.pop("delete_pending", None)
    st.session_state["delete_choice"] = None
    try:
        with ingest_lock(app.settings.data_dir, f"delete {rec.source}"):
            removed_file = is_upload(app, rec)
            if removed_file:
                (Path(rec.root) / rec.source).unlink(missing_ok=True)
            app.pipeline.delete_document(rec.root, rec.source)
        note = ("" if removed_file else " Its file stays in its folder: ingesting that folder "
                "again brings it back.")
        notify("success", f"Deleted {rec.source} and its {len(rec.chunk_ids)} chunks.{note}")
    except (RagError, OSError) as exc:
        notify("error", f"Could not delete {rec.source}: {exc}")
    finally:
        app.pipeline.close()


def delete_section(app: App, records: list[Any]) -> None:
    if not records:
        return
    labels = {f"{r.source}  ({folder_label(app, r.root)})": r for r in records}
    if st.session_state.get("delete_choice") not in labels:
        st.session_state["delete_choice"] = None  # deleted, or another collection's
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    label = left.selectbox("Delete a document", list(labels), key="delete_choice", index=None,
                           placeholder="Choose a document…")
    right.button("Delete", key="delete_doc", icon=":material/delete:", disabled=label is None,
                 width="stretch", on_click=_ask_delete)
    if label is None or st.session_state.get("delete_pending") != label:
        return
    rec = labels[label]
    if is_upload(app, rec):
        consequence = (f"The uploaded file is removed from disk "
                       f"({Path(rec.root) / rec.source}).")
    else:
        consequence = (f"Its file stays in {rec.root}: ingesting that folder again brings it "
                       "back.")
    with st.container(border=True, key="delete_confirm_box"):
        st.warning(message_markdown(f"Delete {rec.source} and its {len(rec.chunk_ids)} chunks "
                                    f"from the index? {consequence}"),
                   icon=":material/warning:")
        with st.container(horizontal=True):
            st.button("Delete", key="delete_confirm", type="primary", on_click=_delete,
                      args=(app, rec), icon=":material/delete:")
            st.button("Cancel", key="delete_cancel", on_click=_cancel_delete)


# --- chunk inspector -----------------------------------------------------------------------------


INSPECT_PAGE = 20  # chunks shown at once by the inspector


def inspector_section(app: App, records: list[Any]) -> None:
    """One document's chunks as the index holds them: page, heading, text, size."""
    from application.inspect import document_chunks

    indexed = [r for r in records if r.status == "indexed"]
    if not indexed:
        return
    st.subheader("Chunks of a document")
    labels = {f"{r.source}  ({folder_label(app, r.root)})": r for r in indexed}
    if st.session_state.get("inspect_choice") not in labels:
        st.session_state["inspect_choice"] = None
    label = st.selectbox("Document", list(labels), key="inspect_choice", index=None,
                         placeholder="Choose a document to see its chunks…",
                         help="What the index holds for it: check the parsing before asking.")
    if label is None:
        return
    rec = labels[label]
    try:
        doc = document_chunks(app, rec.root, rec.source)
    except RagError as exc:
        st.error(message_markdown(str(exc)), icon=":material/error:")
        return
    pages = {c.page for c in doc.chunks if c.page is not None}
    page_note = f" from {len(pages)} page{'s' * (len(pages) != 1)}" if pages else ""
    st.caption(f"{doc.count} chunk{'s' * (doc.count != 1)}{page_note}")
    if not doc.consistent:
        st.warning(f"The manifest records {doc.expected} chunks for this document but the index "
                   f"holds {doc.count}: `rag ingest {rec.root} --verify` repairs it.",
                   icon=":material/warning:")
    first = 0
    if doc.count > INSPECT_PAGE:
        starts = list(range(0, doc.count, INSPECT_PAGE))
        first = st.selectbox(
            "Chunks", starts, key="inspect_range",
            format_func=lambda i: f"{i + 1}–{min(i + INSPECT_PAGE, doc.count)} of {doc.count}")
    for c in doc.chunks[first:first + INSPECT_PAGE]:
        with st.container(border=True, key=f"chunk_{c.n}"):
            page = f" · page {c.page}" if c.page is not None else ""
            heading = f" · {escape_markdown(c.heading)}" if c.heading else ""
            st.caption(f"**#{c.n}**{page}{heading} · {c.tokens} tokens")
            # the text as the index holds it, Markdown and all: not rendered
            st.code(c.text, language=None, wrap_lines=True)


def resync_section(app: App, records: list[Any]) -> None:
    uploads = str(app.settings.uploads_dir.resolve())
    folders = list(dict.fromkeys([uploads, *(r.root for r in records)]))
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    folder = left.selectbox("Re-sync a folder (new and changed files are indexed, removed ones "
                            "deleted)", folders, key="resync_choice",
                            format_func=lambda f: "uploads" if f == uploads else f)
    if right.button("Re-sync", key="resync", icon=":material/sync:", width="stretch"):
        path = Path(folder)
        if not path.is_dir():
            notify("error", f"{folder} no longer exists; its documents can be deleted above.")
        else:
            run_and_report(lambda: sync_folder(app, path))
        st.rerun()


def main() -> None:
    st.title("Library")
    try:
        base = get_app()
    except RagError as exc:
        st.error(message_markdown(str(exc)))
        st.stop()
    app = library_collection_bar(base)
    show_notices()
    app.settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    upload_section(app)
    st.subheader("Documents")
    try:
        records = documents_table(app)
    except Exception as exc:  # a manifest that cannot be read: say where it is
        st.error(message_markdown(f"Cannot read the manifest {app.settings.manifest_path}: {exc}"))
        records = []
    delete_section(app, records)
    resync_section(app, records)
    inspector_section(app, records)


main()
