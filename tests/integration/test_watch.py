"""`rag ingest DIR --watch`: the index follows files as they are added, changed and removed; a
burst of writes is synced once, complete; a failed sync is reported and retried; watching stops
cleanly when asked and on Ctrl-C.

No timing is asserted: each step polls for its outcome with a generous deadline."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ingest.report import IngestReport
from rag.retriever import SearchOptions
from tests.conftest import rag_env
from tests.integration.test_cli import RAG

pytestmark = pytest.mark.slow

DEADLINE = 180.0  # seconds any one step may take on a loaded machine


def _until(what: str, condition: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {DEADLINE:g} s: {what}")


def _sources(app: Any, query: str) -> list[str]:
    return [h.source for h in app.retriever.search(query, SearchOptions(k=3))]


def test_watch_follows_adds_changes_removals_and_debounces_bursts(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from ingest.watch import watch_folder

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# Alpha\nThe lighthouse keeper logs every passing ship.\n")
    app = make_app()
    reports: list[IngestReport] = []
    gamma: list[str] = []  # what the index held of c.md right after each sync
    stop = threading.Event()
    errors: list[BaseException] = []

    def on_sync(report: IngestReport) -> None:
        ids = app.store.ids_for_source("c.md")
        gamma.append(" ".join(text for _, text, _, _ in app.store.records(ids)) if ids else "")
        reports.append(report)

    def run() -> None:
        try:
            watch_folder(app.pipeline, folder, debounce=2.0, stop=stop, on_sync=on_sync)
        except BaseException as exc:  # surfaced by the assertions below
            errors.append(exc)

    watcher = threading.Thread(target=run, daemon=True)
    watcher.start()
    try:
        _until("the first sync", lambda: reports)
        assert reports[0].indexed == ["a.md"]

        (folder / "b.md").write_text("# Beta\nQuokkas smile at the zookeeper in Perth.\n")
        _until("b.md indexed", lambda: any(r.indexed == ["b.md"] for r in reports))
        assert _sources(app, "quokka smiling zookeeper")[0] == "b.md"

        (folder / "a.md").write_text("# Alpha\nThe glassblower shapes molten sand into vases.\n")
        _until("a.md updated", lambda: any(r.updated == ["a.md"] for r in reports))
        assert _sources(app, "glassblower molten sand vases")[0] == "a.md"
        found = app.retriever.search("lighthouse", SearchOptions(k=5))
        assert "lighthouse" not in " ".join(h.text for h in found)

        (folder / "b.md").unlink()
        _until("b.md removed", lambda: any(r.removed == ["b.md"] for r in reports))
        assert not app.store.ids_for_source("b.md")
        assert "b.md" not in _sources(app, "quokka smiling zookeeper")

        # A file written in ten quick pieces is synced once, when it is complete.
        before = len(reports)
        with (folder / "c.md").open("w") as fh:
            fh.write("# Gamma\n")
            for part in range(10):
                fh.write(f"Part {part} of the saga of the wandering albatross.\n")
                fh.flush()
                time.sleep(0.05)
            fh.write("The end: the albatross lands on Tristan da Cunha.\n")
        _until("c.md indexed", lambda: len(reports) > before)
        assert reports[before].indexed == ["c.md"] and not reports[before].updated
        assert "Part 0" in gamma[before] and "Tristan da Cunha" in gamma[before]  # complete

        stop.set()
        watcher.join(timeout=DEADLINE)
        assert not watcher.is_alive() and not errors
    finally:
        stop.set()
        watcher.join(timeout=DEADLINE)
        app.pipeline.close()


def _lines(stream: Any) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _next_report(lines: queue.Queue[str]) -> dict[str, Any]:
    return dict(json.loads(lines.get(timeout=DEADLINE)))


def test_watch_command_syncs_then_stops_on_ctrl_c(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "one.md").write_text("# One\nFerns unfurl in the spring rain.\n")
    proc = subprocess.Popen(
        [RAG, "ingest", str(folder), "--watch", "--debounce", "0.5", "--retry", "0.5", "--json"],
        text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=rag_env(tmp_path / "data"))
    try:
        assert proc.stdout is not None
        lines = _lines(proc.stdout)
        first = _next_report(lines)
        assert first["indexed"] == ["one.md"] and first["files"] == 1

        (folder / "two.md").write_text("# Two\nMoss grows on the north side of stones.\n")
        second = _next_report(lines)
        assert second["indexed"] == ["two.md"] and second["unchanged"] == ["one.md"]

        # The folder goes away (an unmounted drive, a rename): the sync a change there starts
        # fails, is reported, and the watcher keeps going; when it is back, a retry syncs it
        # and the index lost nothing meanwhile.
        away = tmp_path / "docs-away"
        folder.rename(away)
        (away / "three.md").write_text("# Three\nOtters hold hands while they sleep.\n")
        failed = _next_report(lines)
        assert "not a folder" in failed["error"] and failed["retry_s"] == 0.5
        assert proc.poll() is None
        away.rename(folder)
        third = _next_report(lines)
        while "error" in third:  # a retry that ran before the folder was back
            third = _next_report(lines)
        assert third["indexed"] == ["three.md"] and not third["removed"]
        assert third["unchanged"] == ["one.md", "two.md"]

        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "watching" in stderr and "stopped watching" in stderr
    assert "sync failed:" in stderr and "still watching, trying again in 0.5 s" in stderr

    search = subprocess.run([RAG, "search", "moss on stones", "--json"], capture_output=True,
                            text=True, env=rag_env(tmp_path / "data"), timeout=300, check=False)
    assert search.returncode == 0, search.stderr
    assert json.loads(search.stdout)[0]["source"] == "two.md"
