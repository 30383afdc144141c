"""A sync with nothing to do, recognised before the store or the embedding model is opened.

`rag ingest DIR` on a folder that did not change should answer at once; opening Chroma and the
model costs seconds. This walks the folder (``scan.py``) and asks the planner (``plan.py``,
read-only) about every file against the manifest: when every file is settled by its size and
time alone (indexed, skipped, or failed with nothing new to try), nothing is gone, no killed
run left a journal, the loaders are the ones that planned last time, and the store still holds
at least the chunks the manifest lists (``store_count``, read by the caller without opening
Chroma), the report is the sync's report. Anything else returns ``None``, and the full sync
runs: it is the one that decides and writes; this path writes nothing.

The shortcut is taken only when the last full sync of the folder ran with the same ingest code
and the same ingest settings (``sync_key``, recorded by the caller after a full sync): a new chunker,
loader or setting may ask for work that no file's size or time shows (every file chunked
again), and only the full sync knows.

Imports stay light on purpose (no numpy, Chroma, model or loader libraries): a test runs
`rag ingest` on an unchanged folder and checks that none of them was imported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from ingest.loaders import LOADERS, LOADERS_VERSION
from ingest.manifest import Manifest
from ingest.plan import Planner
from ingest.report import IngestReport
from ingest.scan import scan

__all__ = ["remember_full_sync", "sync_key", "unchanged_report"]


# The settings a sync reads (by name prefix: a new chunking or OCR setting is covered); those
# of answers, retrieval and the UI do not change what an ingest does.
SYNC_SETTINGS = ("data_dir", "collection", "embedding", "models_dir", "chunk", "ingest", "ocr",
                 "chroma")


def sync_key(settings: Mapping[str, object]) -> str:
    """The ingest code (its source files' bytes, ~0.2 MB) and the settings a sync reads
    (``settings``: all of them, as JSON-ready values), as one short key.

    Any change to either makes the next sync a full one (once): cheaper than to know which
    change asks for work."""
    read = {k: v for k, v in sorted(settings.items()) if k.startswith(SYNC_SETTINGS)}
    digest = hashlib.sha256(json.dumps(read, sort_keys=True, default=str).encode("utf-8"))
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(f"{path.name}:".encode() + path.read_bytes())
    return digest.hexdigest()[:32]


def remember_full_sync(manifest: Manifest, folder: Path, key: str) -> None:
    """Record that a full sync of ``folder`` ran, and finished, under ``key``."""
    manifest.set_meta(f"synced:{folder.resolve()}", key)


def unchanged_report(folder: Path, manifest: Manifest, embedder: str, *, key: str,
                     store_count: int, dry_run: bool = False,
                     passwords: Mapping[str, str] | None = None,
                     follow_links: bool = False) -> IngestReport | None:
    """The report of syncing ``folder`` when it needs no work; ``None`` when it may need some.

    ``embedder``: the model id a sync would index with; ``key``: ``sync_key`` now;
    ``store_count``: the chunks the store holds (the collection's, every folder's).
    ``seconds`` is left at 0 for the caller to set.
    """
    root = str(folder.resolve())
    if manifest.meta(f"synced:{root}") != key:
        return None  # never synced in full, or since then the code or the settings changed
    known = {rec.source: rec for rec in manifest.records(root)}
    if not known or manifest.journal(root):
        return None  # an empty index, or a killed run to clean up: the full sync
    if manifest.meta(f"loaders:{root}") != LOADERS_VERSION:
        return None  # newer loaders: failed files get another read, and the version is written
    if store_count < manifest.chunk_total():
        return None  # the store lost chunks: the full sync finds whose, and indexes them again
    report = IngestReport(folder=root, dry_run=dry_run)
    planner = Planner(root, report, manifest, embedder, dry_run=True, retry_failed=False,
                      done=lambda _source: None)
    found = scan(folder, follow_links=follow_links)
    seen = planner.not_walked(found, known)
    for path in found.files:
        source = path.relative_to(folder).as_posix()
        old = known.get(source)
        try:
            stat = path.stat()
        except OSError:
            return None  # the full sync reports why
        if old is None or (old.size, old.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
            return None  # new, or touched: hashing and recording its time is the sync's work
        if (old.status == "skipped") != (path.suffix.lower() not in LOADERS):
            return None  # a skipped type that is read now, or the other way round
        if old.status != "skipped" and old.embedder != embedder:
            return None  # indexed with another model: the sync refuses or re-indexes
        seen.add(source)
        report.files += 1
        # The planner decides "unchanged" exactly as the sync does; with equal size and time
        # it does not hash. Anything it would (re)index means work.
        if planner.plan(path, source, old, (passwords or {}).get(source), force=False):
            return None
    if set(known) - seen:
        return None  # files gone: their chunks are deleted by the full sync
    for items in (report.unchanged, report.skipped):
        items.sort()
    report.failed = dict(sorted(report.failed.items()))
    return report
