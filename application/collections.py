"""Knowledge bases (collections): several per data folder, each its own Chroma collection (with
the embedding model that built it recorded), manifest, BM25 index and upload folder.

The default collection (``documents``, or RAG_COLLECTION) keeps its files where a data folder
kept them before there were several: DATA_DIR/manifest.sqlite3 and DATA_DIR/uploads; any other
lives in DATA_DIR/collections/NAME. Every collection's BM25 index is DATA_DIR/lexical/NAME.

`rag collections` lists them, `rag collections delete NAME` deletes one (it asks, or --yes);
`rag --collection NAME ingest|search|ask|status` works in one. The library page creates, fills
and deletes them through the same functions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.config import collection_name_problem
from rag.errors import RagError

if TYPE_CHECKING:
    from application.factory import App


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    documents: int  # files in its manifest (indexed, skipped or failed)
    chunks: int  # chunks in Chroma
    embedder: str | None  # the embedding model that built it (None: empty, not created yet)
    current: bool  # the one RAG_COLLECTION or --collection selects

    def describe(self) -> str:
        """``3 documents, 41 chunks`` as a sentence part."""
        docs = f"{self.documents} document{'s' * (self.documents != 1)}"
        return f"{docs}, {self.chunks} chunk{'s' * (self.chunks != 1)}"


def check_name(name: str) -> str:
    """``name`` stripped, or a ``RagError`` that says which names are allowed."""
    name = name.strip()
    problem = collection_name_problem(name)
    if problem:
        raise RagError(problem)
    return name


def collection_app(app: App, name: str) -> App:
    """The App of collection ``name`` with ``app``'s settings (its loaded embedding model is
    shared, not loaded again)."""
    from application.factory import App

    name = check_name(name)
    if name == app.settings.collection:
        return app
    other = App(app.settings.model_copy(update={"collection": name}))
    if "embedder" in app.__dict__:  # cached_property: reuse the loaded model
        other.__dict__["embedder"] = app.embedder
    return other


def _documents(manifest_path: Path) -> int:
    """Files in a manifest, without creating one where there is none."""
    from ingest.manifest import Manifest

    if not manifest_path.exists():
        return 0
    manifest = Manifest(manifest_path)
    try:
        return len(manifest.records())
    finally:
        manifest.close()


def collection_names(app: App) -> list[str]:
    """Every collection of the data folder's Chroma, and the current one even when empty."""
    names = set(app.store.collection_names())
    folder = app.settings.data_dir / "collections"
    if folder.is_dir():  # created here, Chroma collection not made yet (or a failed create)
        names |= {p.name for p in folder.iterdir() if (p / "manifest.sqlite3").exists()}
    names.add(app.settings.collection)
    return sorted(names)


def collection_info(app: App, name: str) -> CollectionInfo:
    other = collection_app(app, name)
    embedder, _ = other.store.embedder_record()
    return CollectionInfo(name=name, documents=_documents(other.settings.manifest_path),
                          chunks=other.store.count(), embedder=embedder,
                          current=name == app.settings.collection)


def list_collections(app: App) -> list[CollectionInfo]:
    return [collection_info(app, name) for name in collection_names(app)]


def create_collection(app: App, name: str) -> App:
    """Create an empty collection named ``name``, recording the embedding model; its App."""
    name = check_name(name)
    if name in app.store.collection_names():
        raise RagError(f"a collection named {name!r} exists already: choose it, or pick "
                       "another name")
    other = collection_app(app, name)
    other.store.open_for_writing(other.embedder.model_id, other.embedder.dimension)
    other.settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    return other


def delete_collection(app: App, name: str) -> CollectionInfo:
    """Delete collection ``name``: its chunks, manifest, BM25 index and uploaded files. Folders
    ingested with `rag ingest DIR` are not touched. What was deleted is returned."""
    from ingest.lock import ingest_lock

    name = check_name(name)
    if name not in collection_names(app):
        raise RagError(f"there is no collection {name!r}: `rag collections` lists them")
    other = collection_app(app, name)
    info = collection_info(app, name)
    s = other.settings
    with ingest_lock(s.data_dir, f"delete collection {name}"):
        if other.store.exists():
            other.store.drop(f"delete the collection {name!r}")
        if "pipeline" in other.__dict__:
            other.pipeline.close()
        if "manifest" in other.__dict__:
            other.manifest.close()
        for built in ("pipeline", "manifest", "lexical", "retriever"):  # the App stays usable
            other.__dict__.pop(built, None)
        shutil.rmtree(s.data_dir / "lexical" / name, ignore_errors=True)
        if s.collection_dir == s.data_dir:  # the default collection: only its own files
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{s.manifest_path}{suffix}").unlink(missing_ok=True)
            shutil.rmtree(s.uploads_dir, ignore_errors=True)
        else:
            shutil.rmtree(s.collection_dir, ignore_errors=True)
    return info


# --- `rag collections` ---------------------------------------------------------------------------


def add_collections_parser(sub: argparse._SubParsersAction,
                           app_of: Callable[[argparse.Namespace], App]) -> None:
    """`rag collections [delete NAME [--yes]]`; ``app_of`` builds the App of the CLI's options."""
    p = sub.add_parser("collections", help="list the collections (knowledge bases), or delete one")
    p.add_argument("--json", action="store_true")
    actions = p.add_subparsers(dest="action")
    d = actions.add_parser("delete", help="delete a collection: its chunks, manifest, BM25 index "
                           "and uploaded files (the folders you ingested stay)")
    d.add_argument("name")
    d.add_argument("--yes", action="store_true", help="do not ask")
    p.set_defaults(func=lambda args: cmd_collections(args, app_of(args)))


def cmd_collections(args: argparse.Namespace, app: App) -> int:
    from rag.terminal import printable

    if getattr(args, "action", None) == "delete":
        return _delete(app, args)
    infos = list_collections(app)
    if args.json:
        sys.stdout.write(json.dumps([asdict(i) for i in infos], indent=2) + "\n")
        return 0
    width = max(len("collection"), *(len(i.name) + 2 for i in infos))
    print(f"{'collection'.ljust(width)}  {'documents':>9}  {'chunks':>7}  embedding model")
    for i in infos:
        name = f"{i.name} *" if i.current else i.name
        print(f"{printable(name).ljust(width)}  {i.documents:>9}  {i.chunks:>7}  "
              f"{printable(i.embedder or '(empty)')}")
    print("* the current one (RAG_COLLECTION, or --collection NAME)")
    return 0


def _delete(app: App, args: argparse.Namespace) -> int:
    name = check_name(args.name)
    if name not in collection_names(app):
        raise RagError(f"there is no collection {name!r}: `rag collections` lists them")
    info = collection_info(app, name)
    if not args.yes:
        sys.stderr.write(f"Delete collection {name!r} ({info.describe()}) with its BM25 index and "
                         "uploaded files? The folders you ingested stay. [y/N] ")
        sys.stderr.flush()
        answer = sys.stdin.readline()
        if not answer:
            sys.stderr.write("\n")
            raise RagError(f"collection {name!r} not deleted: nothing answered the question; "
                           "pass --yes to delete without asking")
        if answer.strip().lower() not in ("y", "yes"):
            print(f"collection {name!r} not deleted", file=sys.stderr)
            return 1
    delete_collection(app, name)
    print(f"deleted collection {name!r} ({info.describe()})")
    return 0
