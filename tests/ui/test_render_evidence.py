"""ui/render.py: evidence highlighted by its offsets, unsupported sentences marked (pure
functions, no app)."""

from __future__ import annotations

from rag.types import AnswerSentence, Evidence
from ui.render import (
    UNSUPPORTED_MARK,
    checked_answer_markdown,
    evidence_snippet,
    evidence_spans,
)

PASSAGE = ("HNSW builds a layered graph. ef_search is the size of the candidate list\nkept "
           "during a query. Raising it increases recall.")


def _evidence(text: str, sentence: str) -> Evidence:
    start = text.index(sentence)
    return Evidence(start, start + len(sentence), sentence, 1.0)


def test_the_evidence_is_highlighted_by_its_offsets_and_escaped() -> None:
    sentence = "ef_search is the size of the candidate list\nkept during a query."
    out = evidence_snippet(PASSAGE, [_evidence(PASSAGE, sentence)])
    assert out == ("HNSW builds a layered graph\\. :orange-background[ef\\_search is the size "
                   "of the candidate list kept during a query\\.] Raising it increases recall\\.")
    assert evidence_snippet(PASSAGE, []) == evidence_snippet(PASSAGE, []).replace(
        ":orange-background[", "")  # no evidence: nothing highlighted, nothing guessed


def test_hostile_text_stays_text_inside_and_outside_the_highlight() -> None:
    text = ("See ![x](http://evil/?q=1) now, or http://evil/. :red[Boom] ]] and `code` here. "
            "<b>bold</b> end.")
    out = evidence_snippet(text, [_evidence(text, ":red[Boom] ]] and `code` here.")])
    # shown as plain text: Markdown's code ticks and the image's link go, the rest is literal
    assert ":orange-background[\\:red\\[Boom\\] \\]\\] and code here\\.]" in out
    assert "![" not in out and "](" not in out and "evil/?q" not in out and "<b>" not in out
    assert "http\u2060\\://" in out  # no autolink either


def test_offsets_that_do_not_fit_the_passage_are_found_by_text_or_dropped() -> None:
    sentence = "Raising it increases recall."
    moved = Evidence(0, len(sentence), sentence, 1.0)  # offsets of another version
    assert evidence_spans(PASSAGE, [moved]) == [(PASSAGE.index(sentence), len(PASSAGE))]
    assert evidence_spans(PASSAGE, [Evidence(-5, 10**6, "not in it at all", 1.0)]) == []
    a, b = _evidence(PASSAGE, "HNSW builds"), _evidence(PASSAGE, "builds a layered graph.")
    assert evidence_spans(PASSAGE, [b, a]) == [(0, b.end)]  # sorted, overlaps merged


def test_a_long_passage_is_cut_around_its_evidence() -> None:
    text = " ".join(f"Filler sentence number {i}." for i in range(100))
    sentence = "Filler sentence number 70."
    out = evidence_snippet(text, [_evidence(text, sentence)], limit=200)
    assert out.startswith("… ") and out.endswith(" …")
    assert ":orange-background[Filler sentence number 70\\.]" in out
    assert len(out) < 320


def test_an_unsupported_sentence_is_marked_and_never_badged() -> None:
    text = "ef_search sets the candidate list size [1]. It was invented on the moon in 1850 [2]."
    sentences = [AnswerSentence("ef_search sets the candidate list size [1].", (1,), True),
                 AnswerSentence("It was invented on the moon in 1850 [2].", (2,), False)]
    out, missing = checked_answer_markdown(text, [1, 2], sentences)
    assert missing == []
    assert out.startswith("ef_search sets the candidate list size :blue-badge[1]. ")
    assert (f":orange-background[{UNSUPPORTED_MARK} It was invented on the moon in 1850.] "
            ":gray[(not supported by the passage it cites \\[2\\])]") in out
    assert ":blue-badge[2]" not in out
    gone = [AnswerSentence("A sentence the text does not hold [1].", (1,), False)]
    assert checked_answer_markdown(text, [1, 2], gone) == (
        "ef_search sets the candidate list size :blue-badge[1]. It was invented on the moon in "
        "1850 :blue-badge[2].", gone)


def test_evidence_far_apart_gets_a_window_each() -> None:
    text = " ".join(f"Filler sentence number {i}." for i in range(100))
    first, second = "Filler sentence number 5.", "Filler sentence number 90."
    out = evidence_snippet(text, [_evidence(text, second), _evidence(text, first)], limit=300)
    assert ":orange-background[Filler sentence number 5\\.]" in out
    assert ":orange-background[Filler sentence number 90\\.]" in out
    assert " … " in out.split("number 5")[1].split("number 90")[0]  # the middle is elided
    assert len(out) < 450
