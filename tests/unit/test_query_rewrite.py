"""Follow-up questions become standalone search queries: the LLM's rewrite, checked."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rag.chat import rewrite_question
from rag.prompts import clean_rewrite
from rag.types import Message

HISTORY = [
    Message("user", "What was the revenue of Acme Corp in 2021?"),
    Message("assistant", "Acme Corp's revenue in 2021 was 4.2 billion dollars [1]."),
]


class ScriptedLLM:
    """An LLM that replies with a fixed text and records the prompts it was given."""

    name = "scripted"

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.prompts: list[Sequence[Message]] = []

    def stream(self, messages: Sequence[Message], *, temperature: float,
               max_tokens: int) -> Iterator[str]:
        self.prompts.append(messages)
        yield from self.reply.split(" ")[:1]
        for word in self.reply.split(" ")[1:]:
            yield " " + word


def test_a_good_rewrite_is_the_search_query() -> None:
    llm = ScriptedLLM("Standalone question: What was the revenue of Acme Corp in 2022?")
    query = rewrite_question("and what about 2022?", HISTORY, llm)
    assert query == "What was the revenue of Acme Corp in 2022?"
    prompt = llm.prompts[0][-1].content
    assert "Acme Corp" in prompt and "and what about 2022?" in prompt


def test_an_unusable_rewrite_falls_back_to_the_previous_question() -> None:
    heuristic = "What was the revenue of Acme Corp in 2021? and what about 2022?"
    for reply in [
        "",  # nothing
        "I'm sorry, I cannot help with that.",  # a refusal
        "The revenue in 2022 was 5 billion dollars [1].",  # an answer
        "The revenue of Acme Corp in 2022 was higher.",  # an answer without a citation
        "What was the revenue of Acme Corp in 2021?",  # the old question echoed: 2022 lost
        "What about 2022?",  # nothing brought from the conversation
    ]:
        assert rewrite_question("and what about 2022?", HISTORY, ScriptedLLM(reply)) == heuristic


def test_without_history_the_question_is_the_query_and_the_llm_is_not_asked() -> None:
    llm = ScriptedLLM("anything")
    assert rewrite_question("What is HNSW?", [], llm) == "What is HNSW?"
    assert llm.prompts == []


def test_rewrite_keeps_the_first_line_without_labels_or_quotes() -> None:
    raw = '"Acme Corp revenue in 2022"\nThis asks about the revenue.'
    assert clean_rewrite(raw, "and 2022?", HISTORY) == "Acme Corp revenue in 2022"


def test_heuristic_keeps_the_topic_of_follow_ups_that_refer_back() -> None:
    from rag.chat import condense_question

    history = [Message("user", "What is HNSW?"), Message("assistant", "A graph index [1].")]
    long_follow_up = "And what does its ef_search setting do when the index grows?"
    assert condense_question(long_follow_up, history) == f"What is HNSW? {long_follow_up}"
    assert condense_question("What does this parameter control in practice today?",
                             history).startswith("What is HNSW?")
    standalone = "How are PDF files split into pages during ingest here?"
    assert condense_question(standalone, history) == standalone
