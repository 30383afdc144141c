"""SQuAD 2.0 as a folder of documents and a question file, for `rag ingest` and `rag eval qa`.

Each paragraph becomes one text file (``Article_title/007.txt``); each question points at its
paragraph's file, and the unanswerable ones (``is_impossible``) point at none, so the
threshold sweep of `rag eval qa` shows how often the app refuses them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from rag.errors import RagError


def export_squad(squad_json: Path, out: Path, *, every: int = 1) -> tuple[int, int]:
    """Write ``out/docs/`` and ``out/questions.jsonl``; keep every ``every``-th question.

    Returns (paragraphs written, questions written).
    """
    try:
        data = json.loads(squad_json.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError) as exc:
        raise RagError(f"{squad_json} is not a SQuAD JSON file ({exc})") from exc
    docs = out / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    paragraphs = questions = 0
    seen = 0
    with (out / "questions.jsonl").open("w", encoding="utf-8") as fh:
        for article in data:
            title = re.sub(r"[^\w.-]+", "_", article["title"]).strip("_") or "article"
            for i, para in enumerate(article["paragraphs"]):
                source = f"{title}/{i:03d}.txt"
                (docs / title).mkdir(exist_ok=True)
                (docs / source).write_text(para["context"], encoding="utf-8")
                paragraphs += 1
                for qa in para["qas"]:
                    seen += 1
                    if (seen - 1) % every:
                        continue
                    impossible = bool(qa.get("is_impossible"))
                    answers = list(dict.fromkeys(a["text"] for a in qa.get("answers", [])))
                    row = {
                        "id": qa["id"],
                        "question": qa["question"],
                        "source": None if impossible else source,
                        "answers": [] if impossible else answers,
                    }
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                    questions += 1
    return paragraphs, questions
