#!/usr/bin/env bash
# Ours, the reference pipeline, ours again: one session on one corpus (docs/performance.md).
#
#     bash bench/ingest_vs_reference.sh [CORPUS] [OUT_DIR]      # or: make bench-ingest
#
# The reference (../shared/bench/reference_ingest.py) runs in .venv-ref (`make
# bench-reference`). This VM's speed drifts by up to 30% over a day, so only runs of one
# session are compared: our run before and after the reference bracket it. Each run's JSON
# is kept in OUT_DIR; the last lines compare pages/s.
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${1:-../shared/data/docugami}
OUT=${2:-$(mktemp -d -t rag-ingest-vs-reference-XXXX)}
mkdir -p "$OUT"
REF_PY=${REF_PYTHON:-.venv-ref/bin/python}
test -x "$REF_PY" || { echo "error: $REF_PY missing: run \`make bench-reference\` first" >&2; exit 1; }

echo "ours (1/2) ..." >&2
.venv/bin/python bench/ingest.py "$CORPUS" --rerun --json > "$OUT/ours-before.json"
echo "reference ..." >&2
PERSIST=$(mktemp -d)
"$REF_PY" ../shared/bench/reference_ingest.py "$CORPUS" --persist "$PERSIST" \
    > "$OUT/reference.json" 2> "$OUT/reference.log"
rm -rf "$PERSIST"
echo "ours (2/2) ..." >&2
.venv/bin/python bench/ingest.py "$CORPUS" --json > "$OUT/ours-after.json"

.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
ref = json.loads((out / "reference.json").read_text())
print(f"reference     {ref['pages']} pages in {ref['seconds']['total']} s = {ref['pages_per_s']} pages/s")
for name in ("ours-before", "ours-after"):
    run = json.loads((out / f"{name}.json").read_text())
    print(f"{name:<13} {run['pages']} pages in {run['seconds']['total']} s = "
          f"{run['pages_per_s']} pages/s = {run['pages_per_s'] / ref['pages_per_s']:.2f}x")
print(f"JSON in {out}")
PY
