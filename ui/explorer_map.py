"""The explorer's Plotly figure: chunks coloured by document, a query or a picked chunk on top.

Plain Plotly, no Streamlit: the page draws it, the benchmark (``bench/explorer.py``) times it.
Hover labels are HTML to Plotly, so document text is escaped before it goes in.
"""

from __future__ import annotations

import html
from collections import defaultdict

import numpy as np
import plotly.graph_objects as go

from application.explorer import Projection
from application.scores import similarity_text
from rag.types import RetrievedChunk
from ui.render import short

PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2", "#EECA3B",
           "#FF9DA6", "#9D755D", "#1F77B4", "#2CA02C", "#D62728", "#9467BD", "#8C564B"]
OTHERS_COLOUR = "#BAB0AC"
# The query's star and rings: near black on a light page, near white on a dark one (the page
# follows the browser's preference; Streamlit draws the map on the page's background).
QUERY_COLOURS = {"light": "#111111", "dark": "#F2F2F2"}
PICKED_COLOUR = "#D62728"


def query_colour(theme: str | None) -> str:
    return QUERY_COLOURS["dark" if theme == "dark" else "light"]
# One trace (and legend entry) per document up to this many; beyond, the documents with the
# most points keep their colour and the rest share one grey trace: a legend of thousands of
# documents is neither readable nor quick to draw.
MAX_COLOURED = len(PALETTE)


def wrap(text: str, width: int = 60) -> list[str]:
    """Lines of about ``width`` characters, broken between words (a long word stays whole).

    ``textwrap.wrap`` does the same with more care, at five times the cost: at 5,000 points
    it was most of the time it took to draw the map.
    """
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def hover_text(source: str, page: int | None, text: str) -> str:
    """Plotly renders a few HTML tags in hover labels: document text is escaped first."""
    where = html.escape(source) + (f" · page {page}" if page is not None else "")
    body = "<br>".join(html.escape(line) for line in wrap(short(text, 240)))
    return f"<b>{where}</b><br>{body}"


def document_groups(sources: list[str]) -> tuple[list[tuple[str, list[int]]], list[int]]:
    """(document, rows) of the coloured documents in name order, and the rows of all others."""
    rows_of: dict[str, list[int]] = defaultdict(list)
    for row, source in enumerate(sources):
        rows_of[source].append(row)
    if len(rows_of) <= MAX_COLOURED:
        return sorted(rows_of.items()), []
    biggest = sorted(rows_of, key=lambda d: (-len(rows_of[d]), d))[: MAX_COLOURED - 1]
    kept = set(biggest)
    others = sorted(r for d, rows in rows_of.items() if d not in kept for r in rows)
    return [(d, rows_of[d]) for d in sorted(biggest)], others


def base_figure(proj: Projection) -> go.Figure:
    pts = proj.points
    coloured, others = document_groups(pts.sources)
    fig = go.Figure()

    def add(rows: list[int], name: str, colour: str) -> None:
        fig.add_trace(go.Scattergl(
            x=proj.xy[rows, 0], y=proj.xy[rows, 1], mode="markers", name=name,
            marker={"size": 7, "color": colour, "opacity": 0.75},
            customdata=[pts.ids[r] for r in rows],
            hovertext=[hover_text(pts.sources[r], pts.pages[r], pts.texts[r]) for r in rows],
            hovertemplate="%{hovertext}<extra></extra>",
        ))

    for i, (doc, rows) in enumerate(coloured):
        add(rows, short(doc, 40), PALETTE[i % len(PALETTE)])
    if others:
        count = len({pts.sources[r] for r in others})
        add(others, f"{count:,} other documents", OTHERS_COLOUR)
    fig.update_layout(
        height=540, margin={"l": 10, "r": 10, "t": 30, "b": 10}, template="plotly_white",
        legend={"title": {"text": "Document"}, "itemsizing": "constant"},
        xaxis={"showticklabels": False, "title": None, "zeroline": False},
        yaxis={"showticklabels": False, "title": None, "zeroline": False},
        dragmode="pan", clickmode="event+select",
    )
    return fig


def add_highlight(fig: go.Figure, name: str, origin: np.ndarray, hits: list[RetrievedChunk],
                  xy: np.ndarray, colour: str, symbol: str) -> None:
    """``origin`` (a query, a picked chunk) as a big marker, its ``hits`` ringed and numbered."""
    for (x, y) in xy:
        fig.add_trace(go.Scattergl(x=[origin[0], x], y=[origin[1], y], mode="lines",
                                   line={"color": colour, "width": 1, "dash": "dot"},
                                   hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scattergl(
        x=xy[:, 0], y=xy[:, 1], mode="markers+text", name=f"{name}: top {len(hits)}",
        text=[str(i + 1) for i in range(len(hits))], textposition="top center",
        marker={"size": 16, "color": "rgba(0,0,0,0)", "line": {"color": colour, "width": 3}},
        customdata=[h.id for h in hits],
        hovertext=[hover_text(h.source, h.page, h.text) + f"<br>{similarity_text(h.score)}"
                   for h in hits],
        hovertemplate="%{hovertext}<extra></extra>",
    ))
    fig.add_trace(go.Scattergl(
        x=[origin[0]], y=[origin[1]], mode="markers", name=name,
        marker={"size": 20, "color": colour, "symbol": symbol, "line": {"color": "white",
                                                                         "width": 1}},
        hoverinfo="name",
    ))
