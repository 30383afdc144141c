"""The sync: walk a folder, and add, update, re-point, skip or delete so that the index matches it.

A sync recovers what a killed run left (``journal.py``), walks the folder (``scan.py``), plans
(``plan.py``: stat, and hash only what changed size or time), then:

1. re-points renamed and copied files, and loads, chunks, embeds and writes the rest
   (``run.py``: the loader pool, embedding across files, writing through the journal);
2. deletes the chunks and rows of files that are gone.

The loader pool and the journal are built by the composition root (``App.pipeline``) or, when
not given, by the constructor, and handed to each run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from ingest.chunking import CHUNKS_VERSION, Chunker
from ingest.journal import Journal
from ingest.loaders import LOADERS_VERSION
from ingest.manifest import FileRecord, Manifest
from ingest.plan import Planned, Planner, file_hash
from ingest.report import IngestReport, Progress
from ingest.run import DetailCallback, ProgressCallback, Run
from ingest.scan import Scan, scan, walk
from ingest.worker import LoaderPool
from rag.disk import disk_full_error, free_bytes, is_disk_full, store_bytes_for
from rag.embeddings import Embedder
from rag.errors import DiskFullError, IngestError
from rag.store import ChromaStore

__all__ = ["IngestPipeline", "IngestReport", "Progress", "Scan", "file_hash", "scan", "walk"]

log = logging.getLogger(__name__)


class IngestPipeline:
    """load -> chunk -> embed (reusing stored vectors) -> store, for one folder at a time."""

    def __init__(
        self,
        store: ChromaStore,
        embedder: Embedder,
        chunker: Chunker,
        manifest: Manifest,
        *,
        workers: int = 2,
        file_timeout: float = 120.0,
        file_memory_mb: int = 2048,
        embed_pool: int | None = None,
        after_change: Callable[[], None] | None = None,
        loaders: LoaderPool | None = None,
        journal: Journal | None = None,
    ) -> None:
        """``embed_pool``: new chunk texts collected across files before one embedding call
        (default 16 embedder batches; the app passes ``RAG_INGEST_EMBED_POOL``). The embedder sorts a call's texts by length, so the
        larger the pool, the less of each batch is padding: on docugami, whose pages end in short
        chunks, 14-18% of the tokens embedded are padding at one batch (32 texts), 3% at 16.

        ``after_change`` runs when a sync or a delete changed the collection (the factory
        passes the lexical index's rebuild, so the first question after an ingest does not pay
        for it).

        ``loaders``: the loader processes (default: ``workers`` of them, each file bounded by
        ``file_timeout`` and ``file_memory_mb``); ``journal``: the crash journal over ``store``
        and ``manifest`` (default: a new one)."""
        self.store = store
        self.after_change = after_change
        self.embedder = embedder
        self.chunker = chunker
        self.manifest = manifest
        self.embed_pool = embed_pool or 16 * int(getattr(embedder, "batch_size", 32))
        self.loaders = loaders if loaders is not None else LoaderPool(
            workers, timeout=file_timeout, memory_mb=file_memory_mb)
        self.journal = journal if journal is not None else Journal(store, manifest)
        self.follow_links = False  # follow links out of the folder (`rag ingest --follow-links`)
        self._run: Run | None = None  # the sync under way (its bytes still to write: disk full)

    def close(self) -> None:
        """Stop the loader processes (they also stop with this process)."""
        self.loaders.close()

    # --- the sync ------------------------------------------------------------------------------

    def sync(
        self,
        folder: Path,
        *,
        dry_run: bool = False,
        passwords: Mapping[str, str] | None = None,
        progress: ProgressCallback | None = None,
        on_progress: DetailCallback | None = None,
        force: Collection[str] = (),
        follow_links: bool | None = None,
    ) -> IngestReport:
        """Make the index match ``folder``. ``force``: sources to re-index even if unchanged;
        ``follow_links``: follow links out of the folder (default: ``self.follow_links``).

        A write that fails because the disk is full raises ``DiskFullError``: the files
        committed before it stay indexed, what was written of the one being written is deleted
        by the next run (from the journal), the rest are not recorded, so a re-run does them."""
        try:
            return self._sync(folder, dry_run=dry_run, passwords=passwords, progress=progress,
                              on_progress=on_progress, force=force, follow_links=follow_links)
        except Exception as exc:
            if isinstance(exc, DiskFullError) or is_disk_full(exc):
                # where and how much, for the whole run: what is left of it needs the room
                raise disk_full_error(self.manifest.path.parent,
                                      store_bytes_for(self._todo_bytes())) from exc
            raise
        finally:
            self._run = None

    def _sync(
        self,
        folder: Path,
        *,
        dry_run: bool,
        passwords: Mapping[str, str] | None,
        progress: ProgressCallback | None,
        on_progress: DetailCallback | None,
        force: Collection[str],
        follow_links: bool | None,
    ) -> IngestReport:
        start = time.perf_counter()
        if not folder.is_dir():
            raise IngestError(f"{folder} is not a folder: give `rag ingest` a directory to index")
        root = str(folder.resolve())
        report = IngestReport(folder=root, dry_run=dry_run)
        if not dry_run:
            self.store.open_for_writing(self.embedder.model_id, self.embedder.dimension)
            self.recover(root)
        run = self._run = Run(
            root, report, store=self.store, embedder=self.embedder, chunker=self.chunker,
            manifest=self.manifest, journal=self.journal, loaders=self.loaders,
            embed_pool=self.embed_pool, check_space=self.check_space, progress=progress,
            on_progress=on_progress)
        planner = Planner(
            root, report, self.manifest, self.embedder.model_id, dry_run=dry_run,
            # Files that failed under older loaders, or with OCR set otherwise (RAG_OCR), get
            # one more read (see LOADERS_VERSION).
            retry_failed=(self.manifest.meta(f"loaders:{root}") != LOADERS_VERSION
                          or self.manifest.meta(f"ocr:{root}") != self._ocr_mode()),
            done=run.done)
        known = {rec.source: rec for rec in self.manifest.records(root)}
        found = scan(folder, follow_links=self.follow_links if follow_links is None
                     else follow_links)
        paths = found.files
        run.total = len(paths) + len(found.refused)
        loads: list[Planned] = []
        twins: dict[str, list[Planned]] = {}
        seen = planner.not_walked(found, known)
        if not dry_run:
            force = set(force) | self._lost(root, known) | self._rechunk(root, known)
        for path in paths:
            source = path.relative_to(folder).as_posix()
            seen.add(source)
            report.files += 1
            planned = planner.plan(path, source, known.get(source),
                                   (passwords or {}).get(source), force=source in force)
            if planned is None:
                continue
            if dry_run:
                run.done(source)
                continue
            if planned.digest in twins:  # same bytes as a file loaded in this run
                twins.setdefault(planned.digest, []).append(planned)
                continue
            if source not in force and run.repoint(planned):
                continue
            twins.setdefault(planned.digest, [])
            loads.append(planned)
        gone = sorted(set(known) - seen)
        if not dry_run:
            run.load_all(loads)
            for group in twins.values():
                for twin in group:
                    run.twin(twin)
        for source in gone:
            if known[source].status != "skipped":
                report.removed.append(source)
            if not dry_run:
                self.journal.delete_file(known[source])
        for items in (report.indexed, report.updated, report.unchanged, report.skipped,
                      report.repointed):
            items.sort()
        report.failed = dict(sorted(report.failed.items()))
        if not dry_run:
            self.manifest.set_meta(f"loaders:{root}", LOADERS_VERSION)
            self.manifest.set_meta(f"ocr:{root}", self._ocr_mode())
            self.manifest.set_meta(f"chunks:{root}", self._chunks_version())
        if not dry_run and (report.indexed or report.updated or report.removed
                            or report.repointed):
            self._changed()
        run.announce("")
        report.seconds = time.perf_counter() - start
        return report

    def _chunks_version(self) -> str:
        return f"{CHUNKS_VERSION}{'' if self.chunker.headers else '-noheaders'}"

    def _rechunk(self, root: str, known: Mapping[str, FileRecord]) -> set[str]:
        """Every indexed file of ``root`` when its chunks were built by an older chunker
        (``CHUNKS_VERSION``): each is read, chunked and embedded once more. A run stopped
        half-way repeats this, but embeds again only the texts not already stored."""
        if not known or self.manifest.meta(f"chunks:{root}") == self._chunks_version():
            return set()
        redo = {source for source, rec in known.items() if rec.status == "indexed"}
        if redo:
            log.info("chunks of %d files in %s were built by an older chunker: indexing them "
                     "again", len(redo), root)
        return redo

    def _ocr_mode(self) -> str:
        return "auto" if self.loaders.ocr else "off"

    def _lost(self, root: str, known: Mapping[str, FileRecord]) -> set[str]:
        """Indexed files of ``root`` whose chunks the store no longer holds (a store deleted or
        damaged behind the manifest's back): the sync re-indexes them. Cheap when nothing is
        lost: one count against the manifest's total."""
        expected = self.manifest.chunk_total()
        if not expected or self.store.count() >= expected:
            return set()
        present = set(self.store.ids_for_root(root))
        lost = {source for source, rec in known.items()
                if rec.status == "indexed" and not present.issuperset(rec.chunk_ids)}
        if lost:
            log.warning("the index lacks chunks of %d files the manifest lists as indexed in %s "
                        "(a store deleted or damaged): indexing them again", len(lost), root)
        return lost

    def _changed(self) -> None:
        if self.after_change is None:
            return
        try:
            self.after_change()
        except Exception as exc:  # the index is current in Chroma; a search rebuilds the rest
            log.warning("after the ingest: %s: %s (the next search retries)",
                        exc.__class__.__name__, exc)

    def recover(self, root: str) -> int:
        """Delete chunks a killed run wrote without committing them (``journal.py``)."""
        return self.journal.recover(root)

    # --- room on the disk ----------------------------------------------------------------------

    def _todo_bytes(self) -> int:
        """Bytes of the files the sync under way has still to write (disk-full note)."""
        return self._run.todo_bytes if self._run is not None else 0

    def check_space(self, text_bytes: int) -> None:
        """Refuse (``DiskFullError``) to write ``text_bytes`` of chunk text without room for it.

        Chroma does not survive a full disk in the middle of a write (a cut HNSW file leaves the
        collection unreadable), so the room is checked before each file is written: what the
        file needs, with headroom, must be free where the store and the manifest live."""
        places = [self.manifest.path.parent]
        local = self.store.local_path
        if local is not None:
            places.append(local)
        for place in places:
            need = store_bytes_for(text_bytes if place == local else 0)
            if free_bytes(place) < need:
                raise disk_full_error(place, store_bytes_for(max(self._todo_bytes(), text_bytes)))

    # --- deleting --------------------------------------------------------------------------------

    def delete_document(self, root: str, source: str) -> bool:
        """Remove one file's chunks and manifest row (the library page's delete)."""
        rec = self.manifest.get(root, source)
        if rec is None:
            return False
        self.journal.delete_file(rec)
        self._changed()
        return True
