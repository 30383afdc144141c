"""Explorer page: a map of the embedding space, to see why an answer came back.

Every chunk is a point (a random sample beyond RAG_EXPLORER_MAX_POINTS), coloured by document.
A query shows where it lands and its top-k neighbours; a picked chunk lists the passages most
similar to it across documents. Neighbours come from the whole index, not only the sample.
"""

from __future__ import annotations

import html
import textwrap
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from rag.errors import RagError
from rag.explorer import (
    Method,
    Projection,
    available_methods,
    index_fingerprint,
    load_points,
    neighbours_in_index,
    project,
)
from rag.factory import App
from rag.types import RetrievedChunk
from ui.render import escape_markdown, message_markdown, short
from ui.state import get_app

PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2", "#EECA3B",
           "#FF9DA6", "#9D755D", "#BAB0AC", "#1F77B4", "#2CA02C", "#D62728", "#9467BD"]
METHOD_LABELS = {"pca": "PCA", "umap": "UMAP"}


@st.cache_resource(max_entries=4, show_spinner="Projecting the embeddings…")
def cached_projection(fingerprint: str, method: Method, max_points: int) -> Projection:
    """One projection per index state (``fingerprint``), method and sample size."""
    del fingerprint  # only the cache key: a changed index gives a new one
    app = get_app()
    return project(load_points(app.store, max_points), method)


def hover_text(source: str, page: int | None, text: str) -> str:
    """Plotly renders a few HTML tags in hover labels: document text is escaped first."""
    where = html.escape(source) + (f" · page {page}" if page is not None else "")
    body = "<br>".join(html.escape(line) for line in textwrap.wrap(short(text, 240), 60))
    return f"<b>{where}</b><br>{body}"


def base_figure(proj: Projection) -> go.Figure:
    pts = proj.points
    fig = go.Figure()
    documents = sorted(set(pts.sources))
    for i, doc in enumerate(documents):
        rows = [r for r, s in enumerate(pts.sources) if s == doc]
        fig.add_trace(go.Scattergl(
            x=proj.xy[rows, 0], y=proj.xy[rows, 1], mode="markers", name=short(doc, 40),
            marker={"size": 7, "color": PALETTE[i % len(PALETTE)], "opacity": 0.75},
            customdata=[pts.ids[r] for r in rows],
            hovertext=[hover_text(doc, pts.pages[r], pts.texts[r]) for r in rows],
            hovertemplate="%{hovertext}<extra></extra>",
        ))
    fig.update_layout(
        height=600, margin={"l": 10, "r": 10, "t": 30, "b": 10}, template="plotly_white",
        legend={"title": {"text": "Document"}, "itemsizing": "constant"},
        xaxis={"showticklabels": False, "title": None, "zeroline": False},
        yaxis={"showticklabels": False, "title": None, "zeroline": False},
        dragmode="pan", clickmode="event+select",
    )
    return fig


def place_hits(app: App, proj: Projection, hits: list[RetrievedChunk]) -> np.ndarray:
    """Map positions of hits; a hit outside the sample is embedded again and placed."""
    xy = np.zeros((len(hits), 2), np.float32)
    missing = []
    for i, h in enumerate(hits):
        row = proj.points.index_of(h.id)
        if row is None:
            missing.append(i)
        else:
            xy[i] = proj.xy[row]
    if missing:
        vectors = app.embedder.embed_documents([hits[i].text for i in missing])
        xy[missing] = proj.place(vectors)
    return xy


def add_highlight(fig: go.Figure, name: str, origin: np.ndarray, hits: list[RetrievedChunk],
                  xy: np.ndarray, colour: str, symbol: str) -> None:
    for (x, y) in xy:
        fig.add_trace(go.Scattergl(x=[origin[0], x], y=[origin[1], y], mode="lines",
                                   line={"color": colour, "width": 1, "dash": "dot"},
                                   hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scattergl(
        x=xy[:, 0], y=xy[:, 1], mode="markers+text", name=f"{name}: top {len(hits)}",
        text=[str(i + 1) for i in range(len(hits))], textposition="top center",
        marker={"size": 16, "color": "rgba(0,0,0,0)", "line": {"color": colour, "width": 3}},
        customdata=[h.id for h in hits],
        hovertext=[hover_text(h.source, h.page, h.text) + f"<br>score {h.score:.2f}" for h in hits],
        hovertemplate="%{hovertext}<extra></extra>",
    ))
    fig.add_trace(go.Scattergl(
        x=[origin[0]], y=[origin[1]], mode="markers", name=name,
        marker={"size": 20, "color": colour, "symbol": symbol, "line": {"color": "white",
                                                                         "width": 1}},
        hoverinfo="name",
    ))


def hits_table(hits: list[RetrievedChunk]) -> None:
    import pandas as pd

    st.dataframe(pd.DataFrame([{
        "#": i + 1, "Document": h.source, "Page": h.page, "Score": round(h.score, 3),
        "Passage": short(h.text, 200),
    } for i, h in enumerate(hits)]), hide_index=True, width="stretch",
        column_config={"Passage": st.column_config.TextColumn(width="large")})


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

    def label(r: int) -> str:
        page = f"p.{pts.pages[r]} · " if pts.pages[r] is not None else ""
        return f"{page}{short(pts.texts[r], 80)}"

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
        proj = cached_projection(index_fingerprint(app.store, app.manifest), method,
                                 s.explorer_max_points)
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

    fig = base_figure(proj)
    query_hits: list[RetrievedChunk] = []
    if query.strip():
        try:
            vector = app.embedder.embed_query(query)
            query_hits = neighbours_in_index(app.store, vector, k)
            add_highlight(fig, "Your query", proj.place(vector)[0], query_hits,
                          place_hits(app, proj, query_hits), "#111111", "star")
        except RagError as exc:
            st.error(message_markdown(str(exc)))

    picked = st.session_state.get("explorer_picked")
    chunk_hits: list[RetrievedChunk] = []
    row = proj.points.index_of(picked) if picked else None
    if row is not None:
        chunk_hits = neighbours_in_index(app.store, proj.points.vectors[row], k, exclude=picked)
        add_highlight(fig, "Picked passage", proj.xy[row], chunk_hits,
                      place_hits(app, proj, chunk_hits), "#D62728", "diamond")

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
        hits_table(query_hits)

    st.subheader("Similar passages")
    st.caption("Click a point on the map, or pick a passage here.")
    chosen = chunk_picker(proj)
    if chosen and chosen != st.session_state.get("explorer_chosen"):
        st.session_state.explorer_chosen = chosen
        st.session_state.explorer_picked = chosen
        st.rerun()
    if row is not None:
        pts = proj.points
        page = f" · page {pts.pages[row]}" if pts.pages[row] is not None else ""
        st.markdown(f"**{escape_markdown(pts.sources[row])}**{page}")
        st.caption(escape_markdown(short(pts.texts[row], 400)))
        hits_table(chunk_hits)


main()
