"""Reading a BEIR-format folder: corpus.jsonl, queries.jsonl and qrels/SPLIT.tsv."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import RagError


@dataclass(frozen=True)
class BeirDataset:
    corpus: dict[str, str]  # doc id -> "title\ntext"
    queries: dict[str, str]  # query id -> text, only those with judgements in the split
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance}
    fingerprint: str  # of corpus.jsonl's bytes: the cache key of its index
    titles: dict[str, str] = field(default_factory=dict)  # doc id -> title, when it has one


def _require(path: Path) -> Path:
    if not path.exists():
        raise RagError(
            f"{path} is missing: a BEIR folder has corpus.jsonl, queries.jsonl and "
            "qrels/SPLIT.tsv (download one from https://github.com/beir-cellar/beir)"
        )
    return path


def load_beir(folder: Path, split: str = "test") -> BeirDataset:
    """The corpus, the judged queries of ``split`` and their relevance judgements."""
    corpus_path = _require(folder / "corpus.jsonl")
    qrels_path = _require(folder / "qrels" / f"{split}.tsv")
    digest = hashlib.sha256()
    corpus: dict[str, str] = {}
    titles: dict[str, str] = {}
    with corpus_path.open("rb") as fh:
        for raw in fh:
            digest.update(raw)
            if not raw.strip():
                continue
            row = json.loads(raw)
            title, text = str(row.get("title") or "").strip(), str(row.get("text") or "").strip()
            corpus[str(row["_id"])] = f"{title}\n{text}" if title else text
            if title:
                titles[str(row["_id"])] = title
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        for row in reader:
            if len(row) < 3 or row[0] == "query-id":
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries: dict[str, str] = {}
    with _require(folder / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                if str(row["_id"]) in qrels:
                    queries[str(row["_id"])] = str(row["text"])
    if not queries:
        raise RagError(f"no query of {qrels_path} is in {folder / 'queries.jsonl'}")
    return BeirDataset(corpus, queries, qrels, digest.hexdigest()[:16], titles)
