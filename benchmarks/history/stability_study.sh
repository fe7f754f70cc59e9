#!/usr/bin/env bash
# Why stability hurts at the CPU budget (issue "Accuracy", step 4): CIFAR-10, 4000 labels, 1000 iterations,
# quarter-width ConvLarge, the official weights (λ_rec 0.25, λ_rec_inter 0.5, detached targets), validation only.
# 1. the faithful protocol (hybridwrap 0.2 defaults: 4 px translation at 32 px, EMA 0.97, true-mirror decoders,
#    stage pairs) for classification and classification + stability: does the sign of stability − classification
#    change against the `official` runs of the main table (2 px, EMA 0.99)?
# 2. one knob at a time around it, on classification + stability (and on classification too where the knob
#    changes it: translation, input noise): translation 2 px, Gaussian input noise off, EMA 0.99 / 0.999,
#    λ_s ramp-up 500 steps instead of 200, Mean Teacher's two heads with the logit distance.
# Finished runs are skipped and interrupted ones resume: run it again to complete it. RESULTS.md renders
# whatever exists ("Stability under the faithful protocol"). The 2026-11-28 session ran all of it (about
# 40 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
OFF=(--set loss.lambda_rec=0.25 --set loss.lambda_rec_inter=0.5 --set loss.detach_intermediate_targets=true)
C=(--width 0.25 --val-size 5000 --labels 4000 --iterations 1000 --seeds 0)
CS=(classification_stability)
BOTH=(classification classification_stability)
python benchmarks/ablation.py "${C[@]}" --tag stability-faithful --presets "${BOTH[@]}" "${OFF[@]}"
python benchmarks/ablation.py "${C[@]}" --tag stability-translate2 --presets "${BOTH[@]}" "${OFF[@]}" --set data.translate=2
python benchmarks/ablation.py "${C[@]}" --tag stability-ema0.99 --presets "${CS[@]}" "${OFF[@]}" --set loss.ema_decay=0.99
python benchmarks/ablation.py "${C[@]}" --tag stability-logitdist --presets "${CS[@]}" "${OFF[@]}" --set model.stability_head=true
python benchmarks/ablation.py "${C[@]}" --tag stability-noise0 --presets "${BOTH[@]}" "${OFF[@]}" --set "model.backbone_kwargs={width: 0.25, noise_std: 0.0}"
python benchmarks/ablation.py "${C[@]}" --tag stability-rampup500 --presets "${CS[@]}" "${OFF[@]}" --rampup 500
python benchmarks/ablation.py "${C[@]}" --tag stability-ema0.999 --presets "${CS[@]}" "${OFF[@]}" --set loss.ema_decay=0.999
python benchmarks/render_results.py
