"""`rag ui`: Streamlit in a child process that lives and dies with `rag ui`.

The port is checked by binding it before anything is announced; SIGTERM, SIGINT and SIGHUP
sent to `rag ui` (systemd, ``docker stop``, Ctrl-C, a closed terminal) are passed on to
Streamlit, and `rag ui` returns only once Streamlit has exited, so no server is left behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rag.errors import RagError

STOP_GRACE_S = 10.0  # after SIGTERM, how long Streamlit gets before SIGKILL


def port_number(text: str) -> int:
    """``--port``: a TCP port, 1 to 65535 (a usage error otherwise)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number: give 1 to 65535, "
                                         "e.g. 8501") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is out of range: give 1 to 65535, e.g. 8501")
    return port


def check_port_free(address: str, port: int) -> None:
    """Bind ``address:port`` as Streamlit will (and release it): taken or not bindable is a
    one-line error before "serving ..." is printed."""
    import socket

    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise RagError(f"cannot serve on {address!r}: {exc}; give --address an address or "
                       "host name of this machine, e.g. localhost") from None
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as sock:
            # as Streamlit's server (tornado) binds: a port in TIME_WAIT is not "in use"
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(sockaddr)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise RagError(f"port {port} is in use: {reason} ({sockaddr[0]}); stop what "
                               "serves there or give --port another number") from None


def cmd_ui(args: argparse.Namespace) -> int:
    import importlib.util
    import math
    import os

    from rag.config import load_settings
    from rag.privacy import disable_telemetry

    disable_telemetry()
    overrides: dict[str, Any] = {"data_dir": Path(args.data_dir)} if args.data_dir else {}
    settings = load_settings(**overrides)  # a bad setting is reported before Streamlit starts
    # the UI is the layer above: found as a file to run, never imported here
    spec = importlib.util.find_spec("ui")
    assert spec is not None and spec.origin is not None, "the ui package is installed with rag"
    script = Path(spec.origin).parent / "app.py"
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.port", str(args.port),
        "--server.address", args.address,
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        # Streamlit refuses bigger files itself (whole MB); the library page checks the exact
        # RAG_UPLOAD_MAX_MB, so one setting bounds both
        "--server.maxUploadSize", str(max(1, math.ceil(settings.upload_max_mb))),
    ]
    env = dict(os.environ)
    if args.data_dir:
        env["RAG_DATA_DIR"] = str(Path(args.data_dir).resolve())
    check_port_free(args.address, args.port)
    print(f"serving the UI on http://{args.address}:{args.port}", file=sys.stderr, flush=True)
    return run_child(command, env)


def run_child(command: list[str], env: dict[str, str]) -> int:
    """Run ``command`` until it exits; SIGTERM/SIGINT/SIGHUP to this process are forwarded to
    it (and SIGKILL follows after STOP_GRACE_S), so stopping `rag ui` stops the server."""
    import signal
    import subprocess
    import time

    forwarded = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    stopping: list[int] = []
    children: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: object) -> None:
        stopping.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    # The handlers are in place before the child starts, so a signal in between is not lost:
    # it is passed on as soon as the child exists. (Same process group: `kill -TERM -PGID`
    # reaches both directly.)
    previous = {sig: signal.getsignal(sig) for sig in forwarded}
    for sig in forwarded:
        signal.signal(sig, forward)
    try:
        child = subprocess.Popen(command, env=env)
        children.append(child)
        if stopping and child.poll() is None:
            child.send_signal(stopping[0])
        give_up: float | None = None
        while True:
            try:
                code = child.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if stopping and give_up is None:
                    give_up = time.monotonic() + STOP_GRACE_S
                if give_up is not None and time.monotonic() >= give_up:
                    child.kill()  # did not stop within the grace period
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopping:
        return 0 if stopping[0] == signal.SIGINT else 128 + stopping[0]
    return code
