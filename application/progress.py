"""The live progress bar of `rag ingest` on stderr: files, pages, chunks, embedded, ETA."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ingest.report import Progress
from rag.errors import RagError
from rag.terminal import printable

# "ingest  40%|####      | 8/20 files, 96 pages, 410 chunks, 402 embedded | a.pdf [00:31, ETA 00:46]"
_FORMAT = ("{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} files{postfix} "
           "[{elapsed}, ETA {remaining}]")


class ProgressBar:
    """A tqdm bar over files; pages and chunks in its postfix. ``disable`` for --json/--quiet."""

    def __init__(self, *, disable: bool) -> None:
        self._disable = disable
        self._bar: Any = None  # made at the first update, so model loading does not skew the ETA

    def update(self, p: Progress) -> None:
        if self._disable:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=p.files_total, unit="file", file=sys.stderr,
                             dynamic_ncols=True, desc="ingest", bar_format=_FORMAT)
        bar = self._bar
        if bar.total != p.files_total:
            bar.total = p.files_total
        bar.update(p.files_done - bar.n)
        bar.set_postfix_str(f"{p.pages} pages, {p.chunks} chunks, {p.embedded} embedded"
                            + (f" | {printable(p.source)[-40:]}" if p.source else ""), refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def parse_passwords(items: list[str], passwords_file: str | None) -> dict[str, str]:
    """``FILE=PASSWORD`` options and a ``FILE<TAB>PASSWORD`` file; paths relative to the folder."""
    passwords: dict[str, str] = {}
    if passwords_file:
        try:
            lines = Path(passwords_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise RagError(f"cannot read --passwords-file {passwords_file} ({exc.strerror})") \
                from exc
        for number, line in enumerate(lines, start=1):
            if not line.strip() or line.startswith("#"):
                continue
            name, sep, password = line.partition("\t")
            if not sep:
                raise RagError(f"{passwords_file}:{number}: expected FILE<TAB>PASSWORD")
            passwords[name] = password
    for item in items:
        name, sep, password = item.partition("=")
        if not sep:
            raise RagError(f"--password takes FILE=PASSWORD (got {item!r})")
        passwords[name] = password
    return passwords
