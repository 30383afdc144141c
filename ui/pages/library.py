"""Library page: upload documents, see what is indexed, delete a document, re-sync a folder.

Uploads are saved (sanitised names, bounded size, known types) into ``DATA_DIR/uploads``,
which is then synced like any folder (``app.pipeline.sync``); the table comes from the manifest.
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
from rag.uploads import SavedUpload, UploadPolicy, UploadRejectedError, is_inside, save_upload
from ui.render import escape_markdown, message_markdown
from ui.state import get_app

NOTICE = "library_notice"


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


def notify(kind: str, text: str) -> None:
    st.session_state.setdefault(NOTICE, []).append((kind, text))


def show_notices() -> None:
    for kind, text in st.session_state.pop(NOTICE, []):
        icon = {"success": ":material/check_circle:", "warning": ":material/warning:",
                "error": ":material/error:"}[kind]
        getattr(st, kind)(message_markdown(text), icon=icon)


# --- upload --------------------------------------------------------------------------------------


def upload_section(app: App) -> None:
    s = app.settings
    suffixes = accepted_suffixes()
    key = f"uploader_{st.session_state.get('uploader_round', 0)}"
    files = st.file_uploader(
        "Add documents", type=[x.lstrip(".") for x in suffixes], accept_multiple_files=True,
        key=key,
        help=f"Up to {s.upload_max_mb:g} MB per file (RAG_UPLOAD_MAX_MB). Saved in "
             f"{s.uploads_dir} and indexed.",
    )
    if not files:
        return
    if not st.button(f"Add {len(files)} file{'s' * (len(files) != 1)} to the library",
                     key="upload_submit", type="primary", icon=":material/upload:"):
        return
    add_uploads(app, files)
    st.session_state.uploader_round = st.session_state.get("uploader_round", 0) + 1
    st.rerun()


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


def delete_section(app: App, records: list[Any]) -> None:
    if not records:
        return
    labels = {f"{r.source}  ({folder_label(app, r.root)})": r for r in records}
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    label = left.selectbox("Delete a document", list(labels), key="delete_choice", index=None,
                           placeholder="Choose a document…")
    if right.button("Delete", key="delete_doc", icon=":material/delete:", disabled=label is None,
                    width="stretch") and label is not None:
        rec = labels[label]
        uploads = app.settings.uploads_dir
        try:
            with ingest_lock(app.settings.data_dir, f"delete {rec.source}"):
                path = Path(rec.root) / rec.source
                removed_file = False
                if Path(rec.root) == uploads.resolve() and is_inside(uploads, path):
                    path.unlink(missing_ok=True)
                    removed_file = True
                app.pipeline.delete_document(rec.root, rec.source)
            note = ("" if removed_file else " Its file stays in its folder: ingesting that folder "
                    "again brings it back.")
            notify("success", f"Deleted {rec.source} and its {len(rec.chunk_ids)} chunks.{note}")
        except (RagError, OSError) as exc:
            notify("error", f"Could not delete {rec.source}: {exc}")
        st.session_state.pop("delete_choice", None)
        st.rerun()


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
        app = get_app()
    except RagError as exc:
        st.error(message_markdown(str(exc)))
        st.stop()
    app.settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    show_notices()
    upload_section(app)
    st.subheader("Documents")
    try:
        records = documents_table(app)
    except Exception as exc:  # a manifest that cannot be read: say where it is
        st.error(message_markdown(f"Cannot read the manifest {app.settings.manifest_path}: {exc}"))
        records = []
    delete_section(app, records)
    resync_section(app, records)


main()
