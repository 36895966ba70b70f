#!/usr/bin/env bash
# One prepared GPU check of every network family (issue 27): CUDA vs CPU parity (fp32, bf16/fp16
# drift), tiled vs full frame, seconds and peak memory at 1120x1680 and 24 MP, zero-shot stage 1
# on the GPU and 2 x BUDGET s of training throughput. Under 8 minutes on one H200; one JSON
# report, $OUT/gpu_check.json (written after every section). See benchmarks/gpu_check.py.
#
#   OUT=/tmp/gpu bash benchmarks/gpu_check.sh              # the real run (needs CUDA)
#   SMOKE=1 OUT=/tmp/smoke bash benchmarks/gpu_check.sh    # CPU smoke run, tiny sizes (CI)
#
# Knobs: BUDGET (training seconds per network, default 60), SECTIONS (parity,tiles,speed,zeroshot,train),
# DPDEBLUR_SHARED (reference weights and the Pixel 4 scene; shared/ travels along when present).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the output folder}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # dpcli from this tree, installed or not
if [[ -z "${DPDEBLUR_SHARED:-}" && -d shared/reference ]]; then export DPDEBLUR_SHARED=$PWD/shared; fi
if [[ -z "${DPDEBLUR_SHARED:-}" && -d ../shared/reference ]]; then export DPDEBLUR_SHARED=$(cd ../shared && pwd); fi
SECTIONS=${SECTIONS:-parity,tiles,speed,zeroshot,train}

if [[ "${SMOKE:-0}" == 1 ]]; then
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  exec python benchmarks/gpu_check.py --smoke --out "$OUT" --sections "$SECTIONS"
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | head -3
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
} | tee "$OUT/env.txt"
timeout 470 python benchmarks/gpu_check.py --out "$OUT" --sections "$SECTIONS" --budget "${BUDGET:-60}" 2>&1 \
  | tee "$OUT/gpu_check.log"
rc=${PIPESTATUS[0]}
[[ $rc == 124 ]] && echo "gpu_check: stopped at 470 s; $OUT/gpu_check.json holds the sections that finished"
exit "$rc"
