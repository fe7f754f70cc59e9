#!/usr/bin/env bash
# One prepared GPU check for a lent H100/H200 (well under 10 minutes): full-width ConvLarge, CIFAR-10,
# 4000 labels, presets `classification_stability` and `full`, as many iterations as fit, same JSON
# results as the CPU ablation (benchmarks/results/ablation-gpu-*.json), then a short table.
#
# The data must travel with the working tree (the device tool carries at most 64 MiB, and ../shared does
# not travel). Here, once:
#   python benchmarks/make_gpu_subset.py ../shared/data/cifar10.npz .gpu_data/cifar10-subset.npz
# then run with the device tool: command "bash benchmarks/gpu_check.sh", carry [".gpu_data"].
# Never part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${HYBRIDWRAP_CIFAR10_NPZ:-.gpu_data/cifar10-subset.npz}
ITERS=${ITERS:-3000}
python -m pip install -q --no-deps -e . >/dev/null 2>&1 || python -m pip install -q -e .
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
for preset in classification_stability full; do
  PYTHONUNBUFFERED=1 python benchmarks/ablation.py --data "$DATA" --presets "$preset" --seeds 0 --width 1.0 \
    --iterations "$ITERS" --labels 4000 --val-size 2000 --eval-every 500 --tag gpu --precision bf16
done
[ -n "${OUT:-}" ] && cp benchmarks/results/ablation-gpu-*.json "$OUT"/ 2>/dev/null || true
python benchmarks/render_results.py --print gpu
