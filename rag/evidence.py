"""Evidence: the sentences of the retrieved passages that answer a question.

Every answer shows the sentences that support it, with character offsets into its passages.
They are found at sentence level with the app's own embedder (the question encoded as a query,
sentences as passages, as for search) plus the share of the question's terms a sentence holds:

    score = cosine(question, sentence) + LEXICAL_WEIGHT * overlap(question terms, sentence)

The same scores serve three ends:

- ``extract_answer``: an answer composed of the best one to three sentences, quoted with their
  ``[n]``, for machines where no capable model answers (RAG_ANSWER_MODE=extract/auto);
- ``EvidenceFinder.is_answerable``: the gate that refuses a question no sentence speaks to,
  whichever mode answers (a deleted file's question must not be answered from other files);
- ``EvidenceFinder.check``: each sentence of a generated answer matched against the passages
  it cites; a claim they do not support is marked ``supported=False``.

The constants were chosen on SQuAD 2.0 questions outside the reported sample
(bench/evidence_tune.py, docs/quality.md).
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from rag.citations import cited_numbers
from rag.embeddings import Embedder
from rag.prompts import is_refusal
from rag.text import Analyzer
from rag.types import AnswerSentence, Evidence, Source

LEXICAL_WEIGHT = 1.0  # overlap weight in a sentence's score
MIN_EVIDENCE = 0.55  # below this best score no sentence answers: refuse
MIN_QUOTE = 0.65  # an extractive answer, with no model to judge the passages, needs more
UNKNOWN_SHARE = 0.5  # refuse when this share of the question's topic terms is in no document
RELATIVE_KEEP = 0.70  # a further extracted sentence scores at least this share of the best
MAX_EXTRACTED = 3
SUPPORT_COSINE = 0.62  # a claim and a passage sentence saying the same thing
SUPPORT_OVERLAP = 0.6  # or: this share of the claim's terms in one cited sentence
EXTRACT_LABEL = "Quoted from the documents:"

_ABBREVIATIONS = frozenset(
    ["e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "prof", "st", "no", "fig", "al",
     "approx", "inc", "ltd", "co", "corp", "jr", "sr", "u.s", "cf", "p", "pp", "vol", "ca"]
)
# a sentence ends at . ! ? (closing quotes/brackets may follow) before whitespace and a capital,
# digit, quote or bracket; or at a line break that starts a heading, list item or new paragraph
_END = re.compile(r"""[.!?]["')\]]*\s+(?=["'(\[]?\w)""")
_BLOCK = re.compile(r"\n\s*\n|\n(?=\s*(?:#{1,6}\s|[-*+•]\s|\d{1,3}[.)]\s|\|))")
_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|[-*+•]\s+|\d{1,3}[.)]\s+|>\s*)|\*\*|__|`")
_CITATION = re.compile(r"\s*\[\d{1,3}\]")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str


def split_sentences(text: str) -> list[Span]:
    """Sentences of ``text`` with their offsets; headings and fragments of fewer than three
    words are left out (they state nothing)."""
    spans: list[Span] = []
    for block_start, block_end in _blocks(text):
        start = block_start
        block = text[block_start:block_end]
        for m in _END.finditer(block):
            before = block[: m.start()].rsplit(None, 1)
            word = before[-1].lower().rstrip(".") if before else ""
            if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
                continue
            end = block_start + m.start() + len(m.group().rstrip())
            _add(spans, text, start, end)
            start = block_start + m.end()
        _add(spans, text, start, block_end)
    return spans


def _blocks(text: str) -> list[tuple[int, int]]:
    """Paragraphs, list items and table rows; a heading line of a PDF page (short, no closing
    punctuation, after a sentence's end or at the start) is cut off as a block of its own,
    which ``_add`` then drops."""
    out, start = [], 0
    for m in _BLOCK.finditer(text):
        out.extend(_cut_headings(text, start, m.start()))
        start = m.end()
    out.extend(_cut_headings(text, start, len(text)))
    return out


def _cut_headings(text: str, start: int, end: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    pos, after_end = start, True  # the previous line ended a sentence (or there is none)
    while True:
        nl = text.find("\n", pos, end)
        if nl < 0:
            break
        line = text[pos:nl].strip()
        heading = (after_end and line and len(line.split()) <= 8 and len(line) <= 70
                   and line[-1] not in ".,;:!?\"'" and nl + 1 < end)
        if heading:
            if pos > start:
                out.append((start, pos))
            out.append((pos, -1))  # a heading: dropped
            start = nl + 1
        after_end = bool(line) and line[-1] in ".!?:"
        pos = nl + 1
    out.append((start, end))
    return [(a, b) for a, b in out if b != -1]


def _add(spans: list[Span], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    lead = len(piece) - len(piece.lstrip())
    piece = piece.strip()
    if not piece or piece.lstrip().startswith("#"):
        return
    if len(piece.split()) < 3:
        return
    spans.append(Span(start + lead, start + lead + len(piece), piece))


def plain(sentence: str) -> str:
    """A sentence without Markdown markup (a table row's cells joined by semicolons) and line
    breaks, for quoting."""
    lines = []
    for ln in sentence.splitlines():
        ln = ln.strip()
        if ln.startswith("|") and ln.count("|") >= 2:
            ln = "; ".join(c.strip() for c in ln.strip("|").split("|") if c.strip())
        lines.append(_MARKUP.sub("", ln).strip())
    return " ".join(_MARKUP.sub("", " ".join(ln for ln in lines if ln)).split())


@dataclass(frozen=True)
class Scored:
    source: int  # index into the sources
    span: Span
    score: float
    cosine: float
    overlap: float


class EvidenceFinder:
    """Scores the sentences of an answer's passages against its question.

    Each sentence is embedded on its own (a batch of one), not with the other sentences of the
    passages: the int8 model quantises each batch's activations with one scale, so a sentence
    padded beside a long table row came out with a vector up to 0.03 of cosine away from its
    own (docs/performance.md). Alone, its vector depends on its text only, no padding is
    computed (the passages' 25-45 sentences were padded to their longest, 2.5 times the
    tokens), and it is kept: the vectors of the last ``cache_size`` sentences are reused by
    the next question on the same passages and by the check of a generated answer.
    """

    def __init__(self, embedder: Embedder, analyzer: Analyzer | None = None,
                 cache_size: int = 4096) -> None:
        self.embedder = embedder
        self.analyzer = analyzer or Analyzer()
        self.cache_size = cache_size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # the UI answers several sessions from one process

    def sentence_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``texts`` embedded as passages, each on its own (see the class)."""
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for text in texts:
                vector = self._vectors.get(text)
                if vector is not None:
                    self._vectors.move_to_end(text)
                    found[text] = vector
        for text in dict.fromkeys(t for t in texts if t not in found):
            found[text] = _unit(self.embedder.embed_documents([text]))[0]
        with self._lock:
            for text, vector in found.items():
                self._vectors[text] = vector
                self._vectors.move_to_end(text)
            while len(self._vectors) > self.cache_size:
                self._vectors.popitem(last=False)
        if not texts:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        return np.stack([found[t] for t in texts])

    # --- scoring ------------------------------------------------------------------------------

    def score(self, question: str | Sequence[str], sources: Sequence[Source]) -> list[Scored]:
        """Every sentence of ``sources``, best first. Given several phrasings of the question
        (a follow-up as asked and as searched), a sentence keeps its best score."""
        questions = [question] if isinstance(question, str) else list(dict.fromkeys(question))
        spans = [(i, sp) for i, s in enumerate(sources) for sp in split_sentences(s.chunk.text)]
        if not spans or not questions:
            return []
        vectors = self.sentence_vectors([sp.text for _, sp in spans])
        terms = [set(self.analyzer.terms(sp.text)) for _, sp in spans]
        best: list[Scored] = []
        for q in questions:
            cosines = vectors @ _unit(np.asarray([self.embedder.embed_query(q)]))[0]
            overlaps = self._overlaps(self.analyzer.terms(q), terms)
            scored = [
                Scored(i, sp, float(c) + LEXICAL_WEIGHT * o, float(c), o)
                for (i, sp), c, o in zip(spans, cosines, overlaps, strict=True)
            ]
            best = scored if not best else [max(a, b, key=lambda s: s.score)
                                             for a, b in zip(best, scored, strict=True)]
        best.sort(key=lambda s: -s.score)
        return best

    @staticmethod
    def _overlaps(question_terms: Sequence[str], sentences: Sequence[set[str]]) -> list[float]:
        """Share of the question's terms (weighted by how rare they are among these sentences)
        that each sentence holds."""
        wanted = set(question_terms)
        if not wanted:
            return [0.0] * len(sentences)
        n = len(sentences)
        weight = {t: math.log(1 + n / (1 + sum(t in s for s in sentences))) for t in wanted}
        total = sum(weight.values())
        return [sum(weight[t] for t in wanted & s) / total for s in sentences]

    # --- attaching, gating, extracting ----------------------------------------------------------

    def attach(self, question: str | Sequence[str],
               sources: Sequence[Source]) -> tuple[list[Source], list[Scored]]:
        """``sources`` with their best sentences as evidence (those within reach of the best
        overall), and all scored sentences, best first."""
        scored = self.score(question, sources)
        if not scored:
            return list(sources), scored
        floor = max(MIN_EVIDENCE, scored[0].score * RELATIVE_KEEP)
        per: dict[int, list[Evidence]] = {}
        for s in scored:
            if s.score >= floor and len(per.get(s.source, [])) < MAX_EXTRACTED:
                per.setdefault(s.source, []).append(_evidence(s))
        return [replace(src, evidence=tuple(per.get(i, ()))) for i, src in
                enumerate(sources)], scored

    @staticmethod
    def is_answerable(scored: Sequence[Scored], *, quoting: bool = False,
                      unknown_share: float = 0.0) -> bool:
        """Whether any sentence speaks to the question at all; ``quoting``: well enough to be
        quoted as the answer (a model given the passages may still find it in them).

        ``unknown_share``: the share of the question's topic terms that no document holds
        (``LexicalIndex.unknown_share``). When half of them are unknown (a deleted file's
        subject: "backups", "rotated") the question is about something else than the passages
        found for it, however similar their wording.
        """
        if unknown_share >= UNKNOWN_SHARE:
            return False
        return bool(scored) and scored[0].score >= (MIN_QUOTE if quoting else MIN_EVIDENCE)

    @staticmethod
    def extract(scored: Sequence[Scored], sources: Sequence[Source]) -> tuple[str, list[Scored]]:
        """The extractive answer: the best one to three sentences, each with its ``[n]``."""
        chosen: list[Scored] = []
        seen: set[str] = set()
        for s in scored:
            if len(chosen) == MAX_EXTRACTED:
                break
            if chosen and s.score < max(MIN_EVIDENCE, chosen[0].score * RELATIVE_KEEP):
                break
            key = " ".join(re.sub(r"[^\w\s]", " ", s.span.text.lower()).split())
            if key in seen or any(key in k or k in key for k in seen):
                continue
            seen.add(key)
            chosen.append(s)
        lines = [f"“{plain(s.span.text)}” [{sources[s.source].n}]" for s in chosen]
        return EXTRACT_LABEL + "\n\n" + "\n\n".join(lines), chosen

    # --- checking a generated answer -------------------------------------------------------------

    def check(self, answer: str, sources: Sequence[Source]) -> tuple[list[AnswerSentence],
                                                                    list[Source]]:
        """Each sentence of a generated ``answer`` and whether the passages it cites support it;
        the sources with, as evidence, the sentences that support the claims citing them.

        A sentence without a citation counts as supported when some passage supports it; an
        answer with no citation at all is unsupported throughout.
        """
        claims = [sp for sp in split_sentences(answer) if not is_refusal(sp.text)]
        if not claims:
            return [], list(sources)
        by_n = {s.n: i for i, s in enumerate(sources)}
        passage = [(i, sp) for i, s in enumerate(sources) for sp in split_sentences(s.chunk.text)]
        if not passage:
            return [AnswerSentence(c.text, tuple(sorted(cited_numbers(c.text))), False)
                    for c in claims], list(sources)
        texts = [_CITATION.sub("", c.text) for c in claims]
        a = self.sentence_vectors(texts)
        p = self.sentence_vectors([sp.text for _, sp in passage])
        sims = a @ p.T
        p_terms = [set(self.analyzer.terms(sp.text)) for _, sp in passage]
        any_cited = bool(cited_numbers(answer))
        found: dict[int, list[Evidence]] = {}
        out: list[AnswerSentence] = []
        for ci, claim in enumerate(claims):
            cited = tuple(sorted(n for n in cited_numbers(claim.text) if n in by_n))
            allowed = {by_n[n] for n in cited} if cited else set(range(len(sources)))
            c_terms = set(self.analyzer.terms(texts[ci]))
            best_j, best = -1, 0.0
            for j, (src, _) in enumerate(passage):
                if src not in allowed:
                    continue
                overlap = len(c_terms & p_terms[j]) / len(c_terms) if c_terms else 0.0
                ok = max(float(sims[ci, j]) / SUPPORT_COSINE, overlap / SUPPORT_OVERLAP)
                if ok > best:
                    best_j, best = j, ok
            supported = any_cited and best >= 1.0
            out.append(AnswerSentence(claim.text, cited, supported))
            if supported and cited:
                src, sp = passage[best_j]
                ev = Evidence(sp.start, sp.end, sp.text, float(sims[ci, best_j]))
                if all(e.start != ev.start for e in found.get(src, [])):
                    found.setdefault(src, []).append(ev)
        updated = [replace(s, evidence=tuple(found[i])) if i in found else s
                   for i, s in enumerate(sources)]
        return out, updated


def _evidence(s: Scored) -> Evidence:
    return Evidence(s.span.start, s.span.end, s.span.text, s.score)


def _unit(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    return v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-12)
