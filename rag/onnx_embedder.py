"""ONNX Runtime embedder: the configured sentence-transformers model, exported once and
quantised to int8 (dynamic, per-channel, MatMul weights), run on the CPU.

The export is the whole sentence-transformers pipeline (transformer, pooling, normalisation)
traced with ``torch.onnx``, so pooling is exactly the model's own. It is cached under
``<data dir>/models/<key>/`` (``model.onnx`` fp32, the tokenizer and ``meta.json``; this
backend's ``model-int8.onnx`` is quantised from it when the backend is first used, so the
OpenVINO default never makes it); later runs load it without importing torch. Vectors agree with the torch
embedder to a cosine of about 0.99, so both report the same ``model_id`` and a collection built
with one can be searched with the other.

Why faster than torch on a CPU: onnxruntime's int8 matrix multiply is several times faster
than torch's fp32 one here, and texts are batched by token length, so little work is padding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.embeddings import (
    SeparateCounter,
    _canonical_id,
    prefixes_for,
    resolve_model_path,
    token_counter,
)
from rag.errors import ConfigError
from rag.privacy import library_defaults

library_defaults()  # ORT_DISABLE_TELEMETRY before onnxruntime is first imported

log = logging.getLogger(__name__)

# Bump when the exported graph or the quantisation changes: old caches are then not reused.
EXPORT_FORMAT = "st-onnx-v2"  # v2: eager attention (see _export)
FP32_FILE = "model.onnx"
INT8_FILE = "model-int8.onnx"
META_FILE = "meta.json"
_OPSET = 17
# Texts of every length the probe uses to check that the traced graph has no baked-in shape.
_PROBE_TEXTS = [
    "hello",
    "Retrieval-augmented generation answers questions from your own documents.",
    "HNSW builds a layered proximity graph; ef_search sets how many candidates a query "
    "keeps, trading recall for latency. " * 6,
]


def available_cpus() -> int:
    """Cores this process may run on (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def model_cache_key(model_name: str) -> str:
    """A key that changes when the model's files do: their names, sizes and mtimes.

    A hub id that is not a local folder is keyed by its name (delete the cache folder to
    re-export after the hub model changed).
    """
    digest = hashlib.sha256(EXPORT_FORMAT.encode())
    source = Path(resolve_model_path(model_name))
    if source.is_dir():
        digest.update(str(source.resolve()).encode())
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            stat = path.stat()
            digest.update(f"{path.relative_to(source)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    else:
        digest.update(model_name.strip().encode())
    return digest.hexdigest()[:16]


class OnnxEmbedder:
    """Embedder protocol over an int8 ONNX export of a sentence-transformers model."""

    def __init__(
        self,
        model_name: str,
        cache_root: Path,
        *,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        self.model_name = model_name
        self.cache_dir = cache_root / model_cache_key(model_name)
        self.batch_size = batch_size
        self.threads = threads or available_cpus()
        started = time.perf_counter()
        exported = not _is_exported(self.cache_dir)
        meta = ensure_export(model_name, self.cache_dir)
        # Seconds this process spent exporting the model to ONNX (a first run), else None.
        self.export_seconds: float | None = (time.perf_counter() - started if exported
                                             else None)
        self.model_id = _canonical_id(model_name)
        self.dimension = int(meta["dimension"])
        self.max_tokens = int(meta["max_tokens"])
        self._input_names: list[str] = list(meta["input_names"])
        self._query_prefix, self._passage_prefix = prefixes_for(model_name)
        self._tokenizer = _load_tokenizer(self.cache_dir)
        self._pad_id = int(self._tokenizer.pad_token_id or 0)
        self._count = token_counter(self._tokenizer)
        # Ingest embeds in a background thread while it counts tokens in its own: a counter
        # that uses this tokenizer waits while a batch is tokenized (see SeparateCounter).
        self._lock = threading.Lock()
        self._count_locks = not isinstance(self._count, SeparateCounter)
        self._infer = self._open_runner()
        self.documents_embedded = 0  # counts texts embedded, for benchmarks and tests

    def _open_runner(self) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
        """A function from the model's inputs (int64 arrays) to its sentence embeddings."""
        started = time.perf_counter()
        if ensure_int8(self.cache_dir):  # first use of this backend with this export
            self.export_seconds = (self.export_seconds or 0.0) + time.perf_counter() - started
        session = _open_session(self.cache_dir / INT8_FILE, self.threads)
        return lambda feeds: session.run(None, feeds)[0]

    @property
    def model_path(self) -> Path:
        return self.cache_dir / INT8_FILE

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    def count_tokens(self, text: str) -> int:
        """Tokens including the special tokens the model adds (same tokenizer as torch)."""
        if self._count_locks:
            with self._lock:
                return int(self._count(text))
        return int(self._count(text))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._embed([self._passage_prefix + t for t in texts])
        self.documents_embedded += len(texts)
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed([self._query_prefix + text])[0]

    def _embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            encoded = self._tokenizer(
                texts, add_special_tokens=True, truncation=True, max_length=self.max_tokens
            )
        ids: list[list[int]] = encoded["input_ids"]
        # Sort by token count so each batch pads to a length close to its members'.
        order = np.argsort(np.fromiter((len(x) for x in ids), dtype=np.int64), kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        batches: list[np.ndarray] = []
        inputs: list[dict[str, np.ndarray]] = []
        rows = self._rows_per_batch()
        for start in range(0, len(order), rows):
            batch = order[start : start + rows]
            width = max(len(ids[i]) for i in batch)
            input_ids = np.full((len(batch), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                input_ids[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            feeds = {"input_ids": input_ids, "attention_mask": mask,
                     "token_type_ids": np.zeros_like(input_ids)}
            batches.append(batch)
            inputs.append({k: feeds[k] for k in self._input_names})
        for batch, result in zip(batches, self._infer_all(inputs), strict=True):
            out[batch] = result
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _rows_per_batch(self) -> int:
        return self.batch_size

    def _infer_all(self, inputs: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
        """The embeddings of each batch, in order (one after the other here)."""
        return [self._infer(feeds) for feeds in inputs]


def ensure_export(model_name: str, cache_dir: Path) -> dict[str, Any]:
    """The export's metadata; exports and quantises first when the cache has none.

    One process exports at a time (a file lock); files are written under temporary names and
    ``meta.json`` last, so a crash never leaves a cache that looks complete.
    """
    from filelock import FileLock

    meta_path = cache_dir / META_FILE
    if _is_exported(cache_dir):
        return dict(json.loads(meta_path.read_text()))
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_dir / "export.lock")):
        if _is_exported(cache_dir):
            return dict(json.loads(meta_path.read_text()))
        work = Path(tempfile.mkdtemp(prefix="export-", dir=cache_dir))
        try:
            meta = _export(model_name, work)
            for name in [*meta["tokenizer_files"], FP32_FILE]:
                os.replace(work / name, cache_dir / name)
            tmp_meta = work / META_FILE
            tmp_meta.write_text(json.dumps(meta, indent=1))
            os.replace(tmp_meta, meta_path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return meta


def _is_exported(cache_dir: Path) -> bool:
    return (cache_dir / META_FILE).is_file() and (cache_dir / FP32_FILE).is_file()


def ensure_int8(cache_dir: Path) -> bool:
    """onnxruntime's int8 model next to the export, quantised from its fp32 model when missing
    (about 3 s). True when this call made it. Locked and renamed into place like the export."""
    from filelock import FileLock

    target = cache_dir / INT8_FILE
    if target.is_file():
        return False
    with FileLock(str(cache_dir / "export.lock")):
        if target.is_file():
            return False
        work = Path(tempfile.mkdtemp(prefix="quantise-", dir=cache_dir))
        try:
            try:
                _quantize(cache_dir / FP32_FILE, work / INT8_FILE)
            except Exception as exc:
                raise ConfigError(
                    f"cannot quantise the ONNX export in {cache_dir} to int8 "
                    f"({exc.__class__.__name__}: {str(exc)[:300]}). Delete that folder to export "
                    "the model again, or set RAG_EMBEDDING_BACKEND=openvino or torch."
                ) from exc
            os.replace(work / INT8_FILE, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return True


def _export(model_name: str, work: Path) -> dict[str, Any]:
    """Trace the sentence-transformers model to ONNX (fp32) and check it."""
    started = time.perf_counter()
    try:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise ConfigError(
            f"exporting {model_name!r} to ONNX needs torch and sentence-transformers "
            f"({exc}). Install the project's dependencies, or set RAG_EMBEDDING_BACKEND=torch."
        ) from exc

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    path = resolve_model_path(model_name)
    try:
        st_model = SentenceTransformer(path, device="cpu")
    except Exception as exc:
        raise ConfigError(
            f"cannot load embedding model {model_name!r} for the ONNX export "
            f"({exc.__class__.__name__}: {exc}). Set RAG_EMBEDDING_MODEL to a local "
            "sentence-transformers folder or an installed model name."
        ) from exc
    st_model.eval()
    _use_eager_attention(st_model)
    tokenizer = st_model.tokenizer
    input_names = [n for n in ("input_ids", "attention_mask", "token_type_ids")
                   if n in tokenizer.model_input_names]
    max_tokens = int(st_model.max_seq_length or 512)
    dimension = int(st_model.get_embedding_dimension() or 0)

    class _SentenceEmbedding(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.inner(dict(zip(input_names, tensors, strict=True)))["sentence_embedding"]

    sample = tokenizer(_PROBE_TEXTS[:2], padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in input_names}
    try:
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings; the probe below checks the result
            torch.onnx.export(
                _SentenceEmbedding(st_model).eval(),
                tuple(sample[n] for n in input_names),
                str(work / FP32_FILE),
                dynamo=False,
                input_names=input_names,
                output_names=["sentence_embedding"],
                dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
                opset_version=_OPSET,
            )
    except Exception as exc:
        raise ConfigError(
            f"cannot export embedding model {model_name!r} to ONNX "
            f"({exc.__class__.__name__}: {str(exc)[:300]}). Set RAG_EMBEDDING_BACKEND=torch "
            "to use this model with PyTorch."
        ) from exc
    expected = st_model.encode(_PROBE_TEXTS, normalize_embeddings=True, convert_to_numpy=True,
                               show_progress_bar=False)
    _check_export(model_name, work / FP32_FILE, tokenizer, input_names, max_tokens, expected)
    tokenizer_files = [Path(f).name for f in tokenizer.save_pretrained(str(work))
                       if Path(f).is_file()]
    log.info("exported %s to ONNX in %.1f s", model_name, time.perf_counter() - started)
    return {
        "format": EXPORT_FORMAT,
        "model": model_name,
        "source": str(path),
        "dimension": dimension,
        "max_tokens": max_tokens,
        "input_names": input_names,
        "tokenizer_files": sorted(set(tokenizer_files)),
        "opset": _OPSET,
        "torch": torch.__version__,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _use_eager_attention(st_model: Any) -> None:
    """Trace the plain attention (softmax of QK^T plus the mask), not PyTorch's SDPA.

    The SDPA export guards every attention row with ``Where(IsNaN(softmax))`` (for rows that
    are fully masked), which costs a quarter of the int8 model's time on 256-token batches;
    eager attention has no such guard and makes the int8 model about 1.3x faster here
    (bench/ingest.py, docs/performance.md). Models whose attention cannot switch keep SDPA.
    """
    for module in st_model.modules():
        switch = getattr(module, "set_attn_implementation", None)
        if callable(switch):
            try:
                switch("eager")
            except Exception as exc:  # an architecture without the eager path
                log.info("keeping the default attention for the ONNX export: %s", exc)
            return


def _quantize(fp32: Path, int8: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel int8 weights of the MatMuls only: cosine to fp32 ~0.995. The default (per
    # tensor, embeddings' Gather included) drops it to ~0.93, which costs retrieval quality.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs every tensor on the root logger
    try:
        quantize_dynamic(
            str(fp32), str(int8), weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"], per_channel=True,
        )
    finally:
        root.setLevel(level)


def _check_export(
    model_name: str,
    fp32: Path,
    tokenizer: Any,
    input_names: list[str],
    max_tokens: int,
    expected: np.ndarray,
) -> None:
    """The traced graph must reproduce the torch model on inputs of other shapes."""
    session = _open_session(fp32, available_cpus())
    enc = tokenizer(_PROBE_TEXTS, padding=True, truncation=True, max_length=max_tokens,
                    return_tensors="np")
    got = session.run(None, {n: enc[n].astype(np.int64) for n in input_names})[0]
    got = got / np.maximum(np.linalg.norm(got, axis=1, keepdims=True), 1e-12)
    cosine = float((got * expected).sum(axis=1).min())
    if cosine < 0.999:
        raise ConfigError(
            f"the ONNX export of {model_name!r} does not reproduce the model (cosine "
            f"{cosine:.4f} on a probe). Set RAG_EMBEDDING_BACKEND=torch for this model."
        )


def _load_tokenizer(cache_dir: Path) -> Any:
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    return AutoTokenizer.from_pretrained(str(cache_dir))


def _busy(threads: int) -> bool:
    """More runnable processes than cores over the last minute (Unix load average)."""
    try:
        return threads > 1 and os.getloadavg()[0] > available_cpus()
    except (AttributeError, OSError):  # no load average on this system
        return False


def _open_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    if os.environ.get("ORT_DISABLE_TELEMETRY", "1") not in ("0", "false", "False"):
        ort.disable_telemetry_events()  # besides the variable, for an onnxruntime that ignores it
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if _busy(threads):
        # Spin-waiting threads burn the time slices their partner needs on a machine busier
        # than its cores: without it, 11% less time at a load of 13-15 on 2 cores (on a quiet
        # machine spinning is 3% faster, so it stays on there). docs/performance.md.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ConfigError(
            f"cannot open the ONNX model {path} ({exc}). Delete {path.parent} to export it "
            "again, or set RAG_EMBEDDING_BACKEND=torch."
        ) from exc
