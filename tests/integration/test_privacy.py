"""Nothing leaves the machine: `rag` talks to the configured local hosts only, and looks up no
host name, in Python (an audit hook in every interpreter) or in native code (strace)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.conftest import KNOWLEDGE_BASE, ROOT, rag_env
from tests.integration.test_cli import RAG

pytestmark = pytest.mark.slow

# Imported by every Python process `rag` starts (the CLI and its loader workers) through
# PYTHONPATH: an audit hook that appends each connection, name lookup and datagram to the file
# in RAG_AUDIT_LOG, one JSON line per event (Python's own audit events: no library bypasses
# them), and the telemetry switch in effect when onnxruntime or openvino is imported.
_SITECUSTOMIZE = '''
import json, os, sys
_fd = os.open(os.environ["RAG_AUDIT_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
_LOOKUPS = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
            "socket.gethostbyaddr", "socket.getnameinfo"}

def _write(kind, what):
    os.write(_fd, (json.dumps([kind, what, os.getpid()]) + "\\n").encode())

def _hook(event, args):
    if event == "socket.connect" or event == "socket.sendto":
        _write(event.split(".")[1], repr(args[1]))
    elif event in _LOOKUPS:
        _write("lookup", repr(args[0]))
    elif event == "import" and args[0] == "onnxruntime":
        _write("import onnxruntime", os.environ.get("ORT_DISABLE_TELEMETRY", "(unset)"))
    elif event == "import" and args[0] == "openvino":
        _write("import openvino", repr(sys.modules.get("openvino_telemetry", "importable")))

sys.addaudithook(_hook)
'''

LOCAL = ("'127.0.0.1'", "'localhost'", "'::1'")


def _audited(tmp_path: Path) -> tuple[dict[str, str], Path]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    log = tmp_path / "audit.jsonl"
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    env = rag_env(tmp_path / "data", RAG_AUDIT_LOG=str(log), PYTHONPATH=path)
    return env, log


def test_ingest_search_and_ask_only_talk_to_local_hosts(tmp_path: Path) -> None:
    env, log = _audited(tmp_path)
    for args in (["ingest", str(KNOWLEDGE_BASE), "--quiet"],
                 ["search", "What does the ef_search parameter control?", "--json"],
                 ["ask", "What does the ef_search parameter control?", "--json"]):
        out = subprocess.run([RAG, *args], capture_output=True, text=True, env=env,
                             timeout=900, check=False)
        assert out.returncode == 0, (args, out.stderr)
    assert '"sources"' in out.stdout  # the answer was given
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert len({pid for *_, pid in events}) >= 3  # every command's process was audited
    # onnxruntime's own telemetry is native code, past any Python hook: it is switched off
    # before the library is loaded, in every process that loads it.
    ort = [what for kind, what, _ in events if kind == "import onnxruntime"]
    assert set(ort) <= {"1"}, ort
    # The embedder runs on OpenVINO, whose converter (and NNCF) would report usage through
    # openvino_telemetry: in every process that imports openvino it cannot be imported.
    ov = {pid: what for kind, what, pid in events if kind == "import openvino"}
    assert len(ov) >= 3 and set(ov.values()) == {"None"}, ov
    # The only network peer is the configured Ollama (which does not answer here): the probe
    # that decides whether to use it. Chroma is embedded; models load from disk. No host name
    # is looked up at all, local ones aside.
    network = [(kind, what) for kind, what, _ in events if not kind.startswith("import ")]
    remote = [(kind, what) for kind, what in network if not what.startswith(LOCAL)
              and not any(f"({host}," in what for host in LOCAL)]
    assert remote == [], remote
    assert any(kind == "connect" for kind, _ in network)  # the hook does see connects


def _remote_calls(trace: str) -> list[str]:
    """System calls in an strace log that reach past this machine: a DNS query (port 53, even
    to a local resolver), a connection or datagram to an address that is not loopback,
    systemd-resolved's socket, or a known telemetry host name in any buffer."""
    found = []
    for line in trace.splitlines():
        if "htons(53)" in line or "microsoft" in line or "events.data" in line:
            found.append(line)
        elif re.search(r"sa_family=AF_INET6?", line):
            if not re.search(r'inet_addr\("127\.|inet_pton\(AF_INET6, "::1"|"::ffff:127\.', line):
                found.append(line)
        elif re.search(r'sun_path="[^"]*systemd/resolve', line):
            found.append(line)  # (nscd's socket is left out: it also serves user names)
    return found


def test_no_host_is_looked_up_from_native_code_either(tmp_path: Path) -> None:
    """onnxruntime looked up mobile.events.data.microsoft.com from C++ while the embedding model
    was exported (a fresh models directory), where no Python hook sees it: strace does."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (.ci/run installs it)")
    env = rag_env(tmp_path / "data", RAG_MODELS_DIR=str(tmp_path / "models"))
    traces = []
    for n, args in enumerate((["ingest", str(KNOWLEDGE_BASE), "--quiet"],
                              ["ask", "What does the ef_search parameter control?", "--json"])):
        trace = tmp_path / f"trace-{n}.txt"
        out = subprocess.run(
            [strace, "-f", "-qq", "-s", "256", "-o", str(trace),
             "-e", "trace=connect,sendto,sendmsg,sendmmsg", RAG, *args],
            capture_output=True, text=True, env=env, timeout=900, check=False)
        if out.returncode != 0 and "ptrace" in out.stderr:
            pytest.skip(f"strace cannot trace here: {out.stderr.strip()[:200]}")
        assert out.returncode == 0, (args, out.stderr[-2000:])
        traces.append(trace.read_text())
    assert (tmp_path / "models").is_dir()  # the export ran, traced
    assert any("connect(" in t for t in traces)  # strace does see the Ollama probe
    remote = [call for t in traces for call in _remote_calls(t)]
    assert remote == [], remote[:5]


def test_streamlit_usage_statistics_are_off() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
