"""The app's exceptions. Each message says what went wrong and what to do next.

    RagError
    ├── ConfigError            invalid setting
    ├── EmbedderMismatchError  collection was built with another embedding model
    ├── StoreError             Chroma unreachable or failing
    │   └── DiskFullError      a write failed (or would) for want of disk space
    ├── IngestError            a folder or file cannot be ingested
    │   └── LoaderError        one file cannot be read (the run goes on)
    ├── IngestLockedError      another ingest holds the data directory
    └── LLMError               the language model cannot answer
        ├── LLMUnavailableError    server not reachable
        └── ModelNotFoundError     model not pulled / file missing

Third-party exceptions are translated at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class: ``str(err)`` is a one-line message meant for the user."""


class ConfigError(RagError):
    pass


class EmbedderMismatchError(RagError):
    pass


class StoreError(RagError):
    pass


class DiskFullError(StoreError):
    """The disk holding the data directory is full; the message says how much to free."""


class IngestError(RagError):
    pass


class LoaderError(IngestError):
    """One file cannot be read; the reason is short and shown in the summary."""


class IngestLockedError(IngestError):
    pass


class LLMError(RagError):
    pass


class LLMUnavailableError(LLMError):
    pass


class ModelNotFoundError(LLMError):
    pass
