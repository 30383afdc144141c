"""Chroma adapter: one collection of chunks with their vectors, in embedded or server Chroma.

Each collection is a knowledge base; ``collection_names`` and ``sibling`` reach the others of
the same Chroma.

The project computes vectors itself (no Chroma embedding function). The collection's metadata
records the embedder id and dimension; opening it with another model is refused. The clients
(an embedded PersistentClient, or an HttpClient when a server host is set) and the wording of
Chroma's failures live in ``rag.chroma_client``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rag.chroma_client import store_error
from rag.errors import EmbedderMismatchError, RagError, StoreError
from rag.types import Chunk, RetrievedChunk

log = logging.getLogger(__name__)

Where = Mapping[str, Any]


class ChromaStore:
    """One collection of chunks with their vectors."""

    def __init__(self, client: Any, collection: str, location: str) -> None:
        self._client = client
        self.collection_name = collection
        self.location = location  # shown by `rag status`
        self._collection: Any = None
        try:
            self._max_batch = int(client.get_max_batch_size())
        except Exception:
            self._max_batch = 5000

    @property
    def local_path(self) -> Path | None:
        """The directory of an embedded store; ``None`` for a Chroma server."""
        try:
            settings = self._client.get_settings()
            if settings.is_persistent and settings.persist_directory:
                return Path(settings.persist_directory)
        except Exception:
            pass
        return None

    # --- opening -------------------------------------------------------------------------

    def _existing(self) -> Any:
        if self._collection is None:
            try:
                self._collection = self._client.get_collection(self.collection_name)
            except Exception:
                return None
        return self._collection

    def exists(self) -> bool:
        return self._existing() is not None

    # --- the other collections of the same Chroma (knowledge bases) ------------------------

    def collection_names(self) -> list[str]:
        """Every collection this Chroma holds (embedded store or server), sorted."""
        with self._chroma("list the collections"):
            return sorted(str(c.name) for c in self._client.list_collections())

    def sibling(self, collection: str) -> ChromaStore:
        """The store of another collection, through the same client."""
        return ChromaStore(self._client, collection, self.location)

    def embedder_record(self) -> tuple[str | None, int | None]:
        """(embedding model id, dimension) recorded when the collection was created."""
        collection = self._existing()
        if collection is None:
            return None, None
        meta = collection.metadata or {}
        dim = meta.get("dimension")
        return meta.get("embedder"), int(dim) if dim is not None else None

    def open_for_writing(self, embedder_id: str, dimension: int) -> None:
        """Create the collection, or check that it was built by the same embedder."""
        collection = self._existing()
        if collection is None:
            with self._chroma("create the collection"):
                self._collection = self._client.get_or_create_collection(
                    self.collection_name,
                    metadata={"hnsw:space": "cosine", "embedder": embedder_id,
                              "dimension": dimension},
                )
            return
        self.check_embedder(embedder_id, dimension)

    def check_embedder(self, embedder_id: str, dimension: int) -> None:
        collection = self._existing()
        if collection is None:
            return
        meta = collection.metadata or {}
        stored_id, stored_dim = meta.get("embedder"), meta.get("dimension")
        if stored_id and (stored_id != embedder_id or int(stored_dim or 0) != dimension):
            raise EmbedderMismatchError(
                f"collection {self.collection_name!r} was built with embedding model "
                f"{stored_id!r} ({stored_dim} dimensions), but RAG_EMBEDDING_MODEL is "
                f"{embedder_id!r} ({dimension}). Set RAG_EMBEDDING_MODEL={stored_id}, or use a "
                "new RAG_COLLECTION or RAG_DATA_DIR and ingest again."
            )

    def embedder_id(self) -> str | None:
        collection = self._existing()
        return None if collection is None else (collection.metadata or {}).get("embedder")

    def _require(self) -> Any:
        collection = self._existing()
        if collection is None:
            raise StoreError(
                f"the knowledge base is empty (no collection {self.collection_name!r} at "
                f"{self.location}). Run `rag ingest DIR` first; `rag collections` lists the "
                "collections there."
            )
        return collection

    # --- writing -------------------------------------------------------------------------

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        collection = self._require()
        for start in range(0, len(chunks), self._max_batch):
            part = chunks[start : start + self._max_batch]
            with self._chroma("write chunks"):
                collection.upsert(
                    ids=[c.id for c in part],
                    documents=[c.text for c in part],
                    metadatas=[c.metadata() for c in part],
                    embeddings=vectors[start : start + len(part)],
                )
        if chunks:
            self._bump_generation()

    def delete(self, ids: Sequence[str]) -> None:
        collection = self._existing()
        if collection is None or not ids:
            return
        ids = list(ids)
        for start in range(0, len(ids), self._max_batch):
            with self._chroma("delete chunks"):
                collection.delete(ids=ids[start : start + self._max_batch])
        self._bump_generation()

    # --- generation: lets derived indexes (the lexical one) notice any change ---------------

    def _bump_generation(self) -> None:
        """Record a change in the collection's metadata, where embedded and server Chroma keep it.

        ``modify(metadata=...)`` replaces the whole mapping, so the other keys are carried over;
        ``hnsw:*`` keys are left out because Chroma refuses to "change" them (the distance is
        kept in the collection's configuration, which ``modify`` does not touch). The new value
        is the time in microseconds (at least the old value + 1), not a plain count: two
        processes writing to one server at once each leave a different value, where both
        would write the same ``old + 1`` and the second change would go unnoticed.
        """
        collection = self._existing()
        if collection is None:
            return
        try:
            fresh = self._client.get_collection(self.collection_name)
            meta = {k: v for k, v in (fresh.metadata or {}).items() if not k.startswith("hnsw:")}
            meta["generation"] = max(int(meta.get("generation", 0)) + 1, time.time_ns() // 1000)
            fresh.modify(metadata=meta)
            self._collection = fresh
        except Exception as exc:
            log.warning("cannot record the change in collection %r: %s", self.collection_name, exc)

    def generation(self) -> int:
        """A number that grows with every write to the collection (0: none recorded yet)."""
        if self._existing() is None:
            return 0
        try:
            fresh = self._client.get_collection(self.collection_name)
        except Exception:
            return 0
        return int((fresh.metadata or {}).get("generation", 0))

    def collection_id(self) -> str:
        """The collection's id; a collection deleted and created again has a new one."""
        collection = self._existing()
        return "" if collection is None else str(collection.id)

    # --- reading -------------------------------------------------------------------------

    def count(self) -> int:
        collection = self._existing()
        if collection is None:
            return 0
        with self._chroma("count the chunks"):
            return int(collection.count())

    def ids_for_source(self, source: str, root: str | None = None) -> list[str]:
        collection = self._existing()
        if collection is None:
            return []
        where = _file_where(source, root)
        with self._chroma("read a file's chunk ids"):
            return list(collection.get(where=where, include=[])["ids"])

    def ids_for_root(self, root: str) -> list[str]:
        """Every chunk id ingested from the folder ``root`` (ingest's --verify compares them)."""
        collection = self._existing()
        if collection is None:
            return []
        with self._chroma("read a folder's chunk ids"):
            return list(collection.get(where={"root": root}, include=[])["ids"])

    def records(self, ids: Sequence[str]) -> list[tuple[str, str, dict[str, Any], np.ndarray]]:
        """(id, text, metadata, vector) of these chunk ids, in the order given; missing left out.

        Ingest re-points a renamed or copied file by rewriting these under new ids."""
        collection = self._existing()
        if collection is None or not ids:
            return []
        found: dict[str, tuple[str, str, dict[str, Any], np.ndarray]] = {}
        ids = list(ids)
        for start in range(0, len(ids), self._max_batch):
            with self._chroma("read chunks"):
                got = collection.get(ids=ids[start : start + self._max_batch],
                                     include=["documents", "metadatas", "embeddings"])
            for cid, doc, meta, vec in zip(got["ids"], got["documents"], got["metadatas"],
                                           got["embeddings"], strict=True):
                found[cid] = (cid, doc or "", dict(meta or {}), np.asarray(vec, dtype=np.float32))
        return [found[i] for i in ids if i in found]

    def vectors_for_chunk_hashes(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors already stored for chunks with these texts, so they are not embedded again."""
        collection = self._existing()
        found: dict[str, np.ndarray] = {}
        if collection is None or not hashes:
            return found
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            with self._chroma("read stored vectors"):
                got = collection.get(
                    where={"chunk_hash": {"$in": part}}, include=["metadatas", "embeddings"]
                )
            for meta, vec in zip(got["metadatas"], got["embeddings"], strict=True):
                found.setdefault(str(meta["chunk_hash"]), np.asarray(vec, dtype=np.float32))
        return found

    def all_ids(self, page_size: int = 100_000) -> list[str]:
        """The id of every chunk (no texts read: ~25 ms for 16,000 chunks)."""
        collection = self._existing()
        ids: list[str] = []
        while collection is not None:
            with self._chroma("list the chunks"):
                got = collection.get(include=[], limit=page_size, offset=len(ids))["ids"]
            if not got:
                break
            ids.extend(got)
        return ids

    def read_chunks(self, ids: Sequence[str]) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(id, text, metadata) of these chunk ids; missing ones left out."""
        collection = self._existing()
        if collection is None:
            return
        ids = list(ids)
        for start in range(0, len(ids), self._max_batch):
            with self._chroma("read chunks"):
                got = collection.get(ids=ids[start : start + self._max_batch],
                                     include=["documents", "metadatas"])
            for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"],
                                      strict=True):
                yield cid, doc or "", dict(meta or {})

    def iter_all(
        self, *, embeddings: bool = False, page_size: int = 2000
    ) -> Iterator[tuple[str, str, dict[str, Any], np.ndarray | None]]:
        """(id, text, metadata, vector) for every chunk, paged so memory stays bounded."""
        collection = self._existing()
        if collection is None:
            return
        include = ["documents", "metadatas"] + (["embeddings"] if embeddings else [])
        offset = 0
        while True:
            with self._chroma("read the chunks"):
                got = collection.get(include=include, limit=page_size, offset=offset)
            ids = got["ids"]
            if not ids:
                return
            vecs = got["embeddings"] if embeddings else [None] * len(ids)
            for i, cid in enumerate(ids):
                vec = None if vecs[i] is None else np.asarray(vecs[i], dtype=np.float32)
                yield cid, got["documents"][i] or "", dict(got["metadatas"][i] or {}), vec
            offset += len(ids)

    def chunks_of(self, source: str, root: str | None = None) -> list[RetrievedChunk]:
        """Every chunk of one file as the index holds it (text, page, heading), in file order."""
        collection = self._existing()
        if collection is None:
            return []
        where = _file_where(source, root)
        with self._chroma("read a file's chunks"):
            got = collection.get(where=where, include=["documents", "metadatas"])
        chunks = [_to_retrieved(cid, doc, meta, 0.0)
                  for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"],
                                            strict=True)]
        return sorted(chunks, key=lambda c: c.chunk_index)

    def get(self, ids: Sequence[str]) -> list[RetrievedChunk]:
        collection = self._existing()
        if collection is None or not ids:
            return []
        with self._chroma("read chunks"):
            got = collection.get(ids=list(ids), include=["documents", "metadatas"])
        by_id = {
            cid: _to_retrieved(cid, doc, meta, 0.0)
            for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        }
        return [by_id[i] for i in ids if i in by_id]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these chunk ids (for MMR and cosine scores of lexical hits)."""
        collection = self._existing()
        if collection is None or not ids:
            return {}
        with self._chroma("read vectors"):
            got = collection.get(ids=list(ids), include=["embeddings"])
        return {
            cid: np.asarray(vec, dtype=np.float32)
            for cid, vec in zip(got["ids"], got["embeddings"], strict=True)
        }

    def nearest(self, vector: np.ndarray, k: int, where: Where | None = None) -> list[tuple[str, float]]:
        """(id, cosine similarity) of the nearest chunks, best first, without their texts.

        For candidate lists (hybrid fusion): reading texts and metadata of 100 hits costs
        ten times the search itself at 100k chunks; ``get`` fetches the few that are kept."""
        got = self._search(vector, k, where, ["distances"])
        if got is None:
            return []
        return [(cid, 1.0 - float(d)) for cid, d in zip(got["ids"][0], got["distances"][0],
                                                        strict=True)]

    def query(self, vector: np.ndarray, k: int, where: Where | None = None) -> list[RetrievedChunk]:
        """Nearest chunks by cosine similarity, best first."""
        got = self._search(vector, k, where, ["documents", "metadatas", "distances"])
        if got is None:
            return []
        return [
            _to_retrieved(cid, doc, meta, 1.0 - float(dist))
            for cid, doc, meta, dist in zip(
                got["ids"][0],
                got["documents"][0],
                got["metadatas"][0],
                got["distances"][0],
                strict=True,
            )
        ]

    def _search(self, vector: np.ndarray, k: int, where: Where | None,
                include: list[str]) -> Any:
        """Chroma's answer for the ``k`` nearest chunks, or ``None`` when ``k`` asks for none."""
        collection = self._require()
        if k <= 0:
            return None
        try:
            # no count() first: Chroma returns fewer than n_results when it has fewer, and a
            # count scans the collection (about 20 ms at 100k chunks, plus a round trip to a
            # server)
            return collection.query(
                query_embeddings=[np.asarray(vector, dtype=np.float32)],
                n_results=k,
                where=dict(where) if where else None,
                include=include,
            )
        except Exception as exc:
            raise self._error(exc, "search") from exc

    # --- failures ------------------------------------------------------------------------

    @contextmanager
    def _chroma(self, doing: str) -> Iterator[None]:
        """Chroma's own exceptions, as a ``StoreError`` that says what to do."""
        try:
            yield
        except RagError:
            raise
        except Exception as exc:
            raise self._error(exc, doing) from exc

    def _error(self, exc: Exception, doing: str) -> StoreError:
        return store_error(exc, doing, self.local_path)

    def probe(self) -> None:
        """Read the collection the way a search does (count, a stored vector, a nearest-neighbour
        query); a damaged store raises ``StoreError`` here instead of in a user's search."""
        collection = self._existing()
        if collection is None:
            return
        with self._chroma("read the collection"):
            n = int(collection.count())
            if not n:
                return
            got = collection.get(limit=1, include=["embeddings"])
            vector = np.asarray(got["embeddings"][0], dtype=np.float32)
            collection.query(query_embeddings=[vector], n_results=min(n, 100),
                             include=["distances"])

    def drop(self, doing: str = "delete the damaged collection") -> None:
        """Delete the collection, chunks and all (``--verify`` rebuilds a damaged one; `rag
        collections delete` removes a knowledge base)."""
        with self._chroma(doing):
            self._client.delete_collection(self.collection_name)
        self._collection = None


def _to_retrieved(cid: str, doc: str | None, meta: Mapping[str, Any] | None, score: float) -> RetrievedChunk:
    meta = meta or {}
    page = meta.get("page")
    return RetrievedChunk(
        id=cid,
        text=doc or "",
        source=str(meta.get("source", "")),
        page=int(page) if page is not None else None,
        heading=str(meta.get("heading", "")),
        score=score,
        chunk_index=int(meta.get("chunk_index", 0)),
        root=str(meta.get("root", "")),
    )


def _file_where(source: str, root: str | None) -> dict[str, Any]:
    """Chroma's filter for one file's chunks (in the folder ``root`` when given)."""
    if root is None:
        return {"source": source}
    return {"$and": [{"source": source}, {"root": root}]}
