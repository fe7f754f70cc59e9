#!/usr/bin/env bash
# The prepared GPU check, for a lent H100/H200 (one call, under 10 minutes): does reconstruction add to Mean
# Teacher at a GPU budget? Table 1's four presets with full-width ConvLarge on CIFAR-10, 4000 labels, ITERS
# iterations each, one after another: classification_stability and full first (the pair the question turns on),
# then autoencoder_stability and classification. Each writes the CPU ablation's JSON
# (benchmarks/results/ablation-gpu-*.json), copied to $OUT as soon as it is written, so that a call cut off by its
# time limit still brings back the presets that finished; the table of all of them comes last.
#
# ITERS defaults to 1500 per preset: no GPU step of this project has been timed yet, so that is a guess that leaves
# room (the first call's JSON gives the seconds of each preset; size the next call's ITERS from them).
#
# The data must travel with the working tree (the device tool carries at most 64 MiB, and ../shared does not
# travel). Here, once:
#   python benchmarks/make_gpu_subset.py ../shared/data/cifar10.npz .gpu_data/cifar10-subset.npz
# then one command with the device tool: "bash benchmarks/gpu_check.sh", carrying [".gpu_data"].
# DRY_RUN=1 runs every step on a CPU in seconds (a tiny network, a few steps and images, fp32): the tests do.
# Never part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${HYBRIDWRAP_CIFAR10_NPZ:-.gpu_data/cifar10-subset.npz}
PRESETS=${PRESETS:-classification_stability full autoencoder_stability classification}
RESULTS=${RESULTS_DIR:-benchmarks/results}
RUNS=${RUNS_DIR:-benchmarks/runs}
if [ "${DRY_RUN:-0}" = 1 ]; then
  TAG=gpu-dry
  ITERS=${ITERS:-4}
  ARGS=(--width 0.125 --labels 20 --val-size 20 --eval-every 2 --precision no --limit-images 200)
else
  TAG=gpu
  ITERS=${ITERS:-1500}
  ARGS=(--width 1.0 --labels 4000 --val-size 2000 --eval-every 500 --precision bf16)
  python -m pip install -q --no-deps -e . >/dev/null 2>&1 || python -m pip install -q -e .
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
fi
for preset in $PRESETS; do
  PYTHONUNBUFFERED=1 python benchmarks/ablation.py --data "$DATA" --presets "$preset" --seeds 0 \
    --iterations "$ITERS" --tag "$TAG" --results-dir "$RESULTS" --runs-dir "$RUNS" "${ARGS[@]}"
  if [ -n "${OUT:-}" ]; then cp "$RESULTS"/ablation-"$TAG"-*.json "$OUT"/; fi
done
python benchmarks/render_results.py --results-dir "$RESULTS" --print "$TAG"
