"""Chat conversations, kept in a small SQLite database in the data directory.

A conversation is a titled list of turns; an assistant turn also keeps its ``Answer`` (sources
with their evidence, search query, backend, mode, checked sentences) as JSON, so a reopened
conversation shows the same sources, highlights and marks as before.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.types import Answer, AnswerSentence, Evidence, Message, RetrievedChunk, Role, Source

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    answer TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
"""

TITLE_LENGTH = 60


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    created_at: float
    updated_at: float
    turns: int


@dataclass(frozen=True)
class Turn:
    role: Role
    content: str
    answer: Answer | None = None
    stopped: bool = False  # an answer cut short (Stop, or the page left while it streamed)

    def message(self) -> Message:
        return Message(self.role, self.content)


def title_for(question: str) -> str:
    """A conversation's title: its first question, on one line, shortened."""
    line = " ".join(question.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


def _contains(text: str | None, needle: str) -> bool:
    return text is not None and needle in text.casefold()


class ConversationStore:
    """Create, list, read, extend and delete conversations; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), timeout=30, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        # search: SQLite's LIKE ignores the case of ASCII letters only
        self._db.create_function("contains", 2, _contains, deterministic=True)
        self._db.executescript(_SCHEMA)
        # columns added since the first version: a database written before gets them here
        self._add_column("conversations", "model", "TEXT")
        self._add_column("turns", "stopped", "INTEGER NOT NULL DEFAULT 0")
        self._last = 0.0

    def _add_column(self, table: str, column: str, declaration: str) -> None:
        columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def _now(self) -> float:
        """The time, strictly after the last one this store used: "most recent first" holds
        even for two changes within the clock's resolution."""
        self._last = max(time.time(), self._last + 1e-6)
        return self._last

    def close(self) -> None:
        self._db.close()

    def create(self, title: str, model: str | None = None) -> str:
        """A new conversation titled by its first question; a title already listed gets a
        number ("What is BM25? (2)"), so two conversations never read the same. ``model``: the
        model picked to answer in it (``model``)."""
        cid = uuid.uuid4().hex
        base = title_for(title) or "New chat"
        with self._lock:
            now = self._now()
            taken = {row[0] for row in self._db.execute(
                "SELECT title FROM conversations WHERE substr(title, 1, ?) = ?", (len(base), base))}
            unique, n = base, 2
            while unique in taken:
                unique, n = f"{base} ({n})", n + 1
            self._db.execute("INSERT INTO conversations (id, title, created_at, updated_at, model) "
                             "VALUES (?,?,?,?,?)", (cid, unique, now, now, model))
        return cid

    def model(self, cid: str) -> str | None:
        """The model picked to answer in this conversation (None: not recorded)."""
        with self._lock:
            row = self._db.execute("SELECT model FROM conversations WHERE id=?", (cid,)).fetchone()
        return None if row is None else row[0]

    def set_model(self, cid: str, model: str | None) -> None:
        with self._lock:
            self._db.execute("UPDATE conversations SET model=? WHERE id=?", (model, cid))

    def drop_turns_from(self, cid: str, index: int) -> int:
        """Remove the turns from the ``index``-th (0-based) on, to answer again or to ask an
        edited question in their place; how many were removed."""
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM turns WHERE conversation_id=? AND seq >= (SELECT seq FROM turns "
                "WHERE conversation_id=? ORDER BY seq LIMIT 1 OFFSET ?)", (cid, cid, index))
        return cur.rowcount

    def recent(self, limit: int = 100) -> list[Conversation]:
        """Most recently used first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, c.title, c.created_at, c.updated_at, COUNT(t.seq) FROM conversations c "
                "LEFT JOIN turns t ON t.conversation_id = c.id GROUP BY c.id "
                "ORDER BY c.updated_at DESC LIMIT ?", (limit,)
            ).fetchall()
        return [Conversation(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]

    def get(self, cid: str) -> Conversation | None:
        with self._lock:
            row = self._db.execute(
                "SELECT c.id, c.title, c.created_at, c.updated_at, COUNT(t.seq) FROM conversations c "
                "LEFT JOIN turns t ON t.conversation_id = c.id WHERE c.id=? GROUP BY c.id", (cid,)
            ).fetchone()
        return None if row is None else Conversation(row[0], row[1], row[2], row[3], int(row[4]))

    def turns(self, cid: str) -> list[Turn]:
        with self._lock:
            rows = self._db.execute(
                "SELECT role, content, answer, stopped FROM turns WHERE conversation_id=? "
                "ORDER BY seq", (cid,),
            ).fetchall()
        return [Turn(role, content, answer_from_dict(json.loads(a)) if a else None, bool(stop))
                for role, content, a, stop in rows]

    def add_turn(self, cid: str, role: Role, content: str, answer: Answer | None = None,
                 *, stopped: bool = False) -> None:
        payload = json.dumps(answer_to_dict(answer), ensure_ascii=False) if answer else None
        with self._lock:
            now = self._now()
            self._db.execute("BEGIN")
            try:
                (seq,) = self._db.execute(
                    "SELECT COALESCE(MAX(seq), -1) + 1 FROM turns WHERE conversation_id=?", (cid,)
                ).fetchone()
                self._db.execute(
                    "INSERT INTO turns (conversation_id, seq, role, content, answer, created_at, "
                    "stopped) VALUES (?,?,?,?,?,?,?)",
                    (cid, seq, role, content, payload, now, int(stopped)))
                self._db.execute("UPDATE conversations SET updated_at=? WHERE id=?", (now, cid))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def rename(self, cid: str, title: str) -> bool:
        """Give a conversation a new title (on one line, shortened); False when it is gone.
        A blank title is refused: a conversation listed as nothing cannot be found again."""
        if not title.strip():
            raise ValueError("A conversation's title cannot be empty: type a few words.")
        with self._lock:
            cur = self._db.execute("UPDATE conversations SET title=? WHERE id=?",
                                   (title_for(title), cid))
        return cur.rowcount > 0

    def search(self, text: str, limit: int = 100) -> list[Conversation]:
        """Conversations whose title or any turn contains ``text`` (ignoring case, as typed:
        no wildcards), most recently used first; all of them for blank ``text``."""
        needle = text.strip().casefold()
        if not needle:
            return self.recent(limit)
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, c.title, c.created_at, c.updated_at, COUNT(t.seq) FROM conversations c "
                "LEFT JOIN turns t ON t.conversation_id = c.id GROUP BY c.id "
                "HAVING contains(c.title, ?1) OR MAX(contains(t.content, ?1)) "
                "ORDER BY c.updated_at DESC LIMIT ?2", (needle, limit)
            ).fetchall()
        return [Conversation(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]

    def export_markdown(self, cid: str) -> str | None:
        """The conversation as Markdown (``conversation_markdown``); None when it is gone."""
        conversation = self.get(cid)
        return None if conversation is None else conversation_markdown(conversation,
                                                                       self.turns(cid))

    def delete(self, cid: str) -> bool:
        with self._lock:
            self._db.execute("DELETE FROM turns WHERE conversation_id=?", (cid,))
            cur = self._db.execute("DELETE FROM conversations WHERE id=?", (cid,))
        return cur.rowcount > 0


def _where(source: Source) -> str:
    chunk = source.chunk
    page = f", page {chunk.page}" if chunk.page is not None else ""
    heading = f" ({chunk.heading})" if chunk.heading else ""
    return f"[{source.n}] {chunk.source}{page}{heading}"


def conversation_markdown(conversation: Conversation, turns: list[Turn]) -> str:
    """A conversation as a Markdown document: each question and answer, and under each answer
    the file and page of every source it cites (of every passage searched, when it cites none),
    so the answer can be checked without the app."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.updated_at))
    lines = [f"# {conversation.title}", "", f"_Exported from rag-local; last changed {when}._"]
    for turn in turns:
        if turn.role == "user":
            lines += ["", "## Question", "", turn.content.strip()]
            continue
        if turn.role != "assistant":
            continue
        lines += ["", "### Answer", "", turn.content.strip()]
        if turn.stopped:
            lines += ["", "_(stopped before the end)_"]
        answer = turn.answer
        if answer is None or not answer.sources:
            continue
        cited = answer.cited_sources()
        label = "Sources" if cited else "Passages searched (none cited)"
        lines += ["", f"**{label}:**", ""]
        lines += [f"- {_where(s)}" for s in (cited or answer.sources)]
    return "\n".join(lines) + "\n"


def answer_to_dict(answer: Answer) -> dict[str, Any]:
    """What the store keeps for an assistant turn: ``Answer.to_dict`` and the checked sentences
    (``to_dict`` lists only the unsupported ones)."""
    return {**answer.to_dict(), "sentences": [s.to_dict() for s in answer.sentences]}


def _evidence(data: Any) -> tuple[Evidence, ...]:
    return tuple(
        Evidence(start=int(e.get("start", 0)), end=int(e.get("end", 0)),
                 text=str(e.get("text", "")), score=float(e.get("score", 0.0)))
        for e in data or () if isinstance(e, dict)
    )


def _sentences(data: dict[str, Any]) -> list[AnswerSentence]:
    if "sentences" in data:
        return [AnswerSentence(text=str(s.get("text", "")),
                               cited=tuple(int(n) for n in s.get("cited", ())),
                               supported=bool(s.get("supported", True)))
                for s in data["sentences"] or () if isinstance(s, dict)]
    # written by Answer.to_dict alone: only the unsupported sentences are known
    return [AnswerSentence(str(t), (), False) for t in data.get("unsupported", ()) or ()]


def answer_from_dict(data: dict[str, Any]) -> Answer:
    """The inverse of ``answer_to_dict`` (and of ``Answer.to_dict``, less the supported
    sentences); answers stored before evidence and modes existed read as generated ones
    without evidence."""
    sources = [
        Source(
            n=int(s["n"]),
            chunk=RetrievedChunk(
                id=str(s.get("id", "")),
                text=str(s.get("text", "")),
                source=str(s.get("source", "")),
                page=s.get("page"),
                heading=str(s.get("heading", "")),
                score=float(s.get("score", 0.0)),
                root=str(s.get("root", "")),
            ),
            evidence=_evidence(s.get("evidence")),
        )
        for s in data.get("sources", [])
    ]
    return Answer(
        question=str(data.get("question", "")),
        text=str(data.get("answer", "")),
        sources=sources,
        search_query=str(data.get("search_query", "")),
        refused=bool(data.get("refused", False)),
        backend=str(data.get("backend", "")),
        left_out=int(data.get("left_out", 0)),
        mode="extract" if data.get("mode") == "extract" else "generate",
        sentences=_sentences(data),
    )
