"""The library page, headless with Streamlit's AppTest: upload, list, delete, hostile uploads.

Files go through the page's own ``st.file_uploader`` (AppTest registers their bytes like the
browser uploads them) and its buttons; the outcome is checked in the table the user sees and
in the Chroma index itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import KNOWLEDGE_BASE, make_settings

pytestmark = pytest.mark.slow

OpenApp = Callable[..., AppTest]

TIDES = (
    "# Tides of the Northern Bay\n\nThe harbour master records a spring tide of 5.2 metres at "
    "the Northern Bay pier. Neap tides there rarely exceed 2.1 metres.\n"
)
BEES = (
    "Beekeeping notes.\n\nA healthy colony of Carniolan bees overwinters on about eighteen "
    "kilograms of honey. The queen starts laying again in late January.\n"
)


def _documents(at: AppTest) -> list[str]:
    return at.dataframe[0].value["Document"].tolist()


def _shown(elements: object) -> str:
    """The text of alerts as the user reads it (Markdown escapes removed)."""
    return " ".join(e.value for e in elements).replace("\\", "")  # type: ignore[attr-defined]


def _chunk_ids(data_dir: Path, source: str) -> list[str]:
    """What the index holds for an uploaded file, read through a fresh App (not the page's)."""
    from application.factory import App

    uploads = make_settings(data_dir).uploads_dir.resolve()
    return App(make_settings(data_dir)).store.ids_for_source(source, root=str(uploads))


def _upload(at: AppTest, files: list[tuple[str, bytes, str]]) -> None:
    at.file_uploader[0].set_value(files).run()
    assert not at.exception, at.exception
    at.button(key="upload_submit").click().run()
    assert not at.exception, at.exception


def test_upload_several_files_then_delete_one(open_app: OpenApp, data_dir: Path) -> None:
    at = open_app("pages/library.py")
    before = _documents(at)
    assert sorted(before) == sorted(p.name for p in KNOWLEDGE_BASE.iterdir())

    _upload(at, [("tides.md", TIDES.encode(), "text/markdown"),
                 ("bees.txt", BEES.encode(), "text/plain")])
    assert "Saved tides.md, bees.txt." in _shown(at.success)
    assert not at.warning and not at.error
    assert sorted(_documents(at)) == sorted([*before, "tides.md", "bees.txt"])
    table = at.dataframe[0].value.set_index("Document")
    assert table.loc["tides.md", "Folder"] == "uploads"
    assert table.loc["tides.md", "Status"] == "indexed" and table.loc["tides.md", "Chunks"] >= 1
    assert table.loc["bees.txt", "Type"] == "TXT"
    tides_ids, bees_ids = _chunk_ids(data_dir, "tides.md"), _chunk_ids(data_dir, "bees.txt")
    assert tides_ids and bees_ids
    assert len(tides_ids) == table.loc["tides.md", "Chunks"]
    assert (data_dir / "uploads" / "tides.md").read_text() == TIDES

    # Delete through the page: the row goes, the chunks go, the uploaded file goes.
    choice = at.selectbox(key="delete_choice")
    [label] = [o for o in choice.options if o.startswith("tides.md")]
    choice.set_value(label).run()
    at.button(key="delete_doc").click().run()
    at.button(key="delete_confirm").click().run()  # the page asks first
    assert not at.exception, at.exception
    assert f"Deleted tides.md and its {len(tides_ids)} chunks" in _shown(at.success)
    assert "tides.md" not in _documents(at)
    assert "bees.txt" in _documents(at)
    assert _chunk_ids(data_dir, "tides.md") == []
    assert _chunk_ids(data_dir, "bees.txt") == bees_ids
    assert not (data_dir / "uploads" / "tides.md").exists()

    # A re-sync of the uploads folder does not bring it back.
    at.button(key="resync").click().run()
    assert not at.exception, at.exception
    assert "tides.md" not in _documents(at)


def _files_outside(folder: Path) -> set[Path]:
    """Every file of the test's temporary tree (which holds ``folder``) not inside ``folder``."""
    root = Path.cwd()  # the session's base temp dir: tmp_path and the working directory
    assert folder.is_relative_to(root)
    return {p for p in root.rglob("*") if p.is_file() and not p.is_relative_to(folder)}


def test_hostile_names_and_oversized_files_stay_out(
    open_app: OpenApp, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_UPLOAD_MAX_MB", "0.01")  # about 10 KB
    at = open_app("pages/library.py")
    uploads = data_dir / "uploads"
    outside_before = _files_outside(data_dir)

    _upload(at, [("../../evil.txt", BEES.encode(), "text/plain"),
                 ("big.txt", b"x" * 20_000, "text/plain")])

    warnings = _shown(at.warning)
    assert "'../../evil.txt' was saved as evil.txt" in warnings
    assert "'big.txt' is larger than the upload limit of 10.2 KB" in warnings
    assert "RAG_UPLOAD_MAX_MB" in warnings  # and how to raise it

    # Nothing was written outside the data dir (``../../evil.txt`` from the upload folder is
    # tmp_path/evil.txt), nor in the working directory; the upload folder holds only the
    # sanitised file, and no half-written part of the big one.
    assert _files_outside(data_dir) == outside_before
    assert not (tmp_path / "evil.txt").exists()
    assert sorted(p.name for p in uploads.iterdir()) == ["evil.txt"]
    assert [p for p in data_dir.rglob("evil.txt")] == [uploads / "evil.txt"]

    # The page keeps working: the renamed file is indexed, the big one is not, and a normal
    # upload still goes through.
    assert "evil.txt" in _documents(at) and "big.txt" not in _documents(at)
    assert _chunk_ids(data_dir, "evil.txt")
    _upload(at, [("tides.md", TIDES.encode(), "text/markdown")])
    assert "tides.md" in _documents(at)
    assert _chunk_ids(data_dir, "tides.md")
