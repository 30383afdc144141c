"""A 2-D picture of the embedding space: load chunk vectors, project them, find neighbours.

PCA (numpy, always available) is the default projection; UMAP is offered when ``umap-learn``
is installed. Beyond ``max_points`` chunks a uniform random sample (fixed seed) is drawn, so the
map of a 50,000-chunk index stays quick to compute and to draw; ``PointSet.sampled`` says so
(``bench/explorer.py`` times it, docs/performance.md has the figures).
Neighbours are always searched in the whole index (Chroma), not only in the sample.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    from ingest.manifest import Manifest
    from rag.store import ChromaStore
    from rag.types import RetrievedChunk

log = logging.getLogger(__name__)

Method = Literal["pca", "umap"]


def umap_available() -> bool:
    return importlib.util.find_spec("umap") is not None


def available_methods() -> list[Method]:
    return ["pca", "umap"] if umap_available() else ["pca"]


@dataclass
class PointSet:
    """Chunks with their vectors: all of them, or a sample when there are more than the limit."""

    ids: list[str]
    texts: list[str]
    sources: list[str]
    pages: list[int | None]
    vectors: np.ndarray  # (n, dim), float32
    total: int  # chunks in the index
    sampled: bool = False
    _rows: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._rows = {cid: row for row, cid in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def index_of(self, chunk_id: str) -> int | None:
        return self._rows.get(chunk_id)


def index_fingerprint(store: ChromaStore, manifest: Manifest | None = None) -> str:
    """Changes whenever the indexed content changes: the key of a cached projection."""
    digest = hashlib.sha256(f"{store.location}|{store.collection_name}|{store.count()}".encode())
    if manifest is not None:
        for rec in manifest.records():
            digest.update(f"|{rec.root}|{rec.source}|{rec.size}|{rec.ingested_at}".encode())
    return digest.hexdigest()[:16]


def load_points(store: ChromaStore, max_points: int, *, roots: Iterable[str] = (),
                seed: int = 0) -> PointSet:
    """Every chunk's vector, or a uniform random sample of ``max_points`` of them.

    ``roots`` (the ingested folders, from the manifest) let a sample be drawn from the chunk ids
    alone and only the sampled vectors be read: at 50,000 chunks that is several times quicker
    than reading every vector. When the roots do not account for every chunk, all are read.
    """
    total = store.count()
    if total <= max_points:
        return _points(store.iter_all(embeddings=True), total, sampled=False)
    rng = np.random.default_rng(seed)
    ids = sorted({cid for root in roots for cid in store.ids_for_root(root)})
    if len(ids) == total:
        chosen = sorted(rng.choice(total, size=max_points, replace=False).tolist())
        return _points(store.records([ids[i] for i in chosen]), total, sampled=True)
    keep = set(rng.choice(total, size=max_points, replace=False).tolist())
    rows = (row for i, row in enumerate(store.iter_all(embeddings=True)) if i in keep)
    return _points(rows, total, sampled=True)


def _points(rows: Iterable[tuple[str, str, dict[str, Any], np.ndarray | None]], total: int,
            *, sampled: bool) -> PointSet:
    ids: list[str] = []
    texts: list[str] = []
    sources: list[str] = []
    pages: list[int | None] = []
    vectors: list[np.ndarray] = []
    for cid, text, meta, vec in rows:
        if vec is None:
            continue
        ids.append(cid)
        texts.append(text)
        sources.append(str(meta.get("source", "")))
        page = meta.get("page")
        pages.append(int(page) if page is not None else None)
        vectors.append(vec)
    matrix = np.vstack(vectors).astype(np.float32) if vectors else np.zeros((0, 0), np.float32)
    return PointSet(ids, texts, sources, pages, matrix, total=total, sampled=sampled)


class Projector(Protocol):
    def transform(self, vectors: np.ndarray) -> np.ndarray: ...


@dataclass
class PCAProjector:
    """The top two principal axes of the (sampled) vectors."""

    mean: np.ndarray
    components: np.ndarray  # (2, dim)

    @classmethod
    def fit(cls, vectors: np.ndarray) -> PCAProjector:
        """The axes are the top eigenvectors of the (dim x dim) scatter matrix: for thousands
        of points that is several times quicker than an SVD of the points themselves."""
        mean = vectors.mean(axis=0)
        dim = vectors.shape[1]
        if len(vectors) < 2:
            components = np.eye(2, dim, dtype=np.float32)
        else:
            centred = (vectors - mean).astype(np.float64)
            _, eigenvectors = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
            components = eigenvectors[:, ::-1][:, :2].T
            if components.shape[0] < 2:
                components = np.vstack([components, np.zeros_like(components)])
            # A deterministic sign per axis, so the picture does not flip between runs.
            signs = np.sign(components[np.arange(2), np.abs(components).argmax(axis=1)])
            components = components * np.where(signs == 0, 1, signs)[:, None]
        return cls(mean.astype(np.float32), components.astype(np.float32))

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray((np.atleast_2d(vectors) - self.mean) @ self.components.T, np.float32)


@dataclass
class UMAPProjector:
    model: Any

    @classmethod
    def fit(cls, vectors: np.ndarray, *, seed: int = 0) -> UMAPProjector:
        import umap

        neighbours = max(2, min(15, len(vectors) - 1))
        model = umap.UMAP(n_components=2, n_neighbors=neighbours, metric="cosine",
                          random_state=seed)
        model.fit(vectors)
        return cls(model)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.transform(np.atleast_2d(vectors)), np.float32)


@dataclass
class Projection:
    points: PointSet
    xy: np.ndarray  # (n, 2)
    method: Method
    projector: Projector = field(repr=False)

    def place(self, vectors: np.ndarray) -> np.ndarray:
        """Where new vectors (a query, a chunk outside the sample) land on the same map."""
        return self.projector.transform(vectors)


def project(points: PointSet, method: Method = "pca", *, seed: int = 0) -> Projection:
    if len(points) == 0:
        empty = PCAProjector(np.zeros(1, np.float32), np.zeros((2, 1), np.float32))
        return Projection(points, np.zeros((0, 2), np.float32), "pca", empty)
    if method == "umap" and len(points) > 3:
        if not umap_available():
            raise ValueError("UMAP is not installed: pip install umap-learn, or use PCA")
        umap_projector = UMAPProjector.fit(points.vectors, seed=seed)
        return Projection(points, umap_projector.model.embedding_.astype(np.float32), "umap",
                          umap_projector)
    pca = PCAProjector.fit(points.vectors)
    return Projection(points, pca.transform(points.vectors), "pca", pca)


def nearest_in(points: PointSet, vector: np.ndarray, k: int, *,
               exclude: str | None = None) -> list[tuple[int, float]]:
    """(row, cosine similarity) of the ``k`` points closest to ``vector``, best first."""
    if len(points) == 0:
        return []
    matrix = points.vectors / np.maximum(np.linalg.norm(points.vectors, axis=1, keepdims=True), 1e-12)
    query = vector / max(float(np.linalg.norm(vector)), 1e-12)
    scores = matrix @ query
    order = np.argsort(-scores)
    out: list[tuple[int, float]] = []
    for row in order:
        if exclude is not None and points.ids[row] == exclude:
            continue
        out.append((int(row), float(scores[row])))
        if len(out) == k:
            break
    return out


def neighbours_in_index(store: ChromaStore, vector: np.ndarray, k: int, *,
                        exclude: str | None = None) -> list[RetrievedChunk]:
    """The ``k`` chunks of the whole index closest to ``vector`` (not only the sample)."""
    hits = store.query(vector, k + (1 if exclude else 0))
    return [h for h in hits if h.id != exclude][:k]
