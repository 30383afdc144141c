"""OpenVINO embedder: the ONNX export of the model, quantised to int8 (weights and activations,
static scales from a calibration set) by NNCF and run by OpenVINO's CPU plugin.

Why: on the team's 2-core AVX-512 machine it embeds about 1.5x as many chunks a second as the
onnxruntime int8 model (dynamic quantisation), as close to the fp32 model (cosine to fp32 on
docugami chunks: mean 0.9945 against onnxruntime's 0.990; SciFact abstracts 0.997): the
activation scales are fixed once instead of measured on every MatMul, attention is fused, and
what is not int8 runs in bf16 where the CPU has it (AVX512_BF16), else fp32.
docs/performance.md gives the figures.

The quantised model is made once, next to the ONNX export (``model-ov-int8-v1.xml`` and
``.bin`` in ``<data dir>/models/<key>/``), from the fp32 export and the passages of
``rag/calibration.txt`` (the project's own knowledge-base text plus table, contents-page and
form-header lines, so number-heavy chunks are in range). It reports the same ``model_id`` as
the other backends: a collection built with one is searched with another.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError
from rag.onnx_embedder import FP32_FILE, OnnxEmbedder
from rag.privacy import library_defaults

log = logging.getLogger(__name__)

# Bump when the quantisation changes: an older file is then not reused.
OV_FILE = "model-ov-int8-v1.xml"
CALIBRATION = Path(__file__).with_name("calibration.txt")
# Smallest mean cosine between the quantised and the fp32 model on the calibration passages
# (0.990 measured for all-MiniLM-L6-v2); below it the model is refused, not used.
_MIN_MEAN_COSINE = 0.97


class OpenVinoEmbedder(OnnxEmbedder):
    """Embedder protocol over an NNCF int8 model run by OpenVINO (CPU)."""

    @property
    def model_path(self) -> Path:
        return self.cache_dir / OV_FILE

    def _open_runner(self) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
        started = time.perf_counter()
        made = ensure_openvino(self.cache_dir, self._tokenizer, self._input_names,
                               self.max_tokens)
        if made:  # the ONNX export may have been made by this process too
            self.export_seconds = (self.export_seconds or 0.0) + time.perf_counter() - started
        ov = _import_openvino()
        path = self.cache_dir / OV_FILE
        core, model = _read(path)
        # A query or an evidence sentence: one request on all the cores (lowest latency).
        compiled = _compile(core, model, path, {"INFERENCE_NUM_THREADS": self.threads,
                                                "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()
        output = compiled.outputs[0]
        lock = threading.Lock()  # one infer request: ingest's thread and a query's may meet
        # Many batches (ingest): one stream of one thread per core, a batch in flight on each;
        # 10-15% more chunks a second than one request on all cores (docs/performance.md).
        self._streams = self.threads
        self._bulk = _compile(core, model, path, {"INFERENCE_NUM_THREADS": self.threads,
                                                  "NUM_STREAMS": self._streams,
                                                  "PERFORMANCE_HINT": "THROUGHPUT"})
        self._queue = ov.AsyncInferQueue(self._bulk, self._streams)
        self._queue_lock = threading.Lock()

        def infer(feeds: dict[str, np.ndarray]) -> np.ndarray:
            with lock:
                return np.array(request.infer(feeds)[output], dtype=np.float32, copy=True)

        return infer

    def _rows_per_batch(self) -> int:
        # batch_size chunks in flight at once, shared by the streams: 16 a request on 2 cores
        # embeds 4-7% more a second than 32 (docs/performance.md).
        return max(1, -(-self.batch_size // self._streams))

    def _infer_all(self, inputs: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
        if len(inputs) < 2 or self._streams < 2:
            return super()._infer_all(inputs)
        results: list[np.ndarray | None] = [None] * len(inputs)

        def done(request: Any, index: int) -> None:
            results[index] = np.array(request.get_output_tensor(0).data, dtype=np.float32,
                                      copy=True)

        with self._queue_lock:
            self._queue.set_callback(done)
            for index, feeds in enumerate(inputs):
                self._queue.start_async(feeds, index)
            self._queue.wait_all()
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            raise RuntimeError(f"OpenVINO returned no embedding for batches {missing}")
        return [r for r in results if r is not None]


def _import_openvino() -> Any:
    library_defaults()  # openvino_telemetry made unimportable first (rag/privacy.py)
    try:
        import openvino as ov
    except ImportError as exc:
        raise ConfigError(
            f"the openvino embedding backend needs the openvino package ({exc}). Install the "
            "project's dependencies, or set RAG_EMBEDDING_BACKEND=onnx."
        ) from exc
    return ov


def _cannot_open(path: Path, exc: Exception) -> ConfigError:
    return ConfigError(
        f"cannot open the OpenVINO model {path} ({exc.__class__.__name__}: "
        f"{str(exc)[:300]}). Delete {path} to make it again, or set "
        "RAG_EMBEDDING_BACKEND=onnx."
    )


def _read(path: Path) -> tuple[Any, Any]:
    """One OpenVINO core and the model read once, for both compiled forms."""
    ov = _import_openvino()
    try:
        core = ov.Core()
        return core, core.read_model(str(path))
    except Exception as exc:
        raise _cannot_open(path, exc) from exc


def _compile(core: Any, model: Any, path: Path, config: dict[str, Any]) -> Any:
    try:
        return core.compile_model(model, "CPU", config)
    except Exception as exc:
        raise _cannot_open(path, exc) from exc


def calibration_texts() -> list[str]:
    return [line for line in CALIBRATION.read_text(encoding="utf-8").splitlines() if line]


def ensure_openvino(cache_dir: Path, tokenizer: Any, input_names: list[str],
                    max_tokens: int) -> bool:
    """Make the int8 OpenVINO model from the fp32 ONNX export once; True when made now.

    One process at a time (a file lock); written under temporary names and renamed, the
    ``.xml`` last, so a crash never leaves a model that looks complete.
    """
    from filelock import FileLock

    target = cache_dir / OV_FILE
    if target.is_file() and target.with_suffix(".bin").is_file():
        return False
    with FileLock(str(cache_dir / "export.lock")):
        if target.is_file() and target.with_suffix(".bin").is_file():
            return False
        started = time.perf_counter()
        work = Path(tempfile.mkdtemp(prefix="openvino-", dir=cache_dir))
        try:
            _quantize(cache_dir / FP32_FILE, work / OV_FILE, tokenizer, input_names, max_tokens)
            os.replace(work / Path(OV_FILE).with_suffix(".bin"), target.with_suffix(".bin"))
            os.replace(work / OV_FILE, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log.info("quantised %s for OpenVINO in %.1f s", cache_dir.name,
                 time.perf_counter() - started)
    return True


def _quantize(fp32: Path, out: Path, tokenizer: Any, input_names: list[str],
              max_tokens: int) -> None:
    ov = _import_openvino()  # with openvino_telemetry unimportable, for NNCF too
    try:
        import nncf
    except ImportError as exc:
        raise ConfigError(
            f"quantising the embedding model for OpenVINO needs the nncf package ({exc}). "
            "Install the project's dependencies, or set RAG_EMBEDDING_BACKEND=onnx."
        ) from exc
    logging.getLogger("nncf").setLevel(logging.ERROR)

    items = [_feeds(tokenizer, [text], input_names, max_tokens) for text in calibration_texts()]
    core = ov.Core()
    model = core.read_model(str(fp32))
    try:
        # NNCF draws progress bars on stdout (rich), which would garble `rag`'s own output
        # and its --json: they are caught and dropped.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            quantized = _quantize_with(nncf, model, items)
    except Exception as exc:
        raise ConfigError(
            f"cannot quantise {fp32} for OpenVINO ({exc.__class__.__name__}: "
            f"{str(exc)[:300]}). Set RAG_EMBEDDING_BACKEND=onnx."
        ) from exc
    _check(core, model, quantized, items)
    ov.save_model(quantized, str(out))


def _quantize_with(nncf: Any, model: Any, items: list[dict[str, np.ndarray]]) -> Any:
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
    )

    return nncf.quantize(
        model,
        nncf.Dataset(items),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(items),
        # SmoothQuant 0.8, chosen on SciFact train (nDCG@10 0.748; without SmoothQuant
        # 0.7465, onnxruntime's int8 0.7441): mean cosine to fp32 0.9945 on docugami
        # chunks (0.9901 without), though a contents page of dot leaders falls to 0.92.
        advanced_parameters=AdvancedQuantizationParameters(
            smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=0.8)
        ),
    )


def _feeds(tokenizer: Any, texts: list[str], input_names: list[str],
           max_tokens: int) -> dict[str, np.ndarray]:
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_tokens,
                    return_tensors="np")
    feeds = {n: np.asarray(enc[n], dtype=np.int64) for n in input_names if n in enc}
    if "token_type_ids" in input_names and "token_type_ids" not in feeds:
        feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
    return feeds


def _check(core: Any, fp32_model: Any, int8_model: Any, items: list[dict[str, np.ndarray]]) -> None:
    """The quantised model must stay close to the fp32 one on the calibration passages."""
    reference = core.compile_model(fp32_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    quantized = core.compile_model(int8_model, "CPU")
    cosines = []
    for feeds in items[::4]:
        a = np.asarray(reference(feeds)[reference.outputs[0]], dtype=np.float64)[0]
        b = np.asarray(quantized(feeds)[quantized.outputs[0]], dtype=np.float64)[0]
        cosines.append(float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)))
    mean = float(np.mean(cosines))
    log.info("OpenVINO int8 against fp32: mean cosine %.4f, min %.4f", mean, min(cosines))
    if mean < _MIN_MEAN_COSINE:
        raise ConfigError(
            f"the int8 OpenVINO model strays from the fp32 model (mean cosine {mean:.3f} on "
            f"the calibration passages, under {_MIN_MEAN_COSINE}). Set "
            "RAG_EMBEDDING_BACKEND=onnx for this model."
        )
