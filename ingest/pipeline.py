"""The sync: walk a folder, and add, update, re-point, skip or delete so that the index matches it.

A sync plans first (stat, and hash only what changed size or time), then:

1. re-points renamed and copied files: a file whose bytes are already indexed gets that file's
   chunks, texts and vectors copied under its own ids; nothing is parsed or embedded;
2. loads the rest in worker processes (``worker.py``: time and memory bound per file), chunks
   each result in this process and embeds new chunk texts across files in batches, reusing
   stored vectors of texts already in Chroma;
3. deletes the chunks and rows of files that are gone.

Crash safety: per file, the chunk ids about to exist are journalled in the manifest, chunks
are upserted under deterministic ids, the manifest row is committed, stale chunks are deleted,
and the journal row is cleared. The next sync first deletes any journalled chunk that its
manifest row does not list, so a run killed at any point (SIGKILL included) is completed by the
next one as if it had never been interrupted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat as stat_mod
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ingest.chunking import Chunker, chunk_id
from ingest.loaders import LOADERS, LOADERS_VERSION
from ingest.manifest import FileRecord, Manifest
from ingest.report import IngestReport, Progress
from ingest.worker import LoaderPool, LoadResult, LoadTask
from rag.disk import disk_full_error, free_bytes, is_disk_full, store_bytes_for
from rag.embeddings import Embedder
from rag.errors import DiskFullError, IngestError
from rag.store import ChromaStore
from rag.types import Chunk

__all__ = ["IngestPipeline", "IngestReport", "Progress", "Scan", "file_hash", "scan", "walk"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, str], None]  # (files done, files total, current source)
DetailCallback = Callable[[Progress], None]


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def walk(folder: Path) -> Iterator[Path]:
    """Files below ``folder``, sorted, hidden files and folders and password sidecars left out."""
    yield from scan(folder).files


@dataclass
class Scan:
    """What a walk of a folder found.

    ``refused``: files not read, with the reason (a link out of the folder, a FIFO, a socket,
    a device): reported, never opened. ``unreadable``: folders that could not be listed
    (relative, ``.`` for the folder itself), with the reason: the documents indexed from them
    are kept, not removed.
    """

    files: list[Path] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _kind(mode: int) -> str:
    for test, name in ((stat_mod.S_ISFIFO, "a FIFO"), (stat_mod.S_ISSOCK, "a socket"),
                       (stat_mod.S_ISCHR, "a character device"),
                       (stat_mod.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def scan(folder: Path, *, follow_links: bool = False) -> Scan:
    """Walk ``folder`` without opening anything: regular files only, each real folder once.

    A link to a file is read when its target is inside ``folder``; a link to a folder inside
    is not entered (its files are walked under their own names). A link out of the folder, to
    a file or a folder, is refused unless ``follow_links``. Anything that is not a regular file
    (a FIFO would block the reader forever) is refused. A folder that cannot be listed is
    recorded in ``unreadable``, never taken as empty.
    """
    out = Scan()
    root = os.path.realpath(folder)
    seen_dirs: set[str] = set()

    def rel(path: str) -> str:
        return Path(os.path.relpath(path, folder)).as_posix()

    def on_error(exc: OSError) -> None:
        name = rel(exc.filename) if exc.filename else "."
        out.unreadable[name] = exc.strerror or str(exc)

    for dirpath, dirnames, filenames in os.walk(folder, onerror=on_error, followlinks=True):
        real_dir = os.path.realpath(dirpath)
        if real_dir in seen_dirs:  # reached twice through links: walked once already
            dirnames[:] = []
            continue
        seen_dirs.add(real_dir)
        keep = []
        for name in sorted(dirnames):
            if name.startswith("."):
                continue
            full = os.path.join(dirpath, name)
            real = os.path.realpath(full)
            if os.path.islink(full):
                if _inside(real, root):  # its files are walked under their own names
                    continue
                if not follow_links:
                    out.refused[rel(full)] = (
                        f"a link to the folder {real}, outside the ingested folder: not "
                        "followed (`rag ingest --follow-links` follows it)")
                    continue
                if _inside(root, real):  # a link to a folder above this one: a loop
                    continue
            if real in seen_dirs:
                continue
            keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            if name.startswith(".") or name.endswith(".password"):
                continue
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                real = os.path.realpath(full)
                if not _inside(real, root) and not follow_links:
                    out.refused[rel(full)] = (
                        f"a link to {real}, outside the ingested folder: not followed "
                        "(`rag ingest --follow-links` follows it)")
                    continue
            try:
                mode = os.stat(full).st_mode
            except OSError:
                out.files.append(Path(full))  # planning reports why it cannot be read
                continue
            if not stat_mod.S_ISREG(mode):
                out.refused[rel(full)] = f"{_kind(mode)}, not a regular file: not read"
                continue
            out.files.append(Path(full))
    return out


@dataclass
class _File:
    """A file the plan decided to (re)index."""

    path: Path
    source: str
    size: int
    mtime_ns: int
    digest: str
    old: FileRecord | None
    password: str | None = None


@dataclass
class _Loaded:
    file: _File
    chunks: list[Chunk]
    pages: int
    vectors: np.ndarray
    todo: list[int] = field(default_factory=list)  # rows of ``vectors`` still to embed


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
    ) -> None:
        """``embed_pool``: new chunk texts collected across files before one embedding call
        (default 16 embedder batches; the app passes ``RAG_INGEST_EMBED_POOL``). The embedder sorts a call's texts by length, so the
        larger the pool, the less of each batch is padding: on docugami, whose pages end in short
        chunks, 14-18% of the tokens embedded are padding at one batch (32 texts), 3% at 16.

        ``after_change`` runs when a sync or a delete changed the collection (the factory
        passes the lexical index's rebuild, so the first question after an ingest does not pay
        for it)."""
        self.store = store
        self.after_change = after_change
        self.embedder = embedder
        self.chunker = chunker
        self.manifest = manifest
        self.embed_pool = embed_pool or 16 * int(getattr(embedder, "batch_size", 32))
        self._pool = LoaderPool(workers, timeout=file_timeout, memory_mb=file_memory_mb)
        self.follow_links = False  # follow links out of the folder (`rag ingest --follow-links`)
        self._todo_bytes = 0  # bytes of the files this sync has still to write (disk-full note)

    def close(self) -> None:
        """Stop the loader processes (they also stop with this process)."""
        self._pool.close()

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
        committed before it stay indexed, the one being written is rolled back (or by the next
        run, from the journal), the rest are not recorded, so a re-run does them."""
        try:
            return self._sync(folder, dry_run=dry_run, passwords=passwords, progress=progress,
                              on_progress=on_progress, force=force, follow_links=follow_links)
        except Exception as exc:
            if isinstance(exc, DiskFullError) or is_disk_full(exc):
                # where and how much, for the whole run: what is left of it needs the room
                raise disk_full_error(self.manifest.path.parent,
                                      store_bytes_for(self._todo_bytes)) from exc
            raise
        finally:
            self._todo_bytes = 0

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
        run = _Run(self, root, report, dry_run, progress, on_progress)
        # Files that failed under older loaders get one more read (see LOADERS_VERSION).
        run.retry_failed = self.manifest.meta(f"loaders:{root}") != LOADERS_VERSION
        known = {rec.source: rec for rec in self.manifest.records(root)}
        found = scan(folder, follow_links=self.follow_links if follow_links is None
                     else follow_links)
        paths = found.files
        run.total = len(paths) + len(found.refused)
        loads: list[_File] = []
        twins: dict[str, list[_File]] = {}
        seen: set[str] = set()
        for source, reason in found.refused.items():  # never opened; gone from the index
            report.files += 1
            report.failed[source] = reason
            run.done(source)
        for folder_name, reason in found.unreadable.items():
            prefix = "" if folder_name == "." else folder_name + "/"
            kept = [s for s in known if s.startswith(prefix)]
            seen.update(kept)  # a folder that cannot be listed is not an empty folder
            report.failed[prefix or "./"] = (
                f"cannot read the folder ({reason}): the {len(kept)} documents indexed from it "
                "are kept; make it readable and run again")
        if not dry_run:
            force = set(force) | self._lost(root, known)
        for path in paths:
            source = path.relative_to(folder).as_posix()
            seen.add(source)
            report.files += 1
            planned = run.plan(path, source, known.get(source), (passwords or {}).get(source),
                               force=source in force)
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
                self._delete_file(known[source])
        for items in (report.indexed, report.updated, report.unchanged, report.skipped,
                      report.repointed):
            items.sort()
        report.failed = dict(sorted(report.failed.items()))
        if not dry_run:
            self.manifest.set_meta(f"loaders:{root}", LOADERS_VERSION)
        if not dry_run and (report.indexed or report.updated or report.removed
                            or report.repointed):
            self._changed()
        run.announce("")
        report.seconds = time.perf_counter() - start
        return report

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

    # --- writing one file --------------------------------------------------------------------

    def write_file(self, record: FileRecord, chunks: list[Chunk], vectors: np.ndarray) -> None:
        """Journal, upsert, commit the row, delete stale chunks, clear the journal."""
        self.check_space(sum(len(c.text.encode("utf-8")) for c in chunks))
        wanted = [c.id for c in chunks]
        present = self.store.ids_for_source(record.source, root=record.root)
        keep = set(wanted)
        stale = [i for i in present if i not in keep]
        self.manifest.begin(record.root, record.source, wanted + stale)
        try:
            self.store.upsert(chunks, vectors)
            record.chunk_ids = wanted
            self.manifest.put(record)
        except Exception as exc:
            if isinstance(exc, DiskFullError) or is_disk_full(exc):
                self._roll_back(record.root, record.source)
            raise
        self.store.delete(stale)
        self.manifest.clear_journal(record.root, [record.source])

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
                raise disk_full_error(place, store_bytes_for(max(self._todo_bytes, text_bytes)))

    def _roll_back(self, root: str, source: str) -> None:
        """Undo a write that failed half-way; what this cannot do, the next sync's recovery does."""
        try:
            rec = self.manifest.get(root, source)
            keep = set(rec.chunk_ids) if rec is not None else set()
            for journalled, ids in self.manifest.journal(root):
                if journalled == source:
                    self.store.delete([i for i in ids if i not in keep])
                    self.manifest.clear_journal(root, [source])
        except Exception as exc:
            log.warning("cannot undo the unfinished write of %s yet (%s): the next ingest does",
                        source, exc)

    def _delete_file(self, rec: FileRecord) -> None:
        ids = self.store.ids_for_source(rec.source, root=rec.root)
        self.manifest.begin(rec.root, rec.source, ids)
        self.manifest.remove(rec.root, [rec.source])
        self.store.delete(ids)
        self.manifest.clear_journal(rec.root, [rec.source])

    def delete_document(self, root: str, source: str) -> bool:
        """Remove one file's chunks and manifest row (the library page's delete)."""
        rec = self.manifest.get(root, source)
        if rec is None:
            return False
        self._delete_file(rec)
        self._changed()
        return True

    def vectors_for(self, chunks: list[Chunk]) -> tuple[np.ndarray, list[int]]:
        """Stored vectors for chunk texts already embedded; the rows still to embed."""
        vectors = np.zeros((len(chunks), self.embedder.dimension), dtype=np.float32)
        known = self.store.vectors_for_chunk_hashes([c.chunk_hash for c in chunks])
        todo = []
        for i, c in enumerate(chunks):
            if c.chunk_hash in known:
                vectors[i] = known[c.chunk_hash]
            else:
                todo.append(i)
        return vectors, todo


class _Run:
    """The state of one sync: the report, progress, and the batch of files waiting to embed."""

    def __init__(self, pipeline: IngestPipeline, root: str, report: IngestReport, dry_run: bool,
                 progress: ProgressCallback | None, on_progress: DetailCallback | None) -> None:
        self.p = pipeline
        self.root = root
        self.report = report
        self.dry_run = dry_run
        self.progress = progress
        self.on_progress = on_progress
        self.total = 0
        self.files_done = 0
        self.pending: list[_Loaded] = []
        self.retry_failed = False

    # --- progress --------------------------------------------------------------------------

    def done(self, source: str) -> None:
        self.files_done += 1
        self.announce(source)

    def announce(self, source: str) -> None:
        if self.progress:
            self.progress(self.files_done, self.total, source)
        if self.on_progress:
            r = self.report
            self.on_progress(Progress(self.files_done, self.total, r.pages, r.chunks,
                                      r.embedded, source))

    # --- planning --------------------------------------------------------------------------

    def plan(self, path: Path, source: str, old: FileRecord | None, password: str | None,
             *, force: bool) -> _File | None:
        """Decide what ``path`` needs; ``None`` when nothing more is to be done for it."""
        report, p = self.report, self.p
        try:
            stat = path.stat()
        except OSError as exc:
            report.failed[source] = f"cannot stat ({exc.strerror})"
            self.done(source)
            return None
        if path.suffix.lower() not in LOADERS:
            report.skipped.append(source)
            if not self.dry_run and (old is None or old.status != "skipped"
                                     or old.size != stat.st_size
                                     or old.mtime_ns != stat.st_mtime_ns):
                p.manifest.put(FileRecord(
                    root=self.root, source=source, size=stat.st_size, mtime_ns=stat.st_mtime_ns,
                    content_hash="", status="skipped", embedder=p.embedder.model_id,
                    reason=f"unsupported file type {path.suffix or '(no extension)'}"))
            self.done(source)
            return None
        usable = (old is not None and old.embedder == p.embedder.model_id
                  and old.status != "skipped" and not force)
        retry = (self.retry_failed or password is not None
                 or path.with_name(path.name + ".password").is_file())
        same_stat = old is not None and (old.size, old.mtime_ns) == (stat.st_size,
                                                                     stat.st_mtime_ns)
        if usable and old is not None and same_stat and self._settled(old, source, retry):
            return None
        try:
            digest = file_hash(path)
        except OSError as exc:
            report.failed[source] = f"cannot read ({exc.strerror})"
            self.done(source)
            return None
        if usable and old is not None and old.content_hash == digest:
            if not self.dry_run and not same_stat:
                p.manifest.touch(self.root, source, stat.st_size, stat.st_mtime_ns)
            if self._settled(old, source, retry):
                return None
        (report.updated if old is not None and old.status != "skipped"
         else report.indexed).append(source)
        return _File(path, source, stat.st_size, stat.st_mtime_ns, digest, old, password)

    def _settled(self, old: FileRecord, source: str, retry: bool) -> bool:
        """Unchanged: indexed, or failed before and no new password to try."""
        if old.status == "indexed":
            self.report.unchanged.append(source)
        elif old.status == "failed" and not retry:
            self.report.failed[source] = old.reason
        else:
            return False
        self.done(source)
        return True

    def _fail(self, f: _File, reason: str) -> None:
        for items in (self.report.indexed, self.report.updated):
            if f.source in items:
                items.remove(f.source)
        self.report.failed[f.source] = reason
        # What was indexed from an earlier version stays searchable: nothing is lost.
        self.p.manifest.put(self._record(f, status="failed", reason=reason,
                                         chunk_ids=f.old.chunk_ids if f.old else []))
        self.done(f.source)

    def _record(self, f: _File, **fields: object) -> FileRecord:
        rec = FileRecord(root=self.root, source=f.source, size=f.size, mtime_ns=f.mtime_ns,
                         content_hash=f.digest, embedder=self.p.embedder.model_id)
        for key, value in fields.items():
            setattr(rec, key, value)
        return rec

    # --- re-pointing: renamed, moved and copied files ----------------------------------------

    def repoint(self, f: _File, donor: FileRecord | None = None) -> bool:
        """Copy the chunks of an indexed file with the same bytes; False when there is none."""
        p = self.p
        donors = [donor] if donor is not None else [
            d for d in p.manifest.by_hash(f.digest)
            if d.embedder == p.embedder.model_id and (d.root, d.source) != (self.root, f.source)
        ]
        for d in donors:
            records = p.store.records(d.chunk_ids)
            if not d.chunk_ids or len(records) != len(d.chunk_ids):
                continue  # that donor's chunks are incomplete: try the next, else parse
            chunks = [
                Chunk(id=chunk_id(self.root, f.source, int(meta.get("chunk_index", n)),
                                  str(meta["chunk_hash"])),
                      text=text, source=f.source,
                      page=int(meta["page"]) if meta.get("page") is not None else None,
                      heading=str(meta.get("heading", "")),
                      chunk_index=int(meta.get("chunk_index", n)), content_hash=f.digest,
                      chunk_hash=str(meta["chunk_hash"]), root=self.root)
                for n, (_, text, meta, _) in enumerate(records)
            ]
            vectors = np.stack([vec for *_, vec in records]).astype(np.float32)
            p.write_file(self._record(f, pages=d.pages), chunks, vectors)
            self.report.repointed.append(f.source)
            self.report.pages += d.pages
            self.report.chunks += len(chunks)
            self.done(f.source)
            return True
        return False

    def twin(self, f: _File) -> None:
        """A file with the same bytes as one loaded in this run: re-point, or fail alike."""
        for rec in self.p.manifest.by_hash(f.digest):
            if rec.root == self.root and self.repoint(f, rec):
                return
        failed = [s for s in self.report.failed
                  if (row := self.p.manifest.get(self.root, s)) is not None
                  and row.content_hash == f.digest]
        reason = self.report.failed[failed[0]] if failed else "cannot read"
        self._fail(f, reason)

    # --- loading, embedding across files, writing --------------------------------------------

    def load_all(self, files: list[_File]) -> None:
        self.p._todo_bytes = sum(f.size for f in files)
        by_source = {f.source: f for f in files}
        tasks = (LoadTask(f.path, f.source, f.password) for f in files)
        for result in self.p._pool.load(tasks):
            self._loaded(by_source[result.task.source], result)
        self.flush()

    def _loaded(self, f: _File, result: LoadResult) -> None:
        if result.docs is None:
            self._fail(f, result.error)
            return
        chunks = self.p.chunker.chunk_documents(result.docs, root=self.root,
                                                content_hash=f.digest)
        if not chunks:
            self._fail(f, "empty: no text in the file")
            return
        vectors, todo = self.p.vectors_for(chunks)
        pages = len({d.page for d in result.docs if d.page is not None}) or 1
        self.pending.append(_Loaded(f, chunks, pages, vectors, todo))
        if sum(len(item.todo) for item in self.pending) >= self.p.embed_pool:
            self.flush()

    def flush(self) -> None:
        """Embed the new texts of every pending file in one call, then write the files."""
        if not self.pending:
            return
        texts: dict[str, str] = {}
        for item in self.pending:
            for i in item.todo:
                texts.setdefault(item.chunks[i].chunk_hash, item.chunks[i].text)
        if texts:
            embedded = self.p.embedder.embed_documents(list(texts.values()))
            by_hash = dict(zip(texts, embedded, strict=True))
            self.report.embedded += len(texts)
            for item in self.pending:
                for i in item.todo:
                    item.vectors[i] = by_hash[item.chunks[i].chunk_hash]
        for item in self.pending:
            self.p.write_file(self._record(item.file, pages=item.pages), item.chunks,
                              item.vectors)
            self.report.pages += item.pages
            self.report.chunks += len(item.chunks)
            self.p._todo_bytes = max(0, self.p._todo_bytes - item.file.size)
            self.done(item.file.source)
        self.pending.clear()
