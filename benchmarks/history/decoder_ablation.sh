#!/usr/bin/env bash
# What the `light` decoder costs in accuracy against `mirror` (issue "Scale", step 2), at a CPU scale: CIFAR-10,
# resnet18 (a timm CNN, so `mirror` rebuilds its BasicBlocks) at 32 px, 4000 labels, 500 iterations, the
# official λ, validation and test. The labeled-only baseline has no decoder: one run serves both.
# Finished runs are skipped and interrupted ones resume. RESULTS.md renders "Decoder options".
set -euo pipefail
cd "$(dirname "$0")/../.."
OFF=(--set loss.lambda_rec=0.25 --set loss.lambda_rec_inter=0.5 --set loss.detach_intermediate_targets=true)
C=(--backbone resnet18 --val-size 5000 --labels 4000 --iterations 500 --seeds 0 "$@")
python benchmarks/ablation.py "${C[@]}" --tag decoder-mirror --presets classification full "${OFF[@]}" --set model.decoder=mirror
python benchmarks/ablation.py "${C[@]}" --tag decoder-light --presets full "${OFF[@]}" --set model.decoder=light
python benchmarks/render_results.py
