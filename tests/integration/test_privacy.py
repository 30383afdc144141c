"""Nothing leaves the machine: every connection `rag` opens goes to the configured local hosts."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import KNOWLEDGE_BASE, ROOT, rag_env

pytestmark = pytest.mark.slow

# Runs `rag ingest` and `rag ask` in one interpreter with an audit hook that records every
# socket connection and name lookup (Python's own audit events, so no library can bypass it).
_SCRIPT = """
import json, sys
seen = []
def hook(event, args):
    if event == "socket.connect":
        seen.append(["connect", repr(args[1])])
    elif event == "socket.getaddrinfo":
        seen.append(["lookup", str(args[0])])
sys.addaudithook(hook)
from rag.cli import main
codes = [main(["ingest", sys.argv[1], "--quiet"]),
         main(["ask", "What does the ef_search parameter control?", "--json"])]
print("AUDIT " + json.dumps({"codes": codes, "seen": seen}))
"""

LOCAL = ("127.0.0.1", "localhost", "::1")


def test_ingest_and_ask_only_talk_to_local_hosts(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(KNOWLEDGE_BASE)],
                         capture_output=True, text=True, timeout=900, check=False,
                         env=rag_env(tmp_path / "data"))
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("AUDIT "))
    audit = json.loads(line.removeprefix("AUDIT "))
    assert audit["codes"] == [0, 0], out.stderr
    assert '"sources"' in out.stdout  # the answer was given
    # The only network peer is the configured Ollama (which does not answer here): the probe
    # that decides whether to use it. Chroma is embedded; models load from disk.
    remote = [entry for entry in audit["seen"]
              if not any(host in entry[1] for host in LOCAL)]
    assert remote == [], remote
    assert any(kind == "connect" for kind, _ in audit["seen"])  # the hook does see connects


def test_streamlit_usage_statistics_are_off() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
