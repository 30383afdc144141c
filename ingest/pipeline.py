"""The sync: walk a folder, and add, update, re-point, skip or delete so that the index matches it.

Order of writes per file (crash safety): chunks are upserted under deterministic ids, then the
file's chunks that are no longer wanted are deleted from Chroma, and only then is the manifest
row committed. A run killed at any point leaves a state that the next run completes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ingest.chunking import Chunker
from ingest.loaders import LOADERS, load_file
from ingest.manifest import FileRecord, Manifest
from rag.embeddings import Embedder
from rag.errors import IngestError, LoaderError
from rag.store import ChromaStore
from rag.types import Chunk

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, str], None]  # (files done, files total, current source)


@dataclass
class IngestReport:
    folder: str
    files: int = 0
    pages: int = 0
    chunks: int = 0
    embedded: int = 0
    indexed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    dry_run: bool = False

    def summary(self) -> str:
        verb = "would index" if self.dry_run else "indexed"
        return (
            f"{self.files} files: {verb} {len(self.indexed)}, updated {len(self.updated)}, "
            f"unchanged {len(self.unchanged)}, removed {len(self.removed)}, "
            f"skipped {len(self.skipped)}, failed {len(self.failed)}; {self.pages} pages, "
            f"{self.chunks} chunks, {self.embedded} embedded; {self.seconds:.1f} s"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def walk(folder: Path) -> Iterator[Path]:
    """Files below ``folder``, sorted, hidden files and folders left out."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


class IngestPipeline:
    """load -> chunk -> embed (reusing stored vectors) -> store, for one folder at a time."""

    def __init__(
        self, store: ChromaStore, embedder: Embedder, chunker: Chunker, manifest: Manifest
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.chunker = chunker
        self.manifest = manifest

    def sync(
        self,
        folder: Path,
        *,
        dry_run: bool = False,
        passwords: Mapping[str, str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        start = time.perf_counter()
        if not folder.is_dir():
            raise IngestError(f"{folder} is not a folder: give `rag ingest` a directory to index")
        root = str(folder.resolve())
        report = IngestReport(folder=root, dry_run=dry_run)
        if not dry_run:
            self.store.open_for_writing(self.embedder.model_id, self.embedder.dimension)
        paths = [p for p in walk(folder) if not p.name.endswith(".password")]
        known = {rec.source: rec for rec in self.manifest.records(root)}
        seen: set[str] = set()
        for done, path in enumerate(paths):
            source = path.relative_to(folder).as_posix()
            seen.add(source)
            report.files += 1
            if progress:
                progress(done, len(paths), source)
            if path.suffix.lower() not in LOADERS:
                report.skipped.append(source)
                continue
            self._sync_file(root, path, source, known.get(source), report, dry_run,
                            (passwords or {}).get(source))
        if progress:
            progress(len(paths), len(paths), "")
        for source in sorted(set(known) - seen):
            report.removed.append(source)
            if not dry_run:
                self._delete_file(known[source])
        report.seconds = time.perf_counter() - start
        return report

    def _sync_file(
        self,
        root: str,
        path: Path,
        source: str,
        old: FileRecord | None,
        report: IngestReport,
        dry_run: bool,
        password: str | None,
    ) -> None:
        try:
            stat = path.stat()
        except OSError as exc:
            report.failed[source] = f"cannot stat ({exc.strerror})"
            return
        same_model = old is not None and old.embedder == self.embedder.model_id
        if (old is not None and same_model and old.status != "failed"
                and old.size == stat.st_size and old.mtime_ns == stat.st_mtime_ns):
            report.unchanged.append(source)
            return
        try:
            digest = file_hash(path)
        except OSError as exc:
            report.failed[source] = f"cannot read ({exc.strerror})"
            return
        if old is not None and same_model and old.content_hash == digest and old.status != "failed":
            report.unchanged.append(source)
            if not dry_run:
                self.manifest.touch(root, source, stat.st_size, stat.st_mtime_ns)
            return
        (report.updated if old is not None else report.indexed).append(source)
        if dry_run:
            return
        record = FileRecord(root=root, source=source, size=stat.st_size,
                            mtime_ns=stat.st_mtime_ns, content_hash=digest,
                            embedder=self.embedder.model_id)
        try:
            docs = _load(path, source, password)
        except LoaderError as exc:
            (report.updated if old is not None else report.indexed).remove(source)
            report.failed[source] = str(exc)
            # What was indexed from an earlier version stays searchable: nothing is lost.
            record.status, record.reason = "failed", str(exc)
            record.chunk_ids = old.chunk_ids if old is not None else []
            self.manifest.put(record)
            return
        chunks = self.chunker.chunk_documents(docs, root=root, content_hash=digest)
        vectors = self._vectors_for(chunks, report)
        self.store.upsert(chunks, vectors)
        wanted = {c.id for c in chunks}
        stale = [i for i in self.store.ids_for_source(source, root=root) if i not in wanted]
        self.store.delete(stale)
        record.chunk_ids = [c.id for c in chunks]
        record.pages = len({d.page for d in docs if d.page is not None}) or 1
        self.manifest.put(record)
        report.pages += record.pages
        report.chunks += len(chunks)

    def _vectors_for(self, chunks: list[Chunk], report: IngestReport) -> np.ndarray:
        """Reuse stored vectors for chunk texts already embedded (renames, copies, edits)."""
        vectors = np.zeros((len(chunks), self.embedder.dimension), dtype=np.float32)
        known = self.store.vectors_for_chunk_hashes([c.chunk_hash for c in chunks])
        todo = [i for i, c in enumerate(chunks) if c.chunk_hash not in known]
        for i, c in enumerate(chunks):
            if c.chunk_hash in known:
                vectors[i] = known[c.chunk_hash]
        if todo:
            vectors[todo] = self.embedder.embed_documents([chunks[i].text for i in todo])
            report.embedded += len(todo)
        return vectors

    def _delete_file(self, rec: FileRecord) -> None:
        self.store.delete(self.store.ids_for_source(rec.source, root=rec.root))
        self.manifest.remove(rec.root, [rec.source])

    def delete_document(self, root: str, source: str) -> bool:
        """Remove one file's chunks and manifest row (the library page's delete)."""
        rec = self.manifest.get(root, source)
        if rec is None:
            return False
        self._delete_file(rec)
        return True


def _load(path: Path, source: str, password: str | None) -> list[Any]:
    if password is not None and path.suffix.lower() == ".pdf":
        from ingest.pdf import load_pdf

        try:
            return load_pdf(path, source, password=password)
        except LoaderError:
            raise
        except Exception as exc:
            raise LoaderError(f"cannot read ({exc.__class__.__name__}: {exc})"[:300]) from exc
    return load_file(path, source)
