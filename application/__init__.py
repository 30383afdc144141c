"""The application layer: the composition root (factory), the command line, evaluation,
status and what the UI shows of files (page images, the explorer's data). Imports the core
(``rag``) and ``ingest``; only ``ui`` imports it."""
