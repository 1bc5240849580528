#!/usr/bin/env bash
# The fast path's device check, ~5 minutes on one CUDA GPU: the CUDA tests, then one JSON of
# benchmarks (scripts/bench_gpu.py) on stdout. Random weights; nothing is downloaded.
#   scripts/gpu_check.sh              # on a GPU machine, from the repository root
#   scripts/gpu_check.sh --cpu-smoke  # anywhere: the reduced CPU run (tiny sizes, no compile)
# Partial results are kept in ${GPU_CHECK_OUT:-gpu_check.json} after each section, should the time run out.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4} MUJOCO_GL=${MUJOCO_GL:-egl} S2ROBOT_OFFLINE=1
if [ "${1:-}" != "--cpu-smoke" ]; then
  # the CUDA-only tests (bf16 + compile + CUDA graphs against fp32 eager) and the compiled CPU one
  timeout 120 "$PY" -m pytest tests/encoders/test_fast.py -q -k "cuda or compiled" -p no:cacheprovider >&2
fi
timeout 300 "$PY" scripts/bench_gpu.py --out "${GPU_CHECK_OUT:-gpu_check.json}" "$@"
