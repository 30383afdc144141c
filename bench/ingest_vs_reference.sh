#!/usr/bin/env bash
# Ours, the reference pipeline, ours again: one session on one corpus (docs/performance.md);
# then bench/noop.py (an unchanged `rag ingest` and `rag status` as whole processes).
#
#     bash bench/ingest_vs_reference.sh [CORPUS] [OUT_DIR]      # or: make bench-ingest
#
# The reference (../shared/bench/reference_ingest.py) runs in .venv-ref (`make
# bench-reference`). This VM's speed drifts by up to 30% over a day, so only runs of one
# session are compared: our run before and after the reference bracket it. Each run's JSON
# is kept in OUT_DIR with the load average before and after it; the last lines give the
# ratio of pages/s on this machine, its CPU flags and the load. NOOP=0 leaves out noop.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
CORPUS=${1:-../shared/data/docugami}
OUT=${2:-$(mktemp -d -t rag-ingest-vs-reference-XXXX)}
mkdir -p "$OUT"
REF_PY=${REF_PYTHON:-.venv-ref/bin/python}
test -x "$REF_PY" || { echo "error: $REF_PY missing: run \`make bench-reference\` first" >&2; exit 1; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "ours (1/2) ..." >&2
load > "$OUT/ours-before.load"
.venv/bin/python bench/ingest.py "$CORPUS" --rerun --json > "$OUT/ours-before.json"
load >> "$OUT/ours-before.load"
echo "reference ..." >&2
PERSIST=$(mktemp -d)
load > "$OUT/reference.load"
"$REF_PY" ../shared/bench/reference_ingest.py "$CORPUS" --persist "$PERSIST" \
    > "$OUT/reference.json" 2> "$OUT/reference.log"
load >> "$OUT/reference.load"
rm -rf "$PERSIST"
echo "ours (2/2) ..." >&2
load > "$OUT/ours-after.load"
.venv/bin/python bench/ingest.py "$CORPUS" --json > "$OUT/ours-after.json"
load >> "$OUT/ours-after.load"

.venv/bin/python - "$OUT" <<'PY'
import json, re, sys
from pathlib import Path
out = Path(sys.argv[1])
def loads(name):
    before, after = (out / f"{name}.load").read_text().split("\n")[:2]
    return f"load {before} -> {after}"
ref = json.loads((out / "reference.json").read_text())
print(f"reference     {ref['pages']} pages in {ref['seconds']['total']} s = "
      f"{ref['pages_per_s']} pages/s ({loads('reference')})")
ratios = []
for name in ("ours-before", "ours-after"):
    run = json.loads((out / f"{name}.json").read_text())
    ratio = run["pages_per_s"] / ref["pages_per_s"]
    ratios.append(ratio)
    print(f"{name:<13} {run['pages']} pages in {run['seconds']['total']} s = "
          f"{run['pages_per_s']} pages/s = {ratio:.2f}x ({loads(name)}; embed "
          f"{run['seconds']['embed']} s, {run['embedded']} chunks embedded)")
flags = re.findall(r"^flags\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), re.M)
wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8", "amx_bf16")
have = [f for f in wanted if flags and f in flags[0].split()]
print(f"ingest ratio  {ratios[0]:.2f}x before, {ratios[1]:.2f}x after the reference "
      f"(pages/s; lower: {min(ratios):.2f}x) on {run['machine']['cpu']}, {run['machine']['cores']} cores, "
      f"CPU flags: {' '.join(have) or 'none of ' + ' '.join(wanted)}")
print(f"JSON in {out}")
PY

if [ "${NOOP:-1}" != 0 ] && [ -f bench/noop.py ]; then
    echo "noop (unchanged rag ingest, rag status) ..." >&2
    .venv/bin/python bench/noop.py | tee "$OUT/noop.txt"
fi
