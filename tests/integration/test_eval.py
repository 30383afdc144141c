"""`rag eval`: a small BEIR folder cut from SciFact, and a question file on knowledge_base/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from application.evaluation.qa import evaluate_answers, evaluate_retrieval, load_questions
from rag.retriever import SearchOptions
from tests.conftest import SHARED_DATA
from tests.fakes import ScriptedLLM

pytestmark = pytest.mark.slow

SCIFACT = SHARED_DATA / "scifact"


@pytest.fixture(scope="module")
def mini_beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 SciFact test queries, their relevant abstracts and 30 other abstracts."""
    if not (SCIFACT / "corpus.jsonl").exists():
        pytest.skip(f"SciFact is not at {SCIFACT}")
    folder = tmp_path_factory.mktemp("scifact-mini")
    qrels = [line.split("\t") for line in
             (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    wanted_queries = list(dict.fromkeys(q for q, _, _ in qrels))[:8]
    rows = [(q, d, s) for q, d, s in qrels if q in wanted_queries]
    wanted_docs = {d for _, d, _ in rows}
    corpus = []
    with (SCIFACT / "corpus.jsonl").open() as fh:
        for line in fh:
            doc = json.loads(line)
            if doc["_id"] in wanted_docs or len(corpus) < 30 + len(wanted_docs):
                corpus.append(line)
            if len(corpus) >= 30 + len(wanted_docs) and wanted_docs <= {
                    json.loads(c)["_id"] for c in corpus}:
                break
    (folder / "corpus.jsonl").write_text("".join(corpus))
    queries = [line for line in (SCIFACT / "queries.jsonl").read_text().splitlines()
               if json.loads(line)["_id"] in wanted_queries]
    (folder / "queries.jsonl").write_text("\n".join(queries) + "\n")
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s.strip()}\n" for q, d, s in rows))
    return folder


def test_beir_eval_scores_hybrid_and_reuses_its_index(mini_beir: Path, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from application.evaluation.beir import run_beir
    from application.evaluation.beir_data import load_beir
    from rag.retriever import RetrievalConfig
    from tests.conftest import make_settings

    dataset = load_beir(mini_beir, "test")
    settings = make_settings(tmp_path / "unused")
    reports = {}
    for mode in ("dense", "lexical", "hybrid"):
        embedded_before = embedder.documents_embedded
        reports[mode] = run_beir(dataset, name="mini", split="test", embedder=embedder,
                                 settings=settings, cache_dir=tmp_path / "cache",
                                 config=RetrievalConfig(mode=mode), chunks_per_query=50)
        if mode != "dense":  # the first run indexed the corpus; the others reuse it
            assert embedder.documents_embedded == embedded_before
    hybrid = reports["hybrid"].to_dict()
    assert hybrid["queries"] == 8 and hybrid["documents"] == len(dataset.corpus)
    for key in ("ndcg@10", "recall@5", "recall@10", "recall@100", "mrr@10",
                "latency_p50_ms", "latency_p95_ms"):
        assert key in hybrid
    # with a few dozen abstracts the relevant one is nearly always first
    assert hybrid["ndcg@10"] > 0.7 and hybrid["recall@100"] == 1.0
    assert hybrid["ndcg@10"] >= min(reports[m].metrics["ndcg@10"] for m in ("dense", "lexical"))


def test_eval_keeps_onnx_and_torch_vectors_apart(mini_beir: Path, embedder, torch_embedder,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path) -> None:
    """Both backends report one model id; comparing them must not score one with the other's
    cached vectors."""
    from application.evaluation.beir import index_key
    from application.evaluation.beir_data import load_beir
    from application.evaluation.embedding_cache import CachedEmbedder
    from tests.conftest import make_settings

    assert embedder.model_id == torch_embedder.model_id
    texts = ["Vitamin D deficiency is common in the elderly.", "Aspirin thins the blood."]
    db = tmp_path / "embeddings.sqlite3"
    onnx_cached = CachedEmbedder(embedder, db)
    onnx_vectors = onnx_cached.embed_documents(texts)
    onnx_cached.close()
    torch_cached = CachedEmbedder(torch_embedder, db)
    torch_vectors = torch_cached.embed_documents(texts)
    assert torch_cached.computed == 2  # not served the ONNX vectors from the shared cache
    assert np.allclose(torch_vectors, torch_embedder.embed_documents(texts), atol=1e-5)
    assert not np.array_equal(torch_vectors, onnx_vectors)
    torch_cached.close()
    again = CachedEmbedder(embedder, db)
    assert np.array_equal(again.embed_documents(texts), onnx_vectors) and again.computed == 0
    again.close()

    dataset = load_beir(mini_beir, "test")
    settings = make_settings(tmp_path / "unused")
    assert index_key(dataset, embedder, settings) != index_key(dataset, torch_embedder, settings)


def test_eval_beir_command_prints_json(mini_beir: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from application.cli import main
    from application.evaluation.beir_data import load_beir
    from application.evaluation.metrics import ranking_metrics, read_run

    run_file = tmp_path / "lexical.run"
    code = main(["--data-dir", str(tmp_path / "data"), "eval", "beir", str(mini_beir),
                 "--mode", "lexical", "--json", "--cache-dir", str(tmp_path / "cache"),
                 "--run-file", str(run_file)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == "lexical" and report["queries"] == 8
    assert 0.5 < report["ndcg@10"] <= 1.0
    # the run file holds the rankings the report scored
    runs = read_run(run_file)
    assert len(runs) == 8
    again = ranking_metrics(runs, load_beir(mini_beir, "test").qrels)
    assert round(again["ndcg@10"], 4) == report["ndcg@10"]


QUESTIONS = [
    {"question": "What does the ef_search parameter control?",
     "source": "vector-search-handbook.pdf", "answer": "ef_search"},
    {"question": "Which projection method keeps more of the global arrangement than t-SNE?",
     "source": "embeddings-guide.md", "answer": "UMAP"},
    {"question": "What is the recipe for a Sachertorte with apricot jam?", "source": None},
]


def test_qa_eval_reports_hits_and_refusals(make_app, kb_data_dir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    items = load_questions(path)
    app = make_app(kb_data_dir, min_score=0.3)

    def retrieve(question: str):  # type: ignore[no-untyped-def]
        got = app.retriever.retrieve(question, SearchOptions(k=10))
        return got.hits, got.best_cosine

    report = evaluate_retrieval(items, retrieve, (1, 5))
    assert (report["answerable"], report["unanswerable"]) == (2, 1)
    assert report["source_hit@5"] == 1.0
    at_03 = next(r for r in report["threshold_sweep"] if r["threshold"] == 0.3)
    assert at_03 == {"threshold": 0.3, "refused_unanswerable": 1.0, "refused_answerable": 0.0}

    # a model that always cites the first passage given: the report counts, not the wording
    llm = ScriptedLLM(lambda messages: "The first passage answers this [1].")
    engine = app.chat_engine(llm)
    answers = evaluate_answers(items, lambda q: engine.ask(q))
    assert answers["refused_unanswerable"] == 1.0
    assert answers["refused_answerable"] == 0.0 and answers["cites_gold_source"] is not None
    assert len(llm.calls) == 2  # the unanswerable question was refused without asking it
