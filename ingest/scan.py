"""Walking a folder without opening anything: which files a sync reads, which it refuses, and
which folders it could not list (their documents are kept, never taken as removed)."""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Scan", "scan", "walk"]


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
