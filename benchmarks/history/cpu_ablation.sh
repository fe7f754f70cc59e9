#!/usr/bin/env bash
# The CPU ablation of benchmarks/RESULTS.md, as run on a 2-core machine (about 90 minutes).
# 1. choose the reconstruction weights on the validation split (full preset, seed 0, 500 iterations):
#    the paper's (every λ = 1) against the official code's (λ_rec 0.25, λ_rec_inter 0.5, detached targets);
# 2. train the six Table 1 presets with the chosen weights, 2 seeds, 1000 iterations.
set -euo pipefail
cd "$(dirname "$0")/../.."
COMMON=(--width 0.25 --labels 4000 --val-size 5000)
python benchmarks/ablation.py "${COMMON[@]}" --presets full --seeds 0 --iterations 500 --tag select-paper
python benchmarks/ablation.py "${COMMON[@]}" --presets full --seeds 0 --iterations 500 --tag select-official \
  --set loss.lambda_rec=0.25 --set loss.lambda_rec_inter=0.5 --set loss.detach_intermediate_targets=true
CHOICE=$(python benchmarks/render_results.py --select select-paper select-official)
echo "chosen on validation: $CHOICE"
if [ "$CHOICE" = "select-official" ]; then
  python benchmarks/ablation.py "${COMMON[@]}" --presets all --seeds 0 1 --iterations 1000 --tag official \
    --set loss.lambda_rec=0.25 --set loss.lambda_rec_inter=0.5 --set loss.detach_intermediate_targets=true
else
  python benchmarks/ablation.py "${COMMON[@]}" --presets all --seeds 0 1 --iterations 1000 --tag paper
fi
python benchmarks/render_results.py
