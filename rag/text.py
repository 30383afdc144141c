"""Text analysis in one place: words, stop words, stemmed terms, and the word lists that tell
a question's topic from its phrasing.

BM25 (``rag.lexical``), evidence scoring (``rag.evidence``), follow-up detection and query
rewriting (``rag.chat``, ``rag.prompts``) all read text through these.
"""

from __future__ import annotations

import re

WORD = re.compile(r"(?u)\b\w\w+\b")  # words of two or more characters

# Words that carry no topic in a question (on top of the BM25 stop words).
QUESTION_WORDS = frozenset(
    ["what", "which", "who", "whom", "whose", "when", "where", "why", "how", "about", "also", "more", "tell", "me", "please", "explain", "describe", "does", "do", "did", "can", "could", "would", "should", "was", "were", "has", "have", "had", "its", "his", "her", "him", "them", "they", "it", "that", "this", "those", "these", "there", "here", "any", "some", "other", "else", "often", "much", "many", "usually", "typically", "exactly"]
)
# Words by which a follow-up refers back to the conversation ("what does its ef_search do?").
REFERRING_WORDS = frozenset(
    ["it", "its", "it's", "they", "them", "their", "theirs", "this", "that", "these", "those", "he", "him", "his", "she", "her", "hers", "there", "such", "same", "former", "latter", "one", "ones"]
)


def stop_words() -> frozenset[str]:
    """English stop words (bm25s's list, the one the BM25 index was built with)."""
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def words(text: str) -> list[str]:
    """Lowercase words of two or more characters."""
    return WORD.findall(text.lower())


class Analyzer:
    """Text -> terms: lowercase words of two or more characters, stop words out, stemmed."""

    def __init__(self, *, stem: bool = True, stopwords: bool = True) -> None:
        import Stemmer

        self._stemmer = Stemmer.Stemmer("english") if stem else None
        self._stop = stop_words() if stopwords else frozenset()

    def terms(self, text: str) -> list[str]:
        kept = [w for w in words(text) if w not in self._stop]
        return list(self._stemmer.stemWords(kept)) if self._stemmer else kept

    def content_terms(self, text: str) -> set[str]:
        """The terms of a question that name its topic (question words left out)."""
        topical = " ".join(w for w in text.lower().split()
                           if w.strip("?!.,;:") not in QUESTION_WORDS)
        return set(self.terms(topical))
