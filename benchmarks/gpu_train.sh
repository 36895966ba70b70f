#!/usr/bin/env bash
# One-shot GPU run of issue 15: train BaMBNet deblur + the DefocusGAN generator (DSLR colour
# synthetic corpus, scenes rendered on the GPU), score both on the real data, and compare
# `dpdeblur run --device cuda` (fp32, fp16) with the CPU output on examples/. ~10 minutes on one
# H200. Everything lands under $OUT (summary.json first); see benchmarks/gpu_train.py.
#
#   OUT=/tmp/gpu bash benchmarks/gpu_train.sh              # the real run (needs CUDA)
#   SMOKE=1 OUT=/tmp/smoke bash benchmarks/gpu_train.sh    # CPU smoke test, seconds (CI)
#
# Knobs: BUDGET (s of training per network, default 210), CONFIG (paper | small), CROP, BATCH,
# PRECISION (bf16 | fp32), DEVICE (cuda), DPDEBLUR_SHARED (real data; shared/ travels along),
# PHOTOS (default debian; or a folder, e.g. a downscaled copy carried with the tree where the
# machine has no package mirror: `python benchmarks/gpu_train.py --pack-photos photos_pack` writes
# 8.5 MB of 1600 px JPEGs to carry; none = no photos).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the output folder}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # dpcli from this tree, installed or not
PHOTOS=${PHOTOS:-debian}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
if [[ -z "${DPDEBLUR_SHARED:-}" && -d shared/data ]]; then export DPDEBLUR_SHARED=$PWD/shared; fi
if [[ -z "${DPDEBLUR_SHARED:-}" && -d ../shared/data ]]; then export DPDEBLUR_SHARED=$(cd ../shared && pwd); fi

if [[ "${SMOKE:-0}" == 1 ]]; then
  exec python benchmarks/gpu_train.py --smoke --out "$OUT" --photos "$PHOTOS"
fi
python -c "import dpcli.cli, skimage" 2>"$OUT/import_error.txt" \
  || { echo "error: dpdeblur's dependencies are missing here (see $OUT/import_error.txt)"; exit 2; }

{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | head -3
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
} | tee "$OUT/env.txt"

# Natural photos (docs/training.md): installed here if missing; without them the corpus falls
# back to the bundled photos + procedural textures, and summary.json says so ("photos": false).
PHOTO_PKGS="lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 mate-backgrounds"
if [[ "$PHOTOS" == debian ]] && ! dpkg -s $PHOTO_PKGS >/dev/null 2>&1; then
  echo "installing the photo packages: $PHOTO_PKGS" | tee -a "$OUT/env.txt"
  if ! timeout 120 apt-get install -y --no-install-recommends $PHOTO_PKGS >"$OUT/apt.log" 2>&1; then
    echo "WARNING: could not install $PHOTO_PKGS (see apt.log); training without the Debian photos" \
      | tee -a "$OUT/env.txt"
  fi
fi

timeout 580 python benchmarks/gpu_train.py --out "$OUT" --device "${DEVICE:-cuda}" \
  --config "${CONFIG:-paper}" --crop "${CROP:-384}" --batch "${BATCH:-8}" \
  --precision "${PRECISION:-bf16}" --budget "${BUDGET:-210}" --photos "$PHOTOS" 2>&1 | tee "$OUT/gpu_train.log"
