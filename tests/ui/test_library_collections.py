"""The library page (issue 14): deleting a document asks first and then forgets it everywhere on
the page at once (item 2); a refused upload says why next to its name (item 6); collections are
created, filled and picked per chat; a document's chunks are shown as the index holds them.

AppTest drives the page headless for the first two; a browser (Chromium through Playwright,
`rag ui` served on a free port) for collections and the chunk inspector, and it saves
docs/screenshots/library.png.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import KNOWLEDGE_BASE
from tests.ui.browser import chat_page
from tests.ui.test_browser import (  # noqa: F401 (serve: a fixture)
    SCREENSHOTS,
    Serve,
    _open_page,
    _screenshot,
    serve,
)

pytestmark = pytest.mark.slow

OpenApp = Callable[..., AppTest]

TIDES = ("# Tides of the Northern Bay\n\nThe harbour master records a spring tide of 5.2 metres "
         "at the Northern Bay pier. Neap tides there rarely exceed 2.1 metres.\n")
BEES = ("# Beekeeping notes\n\nA healthy colony of Carniolan bees overwinters on about eighteen "
        "kilograms of honey. The queen starts laying again in late January.\n\n## Swarming\n\n"
        "Colonies swarm in May when the brood nest is crowded; a new queen stays behind.\n")


def _documents(at: AppTest) -> list[str]:
    return at.dataframe[0].value["Document"].tolist()  # the first table: the documents


def _shown(elements: object) -> str:
    return " ".join(e.value for e in elements).replace("\\", "")  # type: ignore[attr-defined]


def test_delete_asks_first_then_the_page_forgets_the_document(
        open_app: OpenApp, data_dir: Path) -> None:
    at = open_app("pages/library.py")
    at.file_uploader[0].set_value([("tides.md", TIDES.encode(), "text/markdown")]).run()
    at.button(key="upload_submit").click().run()
    assert not at.exception, at.exception
    uploaded = data_dir / "uploads" / "tides.md"
    assert uploaded.exists() and "tides.md" in _documents(at)

    choice = at.selectbox(key="delete_choice")
    [label] = [o for o in choice.options if o.startswith("tides.md")]
    choice.set_value(label).run()
    at.button(key="delete_doc").click().run()
    assert not at.exception, at.exception
    # Nothing is deleted yet: the page asks, saying the uploaded file goes from disk.
    assert uploaded.exists() and "tides.md" in _documents(at)
    question = _shown(at.warning)
    assert "Delete tides.md and its 1 chunks from the index?" in question
    assert "The uploaded file is removed from disk" in question

    at.button(key="delete_cancel").click().run()  # cancel keeps everything
    assert uploaded.exists() and "tides.md" in _documents(at) and not at.warning

    at.button(key="delete_doc").click().run()
    at.button(key="delete_confirm").click().run()
    assert not at.exception, at.exception
    assert "Deleted tides.md and its 1 chunks." in _shown(at.success)
    assert not uploaded.exists()
    # In the same run: the table, the delete box and its button no longer hold the file.
    assert "tides.md" not in _documents(at)
    box = at.selectbox(key="delete_choice")
    assert box.value is None
    assert not any(o.startswith("tides.md") for o in box.options)
    assert at.button(key="delete_doc").disabled
    assert not any(o.startswith("tides.md") for o in at.selectbox(key="inspect_choice").options)
    at.run()  # and on the next run too
    assert at.selectbox(key="delete_choice").value is None and not at.warning


def test_a_refused_upload_says_why_next_to_its_name(open_app: OpenApp, data_dir: Path) -> None:
    at = open_app("pages/library.py")
    at.file_uploader[0].set_value([("notes.xyz", b"some notes", "application/octet-stream"),
                                   ("bees.md", BEES.encode(), "text/markdown")]).run()
    assert not at.exception, at.exception
    # As soon as the files are chosen, before anything is added: the reason, as text.
    shown = _shown(at.error)
    assert "Not added: 'notes.xyz': type .xyz is not supported; upload one of" in shown
    assert ".pdf" in shown
    assert at.button(key="upload_submit").label == "Add 1 file to the library"
    at.button(key="upload_submit").click().run()
    assert "bees.md" in _documents(at) and "notes.xyz" not in _documents(at)
    assert not (data_dir / "uploads" / "notes.xyz").exists()


# --- in the browser ------------------------------------------------------------------------------


def _choose(page: Any, root: Any, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit selectbox labelled ``label`` inside ``root``."""
    box = root.get_by_test_id("stSelectbox").filter(
        has=page.get_by_test_id("stWidgetLabel").get_by_text(label, exact=True)).first
    box.locator("input").first.click()
    page.get_by_role("option", name=option).first.click()


@pytest.mark.browser
def test_collections_and_the_chunk_inspector_in_the_browser(
        serve: Serve, tmp_path: Path) -> None:  # noqa: F811 (the fixture imported above)
    from playwright.sync_api import expect

    url = serve()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    notes = tmp_path / "upload"
    notes.mkdir()
    (notes / "bees.md").write_text(BEES)
    (notes / "notes.xyz").write_text("not a document")
    with chat_page(url, height=1300) as page:
        _open_page(page, "Library")
        main = page.get_by_test_id("stMain")
        expect(main.get_by_test_id("stDataFrame").first).to_be_visible()

        # Create a collection by name: it is selected, and empty.
        main.get_by_role("button", name="New collection").click()
        name_box = page.get_by_test_id("stTextInputField").and_(page.get_by_label("Name"))
        name_box.fill("beekeeping")
        name_box.press("Enter")
        page.get_by_role("button", name="Create").click()
        expect(main.get_by_text("Created collection beekeeping")).to_be_visible()
        expect(main.get_by_text("No documents yet")).to_be_visible()

        # Upload into it; the refused file says why, in words, next to its name.
        main.get_by_test_id("stFileUploader").locator("input[type=file]").set_input_files(
            [str(notes / "bees.md"), str(notes / "notes.xyz")])
        expect(main.get_by_text(re.compile(
            r"Not added: 'notes\.xyz': type \.xyz is not supported"))).to_be_visible()
        main.get_by_role("button", name="Add 1 file to the library").click()
        expect(main.get_by_text("Saved bees.md.")).to_be_visible()
        table = main.get_by_test_id("stDataFrame").first
        expect(table).to_be_visible()
        assert not (KNOWLEDGE_BASE / "bees.md").exists()

        # The chunk inspector: the document's chunks as the index holds them.
        _choose(page, main, "Document", "bees.md  (uploads)")
        expect(main.get_by_text("2 chunks", exact=True)).to_be_visible()
        first = main.get_by_test_id("stCode").first
        expect(first).to_contain_text("# Beekeeping notes")  # as indexed, not rendered
        expect(first).to_contain_text("eighteen kilograms of honey")
        expect(main.get_by_text(re.compile(r"#2 · Beekeeping notes > Swarming · \d+ tokens"))
               ).to_be_visible()
        _screenshot(page, "library")

        # A chat picks the collection; its answer cites only that collection's file.
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Chat").click()
        sidebar = page.get_by_test_id("stSidebar")
        _choose(page, sidebar, "Collection", "beekeeping")
        expect(sidebar.get_by_text(re.compile(r"(?<!\d)1 documents"))).to_be_visible()
        chat_input = page.get_by_test_id("stChatInputTextArea")
        chat_input.fill("How many kilograms of honey do Carniolan bees overwinter on?")
        chat_input.press("Enter")
        assistant = page.get_by_test_id("stChatMessage").nth(1)
        expect(assistant.get_by_text(re.compile(r"Sources \(\d+\)"))).to_be_visible()
        expect(assistant).to_contain_text("eighteen")
        expect(assistant.get_by_text("bees.md").first).to_be_visible()
        text = assistant.inner_text()
        assert not any(p.name in text for p in KNOWLEDGE_BASE.iterdir())

        # The default collection is still there, with the knowledge base.
        _choose(page, sidebar, "Collection", "documents (default)")
        kb_files = len(list(KNOWLEDGE_BASE.iterdir()))
        expect(sidebar.get_by_text(re.compile(rf"(?<!\d){kb_files} documents"))).to_be_visible()


def test_create_fill_and_delete_a_collection_on_the_page(open_app: OpenApp, data_dir: Path) -> None:
    at = open_app("pages/library.py")
    kb = sorted(_documents(at))
    at.text_input(key="new_collection_name").set_value("beekeeping")
    at.button(key="create_collection").click().run()
    assert not at.exception, at.exception
    assert "Created collection beekeeping" in _shown(at.success)
    assert at.selectbox(key="library_collection").value == "beekeeping"
    assert not at.dataframe  # an empty collection: no table
    at.file_uploader[0].set_value([("bees.md", BEES.encode(), "text/markdown")]).run()
    at.button(key="upload_submit").click().run()
    assert _documents(at) == ["bees.md"]
    assert (data_dir / "collections" / "beekeeping" / "uploads" / "bees.md").exists()
    assert not (data_dir / "uploads" / "bees.md").exists()
    # The chunk inspector shows what the index holds for it.
    at.selectbox(key="inspect_choice").set_value("bees.md  (uploads)").run()
    assert "2 chunks" in [c.value for c in at.caption]
    assert [c.value.startswith(("# Beekeeping notes", "## Swarming")) for c in at.code] == [
        True, True]
    assert "eighteen kilograms of honey" in at.code[0].value

    at.selectbox(key="library_collection").set_value("documents").run()
    assert sorted(_documents(at)) == kb  # the default collection is untouched
    at.selectbox(key="library_collection").set_value("beekeeping").run()

    at.button(key="delete_collection").click().run()
    assert (data_dir / "collections" / "beekeeping").exists()  # asked first
    assert "Delete collection **beekeeping** (1 document, 2 chunks)?" in _shown(at.warning)
    at.button(key="collection_delete_yes").click().run()
    assert not at.exception, at.exception
    assert "Deleted collection beekeeping" in _shown(at.success)
    assert not (data_dir / "collections" / "beekeeping").exists()
    assert at.selectbox(key="library_collection").options == ["documents (default)"]
    assert sorted(_documents(at)) == kb
