"""Explorer page: a map of the embedding space, to see why an answer came back.

Every chunk is a point (a random sample beyond RAG_EXPLORER_MAX_POINTS), coloured by document.
A query shows where it lands and its top-k neighbours; a picked chunk lists the passages most
similar to it across documents. Neighbours come from the whole index, not only the sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from application.explorer import (
    Method,
    Projection,
    available_methods,
    index_fingerprint,
    load_points,
    neighbours_in_index,
    project,
)
from application.factory import App
from application.scores import SIMILARITY_HELP, with_similarity
from rag.errors import RagError
from rag.types import RetrievedChunk
from ui.explorer_map import PICKED_COLOUR, add_highlight, base_figure, query_colour
from ui.render import escape_markdown, message_markdown, short
from ui.state import get_app

METHOD_LABELS = {"pca": "PCA", "umap": "UMAP"}


@st.cache_resource(max_entries=4, show_spinner="Projecting the embeddings…")
def cached_projection(fingerprint: str, method: Method, max_points: int) -> Projection:
    """One projection per index state (``fingerprint``), method and sample size."""
    del fingerprint  # only the cache key: a changed index gives a new one
    app = get_app()
    roots = {r.root for r in app.manifest.records()}
    return project(load_points(app.store, max_points, roots=roots), method)


@st.cache_resource(max_entries=4, show_spinner="Drawing the map…")
def cached_figure(fingerprint: str, method: Method, max_points: int) -> go.Figure:
    """The map of one projection, drawn once; each run highlights on a copy."""
    return base_figure(cached_projection(fingerprint, method, max_points))


def place_hits(app: App, proj: Projection, hits: list[RetrievedChunk]) -> np.ndarray:
    """Map positions of hits; a hit outside the sample is placed by its stored vector."""
    xy = np.zeros((len(hits), 2), np.float32)
    missing = []
    for i, h in enumerate(hits):
        row = proj.points.index_of(h.id)
        if row is None:
            missing.append(i)
        else:
            xy[i] = proj.xy[row]
    if missing:
        stored = app.store.vectors([hits[i].id for i in missing])
        placed = [i for i in missing if hits[i].id in stored]
        if placed:
            xy[placed] = proj.place(np.vstack([stored[hits[i].id] for i in placed]))
    return xy


def picked_chunk(app: App, proj: Projection,
                 chunk_id: str | None) -> tuple[RetrievedChunk, np.ndarray] | None:
    """The picked chunk and its vector: from the map's sample, else from the index (a ringed
    neighbour can lie outside the sample); None when it is gone."""
    if not chunk_id:
        return None
    pts = proj.points
    row = pts.index_of(chunk_id)
    if row is not None:
        chunk = RetrievedChunk(chunk_id, pts.texts[row], pts.sources[row], pts.pages[row], "", 1.0)
        return chunk, pts.vectors[row]
    found = app.store.get([chunk_id])
    vectors = app.store.vectors([chunk_id])
    if not found or chunk_id not in vectors:
        return None
    return found[0], vectors[chunk_id]


def hits_table(hits: list[RetrievedChunk], similar_to: str) -> None:
    """The neighbours: where each is (a PDF's page, a Markdown section's heading) and its
    similarity on the chat's scale (``application.scores``: cosine, 1 the same meaning)."""
    import pandas as pd

    st.dataframe(pd.DataFrame([{
        "#": i + 1, "Document": h.source, "Page": "" if h.page is None else str(h.page),
        "Section": h.heading, "Similarity": round(h.score, 2), "Passage": short(h.text, 200),
    } for i, h in enumerate(hits)]), hide_index=True, width="stretch",
        column_config={
            "Similarity": st.column_config.NumberColumn(
                format="%.2f", help=f"{SIMILARITY_HELP} Here: to {similar_to}."),
            "Passage": st.column_config.TextColumn(width="large"),
        })


def selected_chunk(event: Any) -> str | None:
    try:
        points = event.selection.points
    except AttributeError:
        return None
    for p in points or []:
        data = p.get("customdata")
        if isinstance(data, str):
            return data
        if isinstance(data, list) and data and isinstance(data[0], str):
            return data[0]
    return None


def chunk_picker(proj: Projection) -> str | None:
    pts = proj.points
    documents = sorted(set(pts.sources))
    left, right = st.columns([2, 3])
    doc = left.selectbox("Document", documents, index=None, key="explorer_doc",
                         placeholder="Pick a document…")
    if doc is None:
        return None
    rows = [r for r, s in enumerate(pts.sources) if s == doc]
    position = {r: i + 1 for i, r in enumerate(rows)}

    def label(r: int) -> str:  # numbered: the browser sends the label back, it must be unique
        page = f"p.{pts.pages[r]} · " if pts.pages[r] is not None else ""
        return f"{position[r]}. {page}{short(pts.texts[r], 80)}"

    row = right.selectbox("Chunk", rows, format_func=label, index=None, key="explorer_chunk",
                          placeholder="Pick a passage…")
    return None if row is None else pts.ids[row]


def main() -> None:
    st.title("Explorer")
    st.caption("Each point is a passage of your documents, placed by meaning: passages close "
               "together say similar things. Hover for the text; search to see what a question "
               "retrieves; pick a passage to find similar ones across documents.")
    try:
        app = get_app()
        total = app.store.count()
    except RagError as exc:
        st.error(message_markdown(str(exc)), icon=":material/cloud_off:")
        st.stop()
    if total == 0:
        st.info("The knowledge base is empty: add documents on the Library page.",
                icon=":material/info:")
        st.stop()
    s = app.settings
    methods = available_methods()
    c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
    query = c1.text_input("Search the map", key="explorer_query",
                          placeholder="Type a question to see where it lands")
    k = int(c2.number_input("Neighbours", 1, 50, s.top_k, key="explorer_k"))
    method: Method = c3.selectbox(
        "Projection", methods, format_func=METHOD_LABELS.__getitem__, key="explorer_method",
        help="PCA is quick and stable. UMAP (pip install umap-learn) keeps clusters apart "
             "better." if len(methods) == 1 else "PCA is quick and stable; UMAP keeps clusters "
             "apart better but takes longer.")
    try:
        key = (index_fingerprint(app.store, app.manifest), method, s.explorer_max_points)
        proj = cached_projection(*key)
        fig = go.Figure(cached_figure(*key))
    except RagError as exc:
        st.error(message_markdown(str(exc)))
        st.stop()
    shown = len(proj.points)
    if proj.points.sampled:
        st.info(f"Showing a random sample of {shown:,} of {proj.points.total:,} passages "
                f"(RAG_EXPLORER_MAX_POINTS={s.explorer_max_points}); neighbours are searched "
                "in all of them.", icon=":material/filter_alt:")
    else:
        st.caption(f"{shown:,} passages from {len(set(proj.points.sources))} documents · "
                   f"{METHOD_LABELS[proj.method]}")

    query_hits: list[RetrievedChunk] = []
    if query.strip():
        try:
            vector = app.embedder.embed_query(query)
            # scored as the chat scores its sources, so the two pages agree
            query_hits = with_similarity(app.embedder, app.store, query,
                                         neighbours_in_index(app.store, vector, k))
            add_highlight(fig, "Your query", proj.place(vector)[0], query_hits,
                          place_hits(app, proj, query_hits), query_colour(st.context.theme.type),
                          "star")
        except RagError as exc:
            st.error(message_markdown(str(exc)))

    picked = picked_chunk(app, proj, st.session_state.get("explorer_picked"))
    chunk_hits: list[RetrievedChunk] = []
    if picked is not None:
        chunk, vector = picked
        chunk_hits = neighbours_in_index(app.store, vector, k, exclude=chunk.id)
        add_highlight(fig, "Picked passage", proj.place(vector)[0], chunk_hits,
                      place_hits(app, proj, chunk_hits), PICKED_COLOUR, "diamond")

    event = st.plotly_chart(fig, width="stretch", key="explorer_map",
                            on_select="rerun", selection_mode="points",
                            config={"scrollZoom": True, "displaylogo": False})
    clicked = selected_chunk(event)
    if clicked and clicked != st.session_state.get("explorer_clicked"):
        st.session_state.explorer_clicked = clicked
        st.session_state.explorer_picked = clicked
        st.rerun()

    if query_hits:
        st.subheader(f"Nearest passages to “{escape_markdown(short(query, 60))}”")
        hits_table(query_hits, "your query")

    st.subheader("Similar passages")
    st.caption("Click a point on the map, or pick a passage here.")
    chosen = chunk_picker(proj)
    if chosen and chosen != st.session_state.get("explorer_chosen"):
        st.session_state.explorer_chosen = chosen
        st.session_state.explorer_picked = chosen
        st.rerun()
    if picked is not None:
        chunk = picked[0]
        page = f" · page {chunk.page}" if chunk.page is not None else ""
        st.markdown(f"**{escape_markdown(chunk.source)}**{page}")
        st.caption(escape_markdown(short(chunk.text, 400)))
        hits_table(chunk_hits, "the picked passage")


main()
