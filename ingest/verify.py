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
from dataclasses import dataclass, field
from pathlib import Path

from ingest.manifest import Manifest
from rag.store import ChromaStore

log = logging.getLogger(__name__)


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
