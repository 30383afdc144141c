"""`rag ui` as a process: the port checked before anything is served, and a SIGTERM to `rag ui`
(systemd, ``docker stop``) stopping the Streamlit it started."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import closed_port, rag_env, ui_serving

pytestmark = pytest.mark.slow

RAG = shutil.which("rag") or str(Path(sys.executable).parent / "rag")


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(condition: object, seconds: float) -> bool:
    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.3)
    return False


def test_sigterm_to_rag_ui_stops_streamlit(tmp_path: Path) -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([RAG, "ui", "--port", str(port), "--address", "127.0.0.1"],
                               env=rag_env(tmp_path / "data"), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    children: set[int] = set()
    try:
        if not _wait(lambda: ui_serving(url) or process.poll() is not None, 240):
            pytest.fail(f"`rag ui` did not serve {url} in 240 s")
        assert process.poll() is None, process.communicate()[0]
        children = _children(process.pid)
        assert children, "rag ui runs Streamlit in a child process"
        process.send_signal(signal.SIGTERM)  # to `rag ui` alone, as systemd or docker stop do
        process.wait(timeout=60)
        assert _wait(lambda: not ui_serving(url), 15), "Streamlit still serves after SIGTERM"
        assert _wait(lambda: not any(_alive(pid) for pid in children), 15), \
            f"Streamlit left running: {sorted(children)}"
    finally:
        for pid in [*children, process.pid]:  # only the processes this test started
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.communicate()


def test_port_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    out = subprocess.run([RAG, "ui", "--port", "99999"], capture_output=True, text=True,
                         env=rag_env(tmp_path / "data"), timeout=120, check=False)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "--port: 99999 is out of range: give 1 to 65535" in out.stderr


def test_a_taken_port_is_one_line_beforeui_serving(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([RAG, "ui", "--port", str(port), "--address", "127.0.0.1"],
                             capture_output=True, text=True, env=rag_env(tmp_path / "data"),
                             timeout=240, check=False)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: port {port} is in use: "), out.stderr
    assert "serving" not in out.stderr
