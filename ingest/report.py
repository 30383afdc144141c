"""What a sync did: the report it returns, and the progress it announces while it runs."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from rag.terminal import printable


@dataclass
class Progress:
    """A snapshot for progress bars: files decided so far, pages and chunks written."""

    files_done: int
    files_total: int
    pages: int
    chunks: int
    embedded: int
    source: str = ""


@dataclass
class IngestReport:
    """Every file of the folder lands in exactly one of the lists (or ``failed``)."""

    folder: str
    files: int = 0
    pages: int = 0
    ocr_pages: int = 0  # of ``pages``, read by OCR (scans, images)
    chunks: int = 0
    embedded: int = 0
    indexed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    repointed: list[str] = field(default_factory=list)  # indexed/updated by reusing chunks
    seconds: float = 0.0
    dry_run: bool = False

    def summary(self) -> str:
        """One line; the CLI prints it last."""
        verb = "would index" if self.dry_run else "indexed"
        return (
            f"{self.files} files: {verb} {len(self.indexed)}, updated {len(self.updated)}, "
            f"unchanged {len(self.unchanged)}, removed {len(self.removed)}, "
            f"skipped {len(self.skipped)}, failed {len(self.failed)}; {self.pages} pages"
            f"{f' ({self.ocr_pages} {_pages(self.ocr_pages)} OCRed)' if self.ocr_pages else ''}, "
            f"{self.chunks} chunks, {self.embedded} embedded; {self.seconds:.1f} s"
        )

    def table(self, *, width: int = 100) -> str:
        """The summary table: one row per outcome, every indexed, updated and removed file
        named (wrapped to ``width``, never cut to "... (+n)"), skipped files by kind, failure
        reasons (file names with control characters escaped: the table is for a terminal)."""
        rows: list[tuple[str, int, list[str]]] = [
            ("indexed", len(self.indexed), _names(self.indexed, width - _INDENT)),
            ("updated", len(self.updated), _names(self.updated, width - _INDENT)),
            ("unchanged", len(self.unchanged), []),
            ("removed", len(self.removed), _names(self.removed, width - _INDENT)),
            ("skipped", len(self.skipped), [_skipped_kinds(self.skipped)]),
            ("failed", len(self.failed), []),
        ]
        if self.repointed:
            rows.insert(2, ("re-pointed", len(self.repointed),
                            ["renamed or copied: no parsing, no embedding"]))
        lines: list[str] = []
        for name, count, detail in rows:
            first, *more = detail or [""]
            lines.append(f"  {name:<10} {count:>6}  {first}".rstrip())
            lines.extend(" " * _INDENT + line for line in more)
        reasons = Counter(_reason_kind(r) for r in self.failed.values())
        for reason, count in reasons.most_common():
            lines.append(f"  {'':<10} {count:>6}  {printable(reason)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_INDENT = 21  # where a row's detail starts: "  " + 10 + " " + 6 + "  "


def _pages(n: int) -> str:
    return "page" if n == 1 else "pages"


def _names(items: list[str], width: int) -> list[str]:
    """Every name, comma-separated, in lines of about ``width`` characters (a name longer
    than that has a line of its own)."""
    lines: list[str] = []
    line = ""
    for i, item in enumerate(items):
        name = printable(item) + ("," if i < len(items) - 1 else "")
        if line and len(line) + 1 + len(name) > width:
            lines.append(line)
            line = name
        else:
            line = f"{line} {name}" if line else name
    if line:
        lines.append(line)
    return lines


def _skipped_kinds(items: list[str]) -> str:
    kinds = Counter((item.rsplit(".", 1)[-1].lower() if "." in item else "(no extension)")
                    for item in items)
    return ", ".join(f"{n} .{printable(k)}" if not k.startswith("(") else f"{n} {k}"
                     for k, n in kinds.most_common(5))


def _reason_kind(reason: str) -> str:
    """Failures grouped by what they are: "malformed PDF", "encrypted", "timed out ..."."""
    head = reason.split(" (", 1)[0].split(":", 1)[0].strip()
    return head or reason
