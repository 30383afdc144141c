"""The crash journal: writing one file's chunks so that a run killed at any point is completed
by the next one, and that completion (recovery).

Per file, the chunk ids about to exist are journalled in the manifest, chunks are upserted under
deterministic ids, the manifest row is committed, stale chunks are deleted, and the journal row
is cleared. The next sync first deletes any journalled chunk that its manifest row does not
list, so a run killed at any point (SIGKILL included) is completed by the next one as if it had
never been interrupted.
"""

from __future__ import annotations

import logging

import numpy as np

from ingest.manifest import FileRecord, Manifest
from rag.store import ChromaStore
from rag.types import Chunk

__all__ = ["Journal"]

log = logging.getLogger(__name__)


class Journal:
    """Journalled writes and deletes of one file's chunks in ``store``, rows in ``manifest``."""

    def __init__(self, store: ChromaStore, manifest: Manifest) -> None:
        self.store = store
        self.manifest = manifest

    def recover(self, root: str) -> int:
        """Delete chunks a killed run wrote without committing them (see the module docstring)."""
        deleted = 0
        for source, ids in self.manifest.journal(root):
            rec = self.manifest.get(root, source)
            keep = set(rec.chunk_ids) if rec is not None else set()
            extra = [i for i in ids if i not in keep]
            self.store.delete(extra)
            deleted += len(extra)
            self.manifest.clear_journal(root, [source])
        if deleted:
            log.info("removed %d chunks an interrupted ingest had left in %s", deleted, root)
        return deleted

    def write_file(self, record: FileRecord, chunks: list[Chunk], vectors: np.ndarray) -> None:
        """Journal, upsert, commit the row, delete stale chunks, clear the journal.

        The caller checks for room first (``IngestPipeline.check_space``)."""
        wanted = [c.id for c in chunks]
        present = self.store.ids_for_source(record.source, root=record.root)
        keep = set(wanted)
        stale = [i for i in present if i not in keep]
        self.manifest.begin(record.root, record.source, wanted + stale)
        # A failure here (a full disk above all) is not undone in this process: after Chroma
        # fails a write for want of room, its next write in the same process can wait for the
        # disk for ever (seen: an SQLite retry loop). The journal row stays, so the next sync's
        # ``recover`` deletes what was written, once there is room.
        self.store.upsert(chunks, vectors)
        record.chunk_ids = wanted
        self.manifest.put(record)
        self.store.delete(stale)
        self.manifest.clear_journal(record.root, [record.source])

    def delete_file(self, rec: FileRecord) -> None:
        """Remove one file's chunks and manifest row, journalled like a write."""
        ids = self.store.ids_for_source(rec.source, root=rec.root)
        self.manifest.begin(rec.root, rec.source, ids)
        self.manifest.remove(rec.root, [rec.source])
        self.store.delete(ids)
        self.manifest.clear_journal(rec.root, [rec.source])
