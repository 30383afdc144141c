"""Files uploaded through the browser, saved into one folder that the library page syncs.

A browser sends whatever name it likes (``../../etc/passwd``, ``C:\\x\\y.pdf``, a name with
control characters). ``safe_filename`` keeps only the last path component and a conservative
set of characters; ``save_upload`` bounds the size, checks the type, and writes through a
temporary file in the upload folder that is then renamed, so nothing is ever written outside
the folder and a half-written file is never indexed.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rag.errors import RagError

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 120
_UNSAFE = re.compile(r"[^\w.\- ()]+", re.UNICODE)
_RESERVED_WINDOWS = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                     *(f"lpt{i}" for i in range(10))}


class UploadRejectedError(RagError):
    """One uploaded file was refused (type, size or name); the others go on."""


@dataclass(frozen=True)
class UploadPolicy:
    """What the upload folder accepts."""

    max_bytes: int
    allowed_suffixes: frozenset[str]

    @classmethod
    def of(cls, max_mb: float, suffixes: Iterable[str]) -> UploadPolicy:
        return cls(int(max_mb * 1024 * 1024), frozenset(s.lower() for s in suffixes))


def safe_filename(name: str) -> str:
    """A file name that is a single, harmless path component; ``""`` when nothing is left."""
    name = unicodedata.normalize("NFKC", name)
    name = name.replace("\\", "/").split("/")[-1]  # a path (either separator) keeps its last part
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")  # control chars
    name = _UNSAFE.sub("_", name).strip(" .")
    name = re.sub(r"_{2,}", "_", name)
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    if stem.lower() in _RESERVED_WINDOWS:
        stem = f"_{stem}"
    suffix = suffix.lower()
    room = MAX_NAME_LENGTH - (len(suffix) + 1 if suffix else 0)
    stem = stem[:room].rstrip(" .")
    if not stem:
        return ""
    return f"{stem}.{suffix}" if suffix else stem


@dataclass(frozen=True)
class SavedUpload:
    name: str  # the sanitised file name in the upload folder
    path: Path
    size: int
    replaced: bool  # a file of that name was there and is now the new version


def upload_problem(name: str, size: int | None, policy: UploadPolicy) -> str | None:
    """Why an upload named ``name`` of ``size`` bytes would be refused, before it is saved (the
    library page shows it next to the file); None when it would be accepted."""
    try:
        _checked_name(name, policy)
    except UploadRejectedError as exc:
        return str(exc)
    if size is not None and size > policy.max_bytes:
        return str(_too_large(name, policy.max_bytes))
    return None


def _checked_name(name: str, policy: UploadPolicy) -> str:
    """The safe name of an upload of an accepted type, or ``UploadRejectedError``."""
    safe = safe_filename(name)
    if not safe:
        raise UploadRejectedError(f"{name!r}: the file name has no usable characters; rename it")
    suffix = Path(safe).suffix.lower()
    if suffix not in policy.allowed_suffixes:
        allowed = ", ".join(sorted(policy.allowed_suffixes))
        raise UploadRejectedError(
            f"{name!r}: type {suffix or '(none)'} is not supported; upload one of {allowed}"
        )
    return safe


def _too_large(name: str, max_bytes: int) -> UploadRejectedError:
    return UploadRejectedError(
        f"{name!r} is larger than the upload limit of {human_size(max_bytes)}; "
        "raise RAG_UPLOAD_MAX_MB, or ingest its folder with `rag ingest DIR`"
    )


def save_upload(folder: Path, name: str, data: BinaryIO | bytes, policy: UploadPolicy) -> SavedUpload:
    """Save one upload into ``folder``; ``UploadRejectedError`` says why it was refused."""
    safe = _checked_name(name, policy)
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    target = root / safe
    if target.parent != root:  # cannot happen after safe_filename; checked all the same
        raise UploadRejectedError(f"{name!r}: the name leaves the upload folder")
    fd, tmp_name = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=root)
    tmp = Path(tmp_name)
    try:
        size = _copy_bounded(data, fd, policy.max_bytes, name)
        replaced = target.exists() or target.is_symlink()
        # os.replace swaps the directory entry: a symlink at the target is replaced, not followed.
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("saved upload %s (%d bytes)", target, size)
    return SavedUpload(safe, target, size, replaced)


def _copy_bounded(data: BinaryIO | bytes, fd: int, max_bytes: int, name: str) -> int:
    def too_large() -> UploadRejectedError:
        return _too_large(name, max_bytes)

    size = 0
    with os.fdopen(fd, "wb") as out:
        if isinstance(data, bytes | bytearray):
            if len(data) > max_bytes:
                raise too_large()
            out.write(data)
            return len(data)
        while block := data.read(1 << 20):
            size += len(block)
            if size > max_bytes:
                raise too_large()
            out.write(block)
    return size


def human_size(n: int) -> str:
    """``2000 MB``, ``52.4 MB``, ``10.2 KB``, ``900 bytes``: a limit as a person reads it."""
    if n >= 1024 * 1024:
        return f"{round(n / 1024 / 1024, 1):g} MB"
    if n >= 1024:
        return f"{round(n / 1024, 1):g} KB"
    return f"{n} bytes"


def is_inside(folder: Path, path: Path) -> bool:
    """Whether ``path`` is ``folder`` or below it, after resolving links."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
