"""rag/conversations.py: chats kept in SQLite, reopened with their sources, listed by recency."""

from __future__ import annotations

import json
from pathlib import Path

from rag.conversations import TITLE_LENGTH, ConversationStore, answer_from_dict
from rag.types import Answer, AnswerSentence, Evidence, RetrievedChunk, Source


def _answer(question: str) -> Answer:
    chunks = [
        RetrievedChunk("c1", "ef_search sets the candidate list size.", "handbook.pdf", 2,
                       "HNSW > Parameters", 0.91),
        RetrievedChunk("c2", "Use `rag search` to check.", "guide/user-guide.md", None, "", 0.5),
    ]
    return Answer(question=question, text="It sets how many candidates a query keeps [1].",
                  sources=[Source(i + 1, c) for i, c in enumerate(chunks)],
                  search_query=f"HNSW {question}", backend="llamacpp:test")


def test_a_conversation_reopens_with_its_turns_and_sources(tmp_path: Path) -> None:
    path = tmp_path / "data" / "conversations.sqlite3"
    store = ConversationStore(path)
    question = "What does ef_search control?"
    cid = store.create(question)
    store.add_turn(cid, "user", question)
    answer = _answer(question)
    store.add_turn(cid, "assistant", answer.text, answer)
    store.close()

    reopened = ConversationStore(path)  # another process, another day
    [conv] = reopened.recent()
    assert (conv.id, conv.title, conv.turns) == (cid, question, 2)
    user, assistant = reopened.turns(cid)
    assert (user.role, user.content, user.answer) == ("user", question, None)
    assert assistant.role == "assistant" and assistant.content == answer.text
    got = assistant.answer
    assert got is not None
    assert [s.n for s in got.sources] == [1, 2]
    assert got.sources[0].chunk.source == "handbook.pdf" and got.sources[0].chunk.page == 2
    assert got.sources[0].chunk.heading == "HNSW > Parameters"
    assert got.sources[0].chunk.text == answer.sources[0].chunk.text
    assert got.sources[1].chunk.page is None
    assert [s.n for s in got.cited_sources()] == [1]
    assert (got.question, got.search_query, got.backend, got.refused) == (
        question, answer.search_query, "llamacpp:test", False)
    assert [m.role for m in (user.message(), assistant.message())] == ["user", "assistant"]


def test_evidence_mode_and_checked_sentences_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    store = ConversationStore(path)
    answer = _answer("What does ef_search control?")
    evidence = Evidence(0, 40, "ef_search sets the candidate list size.", 1.23456)
    answer.sources[0] = Source(1, answer.sources[0].chunk, (evidence,))
    answer.sentences = [AnswerSentence("It sets how many candidates a query keeps [1].", (1,), True),
                        AnswerSentence("It was invented in 1850 [1].", (1,), False)]
    extracted = Answer(question="q", text="Quoted from the documents:\n\n“x y z” [1]",
                       sources=answer.sources[:1], mode="extract", backend="extract",
                       sentences=[AnswerSentence("x y z", (1,), True)])
    cid = store.create("q")
    store.add_turn(cid, "assistant", answer.text, answer)
    store.add_turn(cid, "assistant", extracted.text, extracted)
    store.close()

    got, quoted = (t.answer for t in ConversationStore(path).turns(cid))
    assert got is not None and quoted is not None
    assert got.mode == "generate" and quoted.mode == "extract"
    assert got.sources[0].evidence == (Evidence(0, 40, evidence.text, 1.2346),)
    assert got.sources[1].evidence == ()
    assert got.sentences == answer.sentences
    assert got.unsupported() == ["It was invented in 1850 [1]."]
    assert quoted.sentences == extracted.sentences and quoted.backend == "extract"


def test_answers_stored_before_evidence_existed_still_open() -> None:
    old = {"question": "q", "answer": "a [1]", "backend": "llamacpp:x", "left_out": 0,
           "sources": [{"n": 1, "text": "t", "source": "s.md", "page": None, "score": 0.5}]}
    got = answer_from_dict(json.loads(json.dumps(old)))
    assert got.mode == "generate" and got.sentences == [] and got.sources[0].evidence == ()
    # Answer.to_dict alone (no "sentences"): its unsupported sentences are still known
    assert answer_from_dict({**old, "unsupported": ["a [1]"]}).unsupported() == ["a [1]"]


def test_most_recently_used_first_and_delete_removes_everything(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    first = store.create("first question")
    second = store.create("second question")
    assert [c.id for c in store.recent()] == [second, first]
    store.add_turn(first, "user", "a follow-up")  # using a conversation brings it to the top
    assert [c.id for c in store.recent()] == [first, second]
    assert store.get(first) is not None and store.get(first).turns == 1  # type: ignore[union-attr]

    assert store.delete(first)
    assert [c.id for c in store.recent()] == [second]
    assert store.get(first) is None
    assert store.turns(first) == []
    assert not store.delete(first)  # already gone


def test_titles_are_one_short_line(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    store.create("  What does\nef_search\tcontrol?  ")
    store.create("why " * 40)
    store.create("   ")
    titles = {c.title for c in store.recent()}
    assert "What does ef_search control?" in titles
    assert "New chat" in titles
    [long] = [t for t in titles if t.startswith("why")]
    assert len(long) == TITLE_LENGTH and long.endswith("…")
