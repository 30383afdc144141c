"""Check that the manifest and Chroma agree for one folder, and repair where they do not.

- orphan chunks: in Chroma under the folder, listed by no manifest row (deleted on repair);
- missing chunks: listed by a manifest row, absent from Chroma (the file is re-indexed: the
  caller passes ``missing`` to ``IngestPipeline.sync(force=...)``);
- a damaged store (``readable_store``): one that cannot be opened, or whose reads fail (a cut
  HNSW file, a disk that filled up under Chroma), is dropped (an embedded one that cannot even
  be opened is moved aside) and built again from the files: every file becomes "missing".

Chunk ids are unique in Chroma, so a duplicate chunk shows up as an orphan: a second id for
text that a manifest row already lists under its own id.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.manifest import Manifest
from rag.errors import StoreError
from rag.store import ChromaStore

if TYPE_CHECKING:
    from rag.factory import App

log = logging.getLogger(__name__)


def readable_store(app: App, folder: Path, *, repair: bool) -> list[str]:
    """Make sure ``app.store`` can be read; rebuild it empty when it cannot (``repair``).

    Returns what was found and done, for the report. Without ``repair`` (a dry run) a damaged
    store is a ``StoreError`` that says to run ``--verify`` for real."""
    notes: list[str] = []
    try:
        store = app.store
    except StoreError as exc:  # cannot even be opened (a cut SQLite file)
        if not repair or app.settings.uses_chroma_server:
            raise StoreError(f"{exc} `rag ingest {folder} --verify` (without --dry-run) sets "
                             "it aside and rebuilds it from the files") from exc
        aside = _set_aside(app.settings.chroma_dir)
        app.__dict__.pop("store", None)
        store = app.store
        notes.append(f"verify: the index could not be opened ({exc}): moved to {aside} (delete "
                     "it once this run is done), rebuilding it from the files")
    else:
        try:
            store.probe()
        except StoreError as exc:
            if not repair:
                raise StoreError(f"the index is damaged ({exc}); `rag ingest {folder} --verify` "
                                 "(without --dry-run) rebuilds it from the files") from exc
            store.drop()
            notes.append(f"verify: the index could not be read ({exc}): dropped, rebuilding it "
                         "from the files")
    if notes:
        root = str(folder.resolve())
        others = sorted({r.root for r in app.manifest.records() if r.root != root
                         and r.status == "indexed"})
        if others:
            names = ", ".join(others[:3]) + (f" (+{len(others) - 3})" if len(others) > 3 else "")
            notes.append(f"verify: {len(others)} other folders were in that index: `rag ingest` "
                         f"each to index it again ({names})")
    return notes


def _set_aside(chroma_dir: Path) -> Path:
    """Rename a store Chroma cannot open, so a fresh one is made in its place."""
    aside = chroma_dir.with_name(f"{chroma_dir.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    chroma_dir.rename(aside)
    try:  # Chroma caches one client per path: forget the one that failed
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient.clear_system_cache()
    except Exception as exc:  # pragma: no cover - a Chroma without that cache
        log.debug("cannot clear Chroma's client cache: %s", exc)
    return aside


@dataclass
class VerifyReport:
    folder: str
    files: int = 0
    chunks: int = 0  # chunks in Chroma under the folder before any repair
    orphans: list[str] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)  # source -> chunks missing
    journal: int = 0  # chunks left by an interrupted run, deleted first
    repaired: bool = False
    notes: list[str] = field(default_factory=list)  # a damaged store found and rebuilt

    @property
    def rebuilt(self) -> bool:
        return bool(self.notes)

    @property
    def agrees(self) -> bool:
        return not self.orphans and not self.missing and not self.journal

    def lines(self) -> list[str]:
        """What was found and what was done, for the CLI."""
        if self.agrees and not self.notes:
            return [f"verify: manifest and index agree ({self.files} files, "
                    f"{self.chunks} chunks)"]
        done = self.repaired
        out = list(self.notes)
        if self.journal:
            out.append(f"verify: {self.journal} chunks left by an interrupted ingest: deleted")
        if self.orphans:
            verb = "deleted" if done else "would delete (run without --dry-run)"
            out.append(f"verify: {len(self.orphans)} orphan chunks (no manifest row): {verb}")
        if self.missing:
            names = ", ".join(sorted(self.missing)[:5])
            more = f" (+{len(self.missing) - 5})" if len(self.missing) > 5 else ""
            count = sum(self.missing.values())
            verb = "re-indexed" if done else "would re-index"
            out.append(f"verify: {count} missing chunks in {len(self.missing)} files: "
                       f"{verb} {names}{more}")
        return out

    def to_dict(self) -> dict[str, object]:
        return {"files": self.files, "chunks": self.chunks, "orphans": len(self.orphans),
                "missing": self.missing, "journal": self.journal, "repaired": self.repaired,
                "rebuilt": self.rebuilt, "notes": self.notes}


def verify_folder(store: ChromaStore, manifest: Manifest, folder: Path, *,
                  repair: bool) -> VerifyReport:
    """Compare manifest rows and Chroma ids under ``folder``; delete orphans when ``repair``."""
    root = str(folder.resolve())
    report = VerifyReport(folder=root)
    if repair:
        for source, ids in manifest.journal(root):
            rec = manifest.get(root, source)
            keep = set(rec.chunk_ids) if rec is not None else set()
            extra = [i for i in ids if i not in keep]
            present = {r[0] for r in store.records(extra)} if extra else set()
            store.delete(extra)
            report.journal += len(present)
            manifest.clear_journal(root, [source])
    records = manifest.records(root)
    report.files = sum(1 for r in records if r.status != "skipped")
    expected: dict[str, str] = {}
    for rec in records:
        for cid in rec.chunk_ids:
            expected[cid] = rec.source
    in_store = set(store.ids_for_root(root))
    report.chunks = len(in_store)
    report.orphans = sorted(in_store - set(expected))
    for cid, source in expected.items():
        if cid not in in_store:
            report.missing[source] = report.missing.get(source, 0) + 1
    if repair and report.orphans:
        store.delete(report.orphans)
    report.repaired = repair
    log.info("verify %s: %d orphans, %d files with missing chunks", root, len(report.orphans),
             len(report.missing))
    return report
