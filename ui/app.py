"""The browser app: `streamlit run ui/app.py` (or `rag ui`). Pages: chat, library, explorer, status.

Thin by design: every page goes through ``rag`` and ``ingest``; no logic lives here.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run ui/app.py` puts ui/ on sys.path, not the project; the package may be editable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import streamlit as st

st.set_page_config(page_title="Chat with your documents", page_icon="📚", layout="wide")

PAGES = [
    st.Page("pages/chat.py", title="Chat", icon=":material/chat:", default=True),
    st.Page("pages/library.py", title="Library", icon=":material/folder_open:"),
    st.Page("pages/explorer.py", title="Explorer", icon=":material/scatter_plot:"),
    st.Page("pages/status.py", title="Status", icon=":material/monitor_heart:"),
]

st.navigation(PAGES).run()
