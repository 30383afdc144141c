"""rag/uploads.py: whatever name and size a browser sends, files land in the upload folder only."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from rag.uploads import (
    MAX_NAME_LENGTH,
    UploadPolicy,
    UploadRejectedError,
    is_inside,
    safe_filename,
    save_upload,
)

POLICY = UploadPolicy.of(0.01, [".txt", ".md", ".pdf"])  # about 10 KB


@pytest.mark.parametrize(("name", "expected"), [
    ("../../evil.txt", "evil.txt"),
    ("/etc/passwd", "passwd"),
    ("a/b/../c.txt", "c.txt"),
    ("..\\..\\evil.txt", "evil.txt"),
    ("C:\\Users\\me\\Report.PDF", "Report.pdf"),
    ("\\\\server\\share\\notes.md", "notes.md"),
    ("bad\x00na\x1bme\r\n.txt", "badname.txt"),
    ("invoice\u202etxt.exe", "invoicetxt.exe"),  # a right-to-left override is dropped
    ("what?<is>|this*:.txt", "what_is_this_.txt"),
    ("CON.txt", "_CON.txt"),
    ("nul", "_nul"),
    ("lpt1.md", "_lpt1.md"),
    ("  .hidden. ", "hidden"),
    ("résumé 2024 (final).md", "résumé 2024 (final).md"),
    ("..", ""),
    ("", ""),
    ("///", ""),
])
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_long_names_are_cut_and_keep_their_type() -> None:
    safe = safe_filename("x" * 500 + ".Markdown")
    assert len(safe) <= MAX_NAME_LENGTH
    assert safe.endswith("x.markdown")


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_traversal_names_are_saved_inside_the_folder(tmp_path: Path) -> None:
    uploads = tmp_path / "data" / "uploads"
    for name in ["../../evil.txt", "/tmp/evil2.txt", "..\\..\\evil3.txt"]:
        saved = save_upload(uploads, name, b"hello", POLICY)
        assert saved.path.parent == uploads.resolve()
        assert is_inside(uploads, saved.path)
    assert _tree(tmp_path) == {"data", "data/uploads", "data/uploads/evil.txt",
                               "data/uploads/evil2.txt", "data/uploads/evil3.txt"}


def test_size_is_bounded_and_a_refused_file_leaves_nothing(tmp_path: Path) -> None:
    limit = POLICY.max_bytes
    ok = save_upload(tmp_path, "exact.txt", io.BytesIO(b"a" * limit), POLICY)
    assert ok.size == limit and ok.path.stat().st_size == limit
    for data in (b"b" * (limit + 1), io.BytesIO(b"b" * (limit + 1)),
                 io.BytesIO(b"c" * (3 * 1024 * 1024))):
        with pytest.raises(UploadRejectedError, match=r"larger than the upload limit of 10.2 KB"):
            save_upload(tmp_path, "big.txt", data, POLICY)
    assert sorted(os.listdir(tmp_path)) == ["exact.txt"]  # no big.txt, no half-written part


def test_unknown_or_missing_types_are_refused_with_the_accepted_ones(tmp_path: Path) -> None:
    for name in ["tool.exe", "archive.tar.gz", "README"]:
        with pytest.raises(UploadRejectedError, match=r"upload one of \.md, \.pdf, \.txt"):
            save_upload(tmp_path, name, b"x", POLICY)
    with pytest.raises(UploadRejectedError, match="no usable characters"):
        save_upload(tmp_path, "../..", b"x", POLICY)
    assert os.listdir(tmp_path) == []


def test_a_second_upload_of_a_name_replaces_the_first(tmp_path: Path) -> None:
    first = save_upload(tmp_path, "notes.md", b"one", POLICY)
    second = save_upload(tmp_path, "notes.md", b"two", POLICY)
    assert not first.replaced and second.replaced
    assert (tmp_path / "notes.md").read_bytes() == b"two"


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (uploads / "notes.txt").symlink_to(outside)
    saved = save_upload(uploads, "notes.txt", b"uploaded", POLICY)
    assert saved.replaced
    assert not saved.path.is_symlink()
    assert saved.path.read_bytes() == b"uploaded"
    assert outside.read_text() == "keep me"


def test_is_inside_resolves_links(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "escape").symlink_to(tmp_path)
    assert is_inside(uploads, uploads / "a.txt")
    assert not is_inside(uploads, uploads / ".." / "a.txt")
    assert not is_inside(uploads, uploads / "escape" / "a.txt")
