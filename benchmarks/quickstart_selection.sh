#!/usr/bin/env bash
# How the README's first command (configs/quickstart.yaml) got its settings: `hybridwrap tune` on the embedded
# digits, on 288 validation images held out of the training set (the test set is never loaded), 2 seeds per
# setting, successive halving at half the steps.
# - HybridNet (full): the paper's grid λ_rec x λ_rec_inter in {0.25, 0.5, 1.0}^2 at the paper's Adam lr 3e-3;
# - the labeled-only baseline, with the same budget (9 settings x 2 seeds): lr {1e-3, 3e-3, 1e-2} x
#   weight decay {0, 1e-4, 1e-3};
# for three budgets: 100 labels (10 per class) and 50 labels (5 per class) at 200 steps (fp32), and 100 labels
# at 400 steps (bf16 autocast + channels-last, which fits 3 seeds of both into 5 minutes on 2 cores). The
# quickstart takes the budget where HybridNet's best validation score leads the baseline's best by most.
# Trials go to benchmarks/runs/ (git-ignored; re-running resumes); tune.json of each goes to results/.
set -euo pipefail
cd "$(dirname "$0")/.."
select_budget() {  # labels steps extra-args...
  local n=$1 steps=$2
  shift 2
  local common=(--max-steps "$steps" --set eval_every=$((steps / 2)) --set checkpoint_every=$((steps / 2)) --seeds 2
                --set data.num_labels="$n" "$@")
  local key="n$n-it$steps"
  hybridwrap tune "${common[@]}" --tune-dir "benchmarks/runs/tune-quickstart-full-$key"
  hybridwrap tune "${common[@]}" --preset classification --grid optim.lr=0.001,0.003,0.01 \
    --grid optim.weight_decay=0,0.0001,0.001 --tune-dir "benchmarks/runs/tune-quickstart-baseline-$key"
  for who in full baseline; do
    cp "benchmarks/runs/tune-quickstart-$who-$key/tune.json" "benchmarks/results/tune-quickstart-$who-$key.json"
  done
}
select_budget 100 200
select_budget 50 200
select_budget 100 400 --set mixed_precision=bf16 --set channels_last=true
python benchmarks/render_results.py
