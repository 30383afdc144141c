"""Planning a sync: what each file found needs, against the manifest.

Stat first, and hash only what changed size or time: an unchanged file costs one ``stat``. A
file whose bytes did not change keeps its chunks (its new time is recorded); one that failed
before is read again only with a new password or under newer loaders (``LOADERS_VERSION``).
Planning writes only what it settles itself: the rows of skipped files and new times.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ingest.loaders import LOADERS
from ingest.manifest import FileRecord, Manifest
from ingest.report import IngestReport
from ingest.scan import Scan

__all__ = ["Planned", "Planner", "file_hash"]


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Planned:
    """A file the plan decided to (re)index."""

    path: Path
    source: str
    size: int
    mtime_ns: int
    digest: str
    old: FileRecord | None
    password: str | None = None

    def record(self, root: str, embedder: str, **fields: object) -> FileRecord:
        """The manifest row of this file as read now; ``fields`` set the rest."""
        rec = FileRecord(root=root, source=self.source, size=self.size, mtime_ns=self.mtime_ns,
                         content_hash=self.digest, embedder=embedder)
        for key, value in fields.items():
            setattr(rec, key, value)
        return rec


class Planner:
    """Decides, file by file, what one sync of ``root`` does; fills ``report`` as it goes.

    ``done(source)`` is called for every file planning settles (the run's progress)."""

    def __init__(self, root: str, report: IngestReport, manifest: Manifest, embedder: str, *,
                 dry_run: bool, retry_failed: bool, done: Callable[[str], None]) -> None:
        self.root = root
        self.report = report
        self.manifest = manifest
        self.embedder = embedder  # the model id the index is built with
        self.dry_run = dry_run
        self.retry_failed = retry_failed
        self.done = done

    def not_walked(self, found: Scan, known: Mapping[str, FileRecord]) -> set[str]:
        """Report what the walk refused and the folders it could not list; the indexed sources
        kept because their folder could not be listed (not gone: not to be deleted)."""
        kept: set[str] = set()
        for source, reason in found.refused.items():  # never opened; gone from the index
            self.report.files += 1
            self.report.failed[source] = reason
            self.done(source)
        for folder_name, reason in found.unreadable.items():
            prefix = "" if folder_name == "." else folder_name + "/"
            inside = [s for s in known if s.startswith(prefix)]
            kept.update(inside)  # a folder that cannot be listed is not an empty folder
            self.report.failed[prefix or "./"] = (
                f"cannot read the folder ({reason}): the {len(inside)} documents indexed from it "
                "are kept; make it readable and run again")
        return kept

    def plan(self, path: Path, source: str, old: FileRecord | None, password: str | None,
             *, force: bool) -> Planned | None:
        """Decide what ``path`` needs; ``None`` when nothing more is to be done for it."""
        report = self.report
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
                self.manifest.put(FileRecord(
                    root=self.root, source=source, size=stat.st_size, mtime_ns=stat.st_mtime_ns,
                    content_hash="", status="skipped", embedder=self.embedder,
                    reason=f"unsupported file type {path.suffix or '(no extension)'}"))
            self.done(source)
            return None
        usable = (old is not None and old.embedder == self.embedder
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
                self.manifest.touch(self.root, source, stat.st_size, stat.st_mtime_ns)
            if self._settled(old, source, retry):
                return None
        (report.updated if old is not None and old.status != "skipped"
         else report.indexed).append(source)
        return Planned(path, source, stat.st_size, stat.st_mtime_ns, digest, old, password)

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
