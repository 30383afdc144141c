"""The explorer page, headless with Streamlit's AppTest: the map of the knowledge base, a
query's neighbours, a picked passage's similar passages, and the sample of a large index."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import KNOWLEDGE_BASE, make_settings

pytestmark = pytest.mark.slow

OpenApp = Callable[..., AppTest]
QUERY = "What does ef_search control?"


def _traces(at: AppTest) -> dict[str, dict[str, Any]]:
    """The map's Plotly traces by name, as the browser receives them."""
    [chart] = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    return {t["name"]: t for t in spec["data"] if t.get("name")}


def _points(trace: dict[str, Any]) -> int:
    x = trace["x"]
    if isinstance(x, list):
        return len(x)
    return np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"]).size  # a typed array


def _text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [s.value for s in at.subheader] + [i.value for i in at.info]
    return " ".join(parts).replace("\\", "")


def _chunks(data_dir: Path) -> int:
    from application.factory import App

    return App(make_settings(data_dir)).store.count()


def test_map_plots_every_document_and_a_query_lands_near_its_answer(
    open_app: OpenApp, data_dir: Path
) -> None:
    at = open_app("pages/explorer.py")
    traces = _traces(at)
    documents = sorted(p.name for p in KNOWLEDGE_BASE.iterdir())
    assert sorted(traces) == documents  # one colour per document, nothing else yet
    total = _chunks(data_dir)
    assert sum(_points(t) for t in traces.values()) == total  # every chunk is a point
    assert f"{total} passages from {len(documents)} documents · PCA" in _text(at)
    hover = " ".join(traces["vector-search-handbook.pdf"]["hovertext"])
    assert "vector-search-handbook.pdf · page" in hover  # hover shows file and page

    at.text_input(key="explorer_query").input(QUERY).run()
    assert not at.exception, at.exception
    traces = _traces(at)
    assert "Your query" in traces and _points(traces["Your query"]) == 1
    assert _points(traces["Your query: top 5"]) == 5  # its neighbours, ringed on the map
    assert "Nearest passages to “What does ef_search control?”" in _text(at)
    neighbours = at.dataframe[0].value
    assert len(neighbours) == 5
    assert neighbours["Document"].iloc[0] == "vector-search-handbook.pdf"
    assert "ef_search" in neighbours["Passage"].iloc[0]


def test_neighbours_say_page_or_section_never_none_on_the_chats_similarity_scale(
    open_app: OpenApp, data_dir: Path, embedder: Any
) -> None:
    """Issue 14, items 3 and 6: Markdown passages read 'None' in the Page column, and the
    explorer's scores were on another scale than the chat's source cards."""
    from application.factory import App
    from application.scores import similarities

    at = open_app("pages/explorer.py")
    at.text_input(key="explorer_query").input("How do I check the state of the installation?")
    at.number_input(key="explorer_k").set_value(30).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    markdown = table[table["Document"].str.endswith(".md")]
    pdf = table[table["Document"].str.endswith(".pdf")]
    assert len(markdown) and len(pdf), table  # both kinds among the neighbours
    assert list(markdown["Page"]) == [""] * len(markdown)  # blank, not 'None'
    assert all(markdown["Section"].str.len() > 0)  # where in the file: its heading
    assert all(p.isdigit() for p in pdf["Page"])
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()

    # The similarity is the one the chat shows for the same passage (application/scores.py)
    app = App(make_settings(data_dir))
    app.__dict__["embedder"] = embedder
    hits = app.store.query(embedder.embed_query("How do I check the state of the "
                                                "installation?"), 30)
    expected = similarities(embedder, app.store, "How do I check the state of the "
                            "installation?", hits)
    assert list(table["Similarity"]) == [round(e or 0.0, 2) for e in expected]
    assert table["Similarity"].iloc[0] < 1.0


def test_picking_a_passage_lists_similar_passages(open_app: OpenApp) -> None:
    at = open_app("pages/explorer.py")
    at.selectbox(key="explorer_doc").set_value("user-guide.md").run()
    chunk = at.selectbox(key="explorer_chunk")
    picked_label = chunk.options[0]
    chunk.select_index(0).run()
    assert not at.exception, at.exception

    assert "Picked passage" in _traces(at)
    assert "**user-guide.md**" in " ".join(m.value for m in at.markdown).replace("\\", "")
    similar = at.dataframe[0].value
    assert len(similar) == 5
    assert similar["Similarity"].is_monotonic_decreasing
    # The passage itself is not among its neighbours.
    picked_text = picked_label.split(". ", 1)[1].rstrip("…")
    assert not any(p.startswith(picked_text) for p in similar["Passage"])


def test_a_large_index_is_sampled_and_the_page_says_so(
    open_app: OpenApp, data_dir: Path, make_app: Callable[..., Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A second folder with the same documents doubles the chunks (their vectors are reused).
    copy = tmp_path / "more"
    shutil.copytree(KNOWLEDGE_BASE, copy)
    app = make_app(data_dir)
    app.pipeline.sync(copy)
    app.pipeline.close()
    total = app.store.count()
    assert total > 100
    monkeypatch.setenv("RAG_EXPLORER_MAX_POINTS", "100")

    at = open_app("pages/explorer.py")
    assert f"Showing a random sample of 100 of {total} passages" in _text(at)
    assert sum(_points(t) for t in _traces(at).values()) == 100
    # Neighbours are still searched in the whole index.
    at.text_input(key="explorer_query").input(QUERY).run()
    assert not at.exception, at.exception
    assert at.dataframe[0].value["Document"].iloc[0] == "vector-search-handbook.pdf"


# --- the page's core (application/explorer.py), on the same real index ------------------------


def test_a_sample_is_the_same_size_and_reproducible_whichever_way_it_is_read(
    data_dir: Path,
) -> None:
    from application.explorer import load_points
    from application.factory import App

    app = App(make_settings(data_dir))
    roots = {r.root for r in app.manifest.records()}
    total = app.store.count()
    by_ids = load_points(app.store, 50, roots=roots)
    assert (len(by_ids), by_ids.total, by_ids.sampled) == (50, total, True)
    assert by_ids.ids == load_points(app.store, 50, roots=roots).ids  # same seed, same sample
    assert by_ids.vectors.shape == (50, app.store.records(by_ids.ids[:1])[0][3].size)
    # Roots that miss chunks: every chunk is read instead, and the sample is as large.
    scanned = load_points(app.store, 50, roots=())
    assert (len(scanned), scanned.total, scanned.sampled) == (50, total, True)
    everything = load_points(app.store, total)
    assert not everything.sampled and sorted(everything.ids) == sorted(
        app.store.ids_for_root(str(KNOWLEDGE_BASE.resolve())))
    row = everything.index_of(by_ids.ids[0])
    assert row is not None and everything.sources[row] == by_ids.sources[0]


def test_pca_axes_carry_the_most_variance() -> None:
    from application.explorer import PointSet, project

    rng = np.random.default_rng(1)
    # 300 points in 20 dimensions, stretched along two known directions.
    vectors = rng.normal(size=(300, 20)).astype(np.float32)
    vectors[:, 3] *= 10
    vectors[:, 7] *= 5
    points = PointSet([str(i) for i in range(300)], [""] * 300, ["a"] * 300, [None] * 300,
                      vectors, total=300)
    proj = project(points, "pca")
    variances = proj.xy.var(axis=0)
    assert variances[0] > variances[1] > vectors[:, [0, 1, 2]].var(axis=0).max()
    singular = np.linalg.svd(vectors - vectors.mean(0), compute_uv=False)
    assert np.allclose(variances, singular[:2] ** 2 / 300, rtol=1e-3)
    assert np.allclose(proj.place(vectors[:5]), proj.xy[:5], atol=1e-4)  # same map for new points


def test_many_documents_keep_a_readable_legend() -> None:
    from application.explorer import PointSet, project
    from ui.explorer_map import MAX_COLOURED, base_figure

    # 20 documents, document i has i + 1 chunks: the 13 biggest keep a colour of their own.
    sources = [f"doc-{i:02d}.md" for i in range(20) for _ in range(i + 1)]
    n = len(sources)
    vectors = np.random.default_rng(2).normal(size=(n, 8)).astype(np.float32)
    points = PointSet([f"c{r}" for r in range(n)], ["<b>text</b>"] * n, sources, [None] * n,
                      vectors, total=n)
    fig = base_figure(project(points))
    names = [t.name for t in fig.data]
    assert len(names) == MAX_COLOURED
    assert names[:-1] == [f"doc-{i:02d}.md" for i in range(20 - MAX_COLOURED + 1, 20)]
    assert names[-1] == f"{20 - MAX_COLOURED + 1} other documents"
    assert sum(len(t.customdata) for t in fig.data) == n  # every chunk is still on the map
    assert all("&lt;b&gt;text&lt;/b&gt;" in h for t in fig.data for h in t.hovertext)
