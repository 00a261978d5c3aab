#!/usr/bin/env bash
# Benchmark 5 in one call: the GPU fast path against the reference-style loader.
#
# Needs python3 with torch and torchvision (plus numpy, pandas, pillow, tqdm, scipy,
# scikit-learn as on the H200 image); pytorch-metric-learning is installed from the
# wheel(s) in bench/gpu/wheels/ when it is missing. Make the wheel once, where pip works:
#     pip download pytorch-metric-learning==2.9.0 --no-deps -d bench/gpu/wheels
# With the device tool: run(command="bash bench/gpu/run_gpu_bench.sh", carry=["bench/gpu/wheels"],
# timeout_s=420); the JSON is written to $OUT/gpu_bench.json (and bench/results/ without $OUT).
# Extra arguments go to gpu_bench.py, e.g. `--cpu --tiny` to exercise it on a CPU, `--no-compile`.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import pytorch_metric_learning" 2>/dev/null; then
    shopt -s nullglob
    wheels=(bench/gpu/wheels/*.whl)
    if [ ${#wheels[@]} -eq 0 ]; then
        echo "pytorch-metric-learning is missing and bench/gpu/wheels/ holds no wheel; see the header of $0" >&2
        exit 2
    fi
    site=${TAN_BENCH_SITE:-/tmp/tan_bench_site}
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "${wheels[@]}"
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
missing=$("$PY" -c "
import importlib.util as u
mods = ['torch', 'torchvision', 'numpy', 'pandas', 'PIL', 'tqdm', 'sklearn', 'matplotlib', 'pytorch_metric_learning']
print(' '.join(m for m in mods if u.find_spec(m) is None))")
if [ -n "$missing" ]; then
    echo "missing Python modules: $missing (put their wheels into bench/gpu/wheels/)" >&2
    exit 2
fi
out=${OUT:-bench/results}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec "$PY" bench/gpu/gpu_bench.py --out "$out/gpu_bench.json" "$@"
