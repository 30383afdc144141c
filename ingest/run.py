"""One sync's work after planning: re-pointing renamed and copied files, loading the rest
through the loader pool, embedding new chunk texts across files, writing through the journal,
and reporting progress.

1. A file whose bytes are already indexed gets that file's chunks, texts and vectors copied
   under its own ids; nothing is parsed or embedded.
2. The rest load in worker processes (``worker.py``: time and memory bound per file); each
   result is chunked in this process, and new chunk texts are embedded across files in
   batches, reusing stored vectors of texts already in Chroma.
3. Embedding runs in one background thread, a batch at a time: while a batch embeds (the
   embedder releases the GIL in its tokenizer and its model), this thread writes the files of
   the batch before it and chunks the files of the next one, so the embedder (the critical
   path) does not wait for Chroma writes or chunking. Writes, progress and every callback stay
   in the calling thread, in file order; a failed embedding or write stops the run there.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ingest.chunking import Chunker, chunk_id
from ingest.journal import Journal
from ingest.manifest import FileRecord, Manifest
from ingest.plan import Planned
from ingest.report import IngestReport, Progress
from ingest.worker import LoaderPool, LoadResult, LoadTask
from rag.embeddings import Embedder
from rag.store import ChromaStore
from rag.types import Chunk

__all__ = ["DetailCallback", "ProgressCallback", "Run"]

ProgressCallback = Callable[[int, int, str], None]  # (files done, files total, current source)
DetailCallback = Callable[[Progress], None]


@dataclass
class _Loaded:
    file: Planned
    chunks: list[Chunk]
    pages: int
    vectors: np.ndarray
    todo: list[int] = field(default_factory=list)  # rows of ``vectors`` still to embed
    ocr_pages: int = 0


# Fewest new chunks sent to an idle embedder: enough for a batch on each of a few streams.
_MIN_CALL = 64


@dataclass
class _Batch:
    """Files whose new texts are being embedded (in the background) before being written."""

    items: list[_Loaded]
    hashes: list[str]  # chunk hashes of the texts sent to the embedder, in order
    vectors: Future[np.ndarray]

    def by_hash(self) -> dict[str, np.ndarray]:
        """chunk hash -> vector, once embedded (re-raises the embedder's error)."""
        return dict(zip(self.hashes, self.vectors.result(), strict=True))


class Run:
    """The state of one sync: the report, progress, and the batch of files waiting to embed.

    Everything it works with is handed in: the loader pool and the journal (built by the
    composition root or by ``IngestPipeline``), and ``check_space(text_bytes)``, called before
    each file is written. ``todo_bytes``: bytes of the files still to write (the disk-full note
    says how much room the rest of the run needs)."""

    def __init__(self, root: str, report: IngestReport, *, store: ChromaStore,
                 embedder: Embedder, chunker: Chunker, manifest: Manifest, journal: Journal,
                 loaders: LoaderPool, embed_pool: int, check_space: Callable[[int], None],
                 progress: ProgressCallback | None = None,
                 on_progress: DetailCallback | None = None) -> None:
        self.root = root
        self.report = report
        self.store = store
        self.embedder = embedder
        self.chunker = chunker
        self.manifest = manifest
        self.journal = journal
        self.loaders = loaders
        self.embed_pool = embed_pool
        self.check_space = check_space
        self.progress = progress
        self.on_progress = on_progress
        self.total = 0
        self.files_done = 0
        self.todo_bytes = 0
        self.pending: list[_Loaded] = []
        self._embedding: _Batch | None = None  # the batch the embedder is working on
        self._executor: ThreadPoolExecutor | None = None

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

    # --- outcomes of one file ------------------------------------------------------------------

    def _fail(self, f: Planned, reason: str) -> None:
        for items in (self.report.indexed, self.report.updated):
            if f.source in items:
                items.remove(f.source)
        self.report.failed[f.source] = reason
        # What was indexed from an earlier version stays searchable: nothing is lost.
        self.manifest.put(self._record(f, status="failed", reason=reason,
                                       chunk_ids=f.old.chunk_ids if f.old else []))
        self.done(f.source)

    def _record(self, f: Planned, **fields: object) -> FileRecord:
        return f.record(self.root, self.embedder.model_id, **fields)

    def _write(self, record: FileRecord, chunks: list[Chunk], vectors: np.ndarray) -> None:
        self.check_space(sum(len(c.text.encode("utf-8")) for c in chunks))
        self.journal.write_file(record, chunks, vectors)

    # --- re-pointing: renamed, moved and copied files ----------------------------------------

    def repoint(self, f: Planned, donor: FileRecord | None = None) -> bool:
        """Copy the chunks of an indexed file with the same bytes; False when there is none."""
        donors = [donor] if donor is not None else [
            d for d in self.manifest.by_hash(f.digest)
            if d.embedder == self.embedder.model_id and (d.root, d.source) != (self.root, f.source)
        ]
        for d in donors:
            records = self.store.records(d.chunk_ids)
            if not d.chunk_ids or len(records) != len(d.chunk_ids):
                continue  # that donor's chunks are incomplete: try the next, else parse
            chunks = [
                Chunk(id=chunk_id(self.root, f.source, int(meta.get("chunk_index", n)),
                                  str(meta["chunk_hash"]), str(meta.get("heading", ""))),
                      text=text, source=f.source,
                      page=int(meta["page"]) if meta.get("page") is not None else None,
                      heading=str(meta.get("heading", "")),
                      chunk_index=int(meta.get("chunk_index", n)), content_hash=f.digest,
                      chunk_hash=str(meta["chunk_hash"]), root=self.root,
                      context=str(meta.get("context", "")))
                for n, (_, text, meta, _) in enumerate(records)
            ]
            vectors = np.stack([vec for *_, vec in records]).astype(np.float32)
            self._write(self._record(f, pages=d.pages, ocr_pages=d.ocr_pages), chunks, vectors)
            self.report.repointed.append(f.source)
            self.report.pages += d.pages
            self.report.chunks += len(chunks)
            self.done(f.source)
            return True
        return False

    def twin(self, f: Planned) -> None:
        """A file with the same bytes as one loaded in this run: re-point, or fail alike."""
        for rec in self.manifest.by_hash(f.digest):
            if rec.root == self.root and self.repoint(f, rec):
                return
        failed = [s for s in self.report.failed
                  if (row := self.manifest.get(self.root, s)) is not None
                  and row.content_hash == f.digest]
        reason = self.report.failed[failed[0]] if failed else "cannot read"
        self._fail(f, reason)

    # --- loading, embedding across files, writing --------------------------------------------

    def load_all(self, files: list[Planned]) -> None:
        self.todo_bytes = sum(f.size for f in files)
        by_source = {f.source: f for f in files}
        tasks = (LoadTask(f.path, f.source, f.password) for f in files)
        try:
            for result in self.loaders.load(tasks):
                self._loaded(by_source[result.task.source], result)
            self.flush()
            self._write_embedded()
        finally:
            self._stop_embedding()

    def _loaded(self, f: Planned, result: LoadResult) -> None:
        if result.docs is None:
            self._fail(f, result.error)
            return
        chunks = self.chunker.chunk_documents(result.docs, root=self.root, content_hash=f.digest)
        if not chunks:
            self._fail(f, "empty: no text in the file")
            return
        vectors, todo = self.vectors_for(chunks)
        pages = len({d.page for d in result.docs if d.page is not None}) or 1
        self.pending.append(_Loaded(f, chunks, pages, vectors, todo, result.ocr_pages))
        waiting = sum(len(item.todo) for item in self.pending)
        # A full pool goes to the embedder; so does a smaller one when the embedder has nothing
        # to do (the first files of a run, or parsing slower than embedding): an idle embedder
        # is the costliest thing on a CPU-bound ingest.
        if waiting >= self.embed_pool or (waiting >= min(self.embed_pool, _MIN_CALL)
                                          and self._embedder_idle()):
            self.flush()

    def _embedder_idle(self) -> bool:
        return self._embedding is None or self._embedding.vectors.done()

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

    def flush(self) -> None:
        """Send the new texts of every pending file to the embedder in one call (in the
        background), then write the files of the batch embedded before it."""
        if not self.pending:
            return
        items, self.pending = self.pending, []
        before = self._embedding
        ready = before.by_hash() if before is not None else {}  # waits for that batch
        texts: dict[str, str] = {}
        for item in items:
            for i in item.todo:
                chunk = item.chunks[i]
                if chunk.chunk_hash in ready:  # embedded by the batch before, not yet stored
                    item.vectors[i] = ready[chunk.chunk_hash]
                else:
                    texts.setdefault(chunk.chunk_hash, chunk.embed_text)
        self.report.embedded += len(texts)
        self._embedding = _Batch(items, list(texts), self._embed(list(texts.values())))
        if before is not None:
            self._write_batch(before, ready)

    def _embed(self, texts: list[str]) -> Future[np.ndarray]:
        done: Future[np.ndarray] = Future()
        if not texts:
            done.set_result(np.zeros((0, self.embedder.dimension), dtype=np.float32))
            return done
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="rag-embed")
        return self._executor.submit(self.embedder.embed_documents, texts)

    def _write_embedded(self) -> None:
        """Wait for the batch being embedded and write its files."""
        batch, self._embedding = self._embedding, None
        if batch is not None:
            self._write_batch(batch, batch.by_hash())

    def _write_batch(self, batch: _Batch, by_hash: dict[str, np.ndarray]) -> None:
        for item in batch.items:
            for i in item.todo:
                vector = by_hash.get(item.chunks[i].chunk_hash)
                if vector is not None:  # else filled from the batch before
                    item.vectors[i] = vector
        for item in batch.items:
            self._write(self._record(item.file, pages=item.pages, ocr_pages=item.ocr_pages),
                        item.chunks, item.vectors)
            self.report.pages += item.pages
            self.report.ocr_pages += item.ocr_pages
            self.report.chunks += len(item.chunks)
            self.todo_bytes = max(0, self.todo_bytes - item.file.size)
            self.done(item.file.source)

    def _stop_embedding(self) -> None:
        """After the run, or when it stops on an error: let the embedder finish (a batch it
        is on is not written) and end its thread."""
        self._embedding = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
