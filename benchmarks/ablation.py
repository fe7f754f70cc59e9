"""The paper's Table 1 ablation on the real CIFAR-10 copy, at a budget this machine can afford.

    python benchmarks/ablation.py --presets all --seeds 0 1 2 --width 0.25 --iterations 1000 --val-size 5000

Each run is a shipped config as it is (``--config``, default configs/cifar10_convlarge.yaml: the Table 1
protocol; more files layer on it, e.g. configs/paper_literal.yaml), run for ``--iterations`` steps with every
schedule scaled to the same proportion of the run (hybridwrap.config.scaled_to), at ConvLarge ``--width``,
with seed k training on labeled subset k. The other settings it passes are the run's bookkeeping (output,
evaluation interval, precision, data path, validation hold-out); no loss, data or model field.

One JSON per (configuration, preset, seed) under benchmarks/results/ (results accumulate across sessions;
a finished run is skipped, an interrupted one resumes from its last checkpoint). Run directories go to
benchmarks/runs/ (ignored by git). Hyperparameters are compared on the validation split held out of the
*training* set (``--val-size``); the test set (the JPEG copy, reported as "cifar10-jpegtest") only gives
the final numbers. ``--set`` passes config overrides (e.g. the λ of a candidate) and ``--tag`` names them.
Render the results with ``python benchmarks/render_results.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

from machine import cpu_capability, device_name, git_commit, write_json

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RUNS = HERE / "runs"
DEFAULT_DATA = os.environ.get("HYBRIDWRAP_CIFAR10_NPZ", str(HERE.parent.parent / "shared" / "data" / "cifar10.npz"))
COMMIT = None  # taken once at start: the code this process runs
TABLE1 = ["classification", "classification_stability", "autoencoder", "autoencoder_stability",
          "hybrid_architecture", "full"]


def _relative(path: str) -> str:
    """A config path as the repository names it (configs/x.yaml), never one machine's absolute path."""
    p = Path(os.path.abspath(path))  # abspath, not resolve: configs/ stays configs/ (a link to hybridwrap/configs)
    try:
        return str(p.relative_to(HERE.parent))
    except ValueError:
        return str(path)


def run_name(tag: str, preset: str, width: float, labels: int, iterations: int, seed: int) -> str:
    """The run directory / result file name of one (configuration, preset, seed); render_results.py reuses it."""
    return f"{tag}-{preset}-w{width}-n{labels}-it{iterations}-s{seed}"


def run_one(args, preset: str, seed: int) -> Path:
    from hybridwrap.config import load_config, scaled_to
    from hybridwrap.train import checkpoint_dirs, train

    run_id = run_name(args.tag, preset, args.width, args.labels or 4000, args.iterations, seed)
    result_path = Path(args.results_dir) / f"ablation-{run_id}.json"
    if result_path.exists():
        print(f"[skip] {run_id}: {result_path.name} exists")
        return result_path
    run_dir = Path(args.runs_dir) / run_id
    overrides = [
        f"preset={preset}", f"seed={seed}", f"output_dir={run_dir}",
        f"eval_every={args.eval_every}", f"checkpoint_every={args.eval_every}", "log_every=50", "seeds=1",
        "progress_bar=false", f"mixed_precision={args.precision}", f"channels_last={str(args.channels_last).lower()}",
        f"data.path={args.data}", f"data.labels_seed={seed}", f"data.val_size={args.val_size}",
        "data.eval_batch_size=500",
    ] + ([f"data.num_labels={args.labels}"] if args.labels is not None else []) \
      + ([f"data.max_train_images={args.limit_images}", f"data.max_eval_images={args.limit_images}"]
         if args.limit_images else []) + list(args.set)
    cfg = scaled_to(load_config(args.config, overrides), args.iterations)
    if args.width is not None:  # the budget's network width, added to the config's own backbone kwargs
        cfg.model.backbone_kwargs = {**cfg.model.backbone_kwargs, "width": args.width}
    done_before = checkpoint_dirs(run_dir) if run_dir.exists() else []
    resumed_from = int(done_before[-1].name[len("step-"):]) if done_before else 0
    t0 = time.time()
    metrics = train(cfg, resume=run_dir.exists())
    curve = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_log = [c for c in curve if c["split"] == "train"]
    evals = {c["step"]: c for c in curve if c["split"] == "eval"}  # a run resumed at its end evaluates its last step again
    curve = [{k: c[k] for k in ("step", "test_acc", "teacher_test_acc", "val_acc", "teacher_val_acc") if k in c}
             for _, c in sorted(evals.items())]
    result = {
        "preset": preset, "dataset": "cifar10-jpegtest", "labels": cfg.data.num_labels, "seed": seed,
        "backbone": cfg.model.backbone, "width": args.width, "iterations": args.iterations, "tag": args.tag,
        "config": [_relative(c) for c in args.config], "protocol": cfg.protocol,
        "test_acc": metrics["test_acc"], "teacher_test_acc": metrics.get("teacher_test_acc"),
        "val_acc": metrics.get("val_acc"), "teacher_val_acc": metrics.get("teacher_val_acc"),
        "val_size": args.val_size, "seconds": round(time.time() - t0, 1), "balance_rule": cfg.loss.balance_rule,
        "teacher_init": cfg.loss.teacher_init,
        "resumed_from_step": resumed_from,  # > 0: `seconds` covers only the steps after it
        "device": device_name(), "cpu_capability": cpu_capability(), "precision": metrics.get("precision", args.precision),
        "precision_requested": args.precision,
        "channels_last": args.channels_last,
        "commit": COMMIT, "overrides": list(args.set),
        "branch": {k[len("branch/"):]: v for k, v in metrics.items() if k.startswith("branch/")},
        "curve": curve,
        "last_train_log": train_log[-1] if train_log else None,  # loss terms and λ at the end (loss scales)
        "command": "python benchmarks/ablation.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    }
    write_json(result_path, result)
    print(f"[done] {run_id}: test {result['test_acc']:.2f}  teacher {result['teacher_test_acc']}  "
          f"val {result['val_acc']}  ({result['seconds']:.0f}s)")
    return result_path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 .npz (default: ../shared/data/cifar10.npz or "
                                                        "$HYBRIDWRAP_CIFAR10_NPZ)")
    p.add_argument("--presets", nargs="+", default=["all"], help="Table 1 presets, or 'all'")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--config", nargs="+", default=[str(HERE.parent / "configs" / "cifar10_convlarge.yaml")],
                   help="shipped config(s) to run as they are (later files layer on earlier ones)")
    p.add_argument("--width", type=float, default=0.25,
                   help="network width (the CPU budget; 1.0 is the paper's): ConvLarge's channels, shake-shake's 96d")
    p.add_argument("--iterations", type=int, default=1000, help="steps; every schedule is scaled to this budget")
    p.add_argument("--labels", type=int, help="labeled images (default: the config's)")
    p.add_argument("--val-size", type=int, default=5000)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--precision", default="auto", choices=["auto", "no", "bf16"],
                   help="auto (default): bf16 where the hardware computes it natively, else fp32; recorded as resolved")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--tag", default="paper", help="name of this hyperparameter configuration")
    p.add_argument("--set", action="append", default=[], help="config override, e.g. loss.lambda_rec=0.25")
    p.add_argument("--results-dir", default=str(RESULTS))
    p.add_argument("--runs-dir", default=str(RUNS), help="run directories (checkpoints; git-ignored)")
    p.add_argument("--limit-images", type=int, help="use only the first N train/test images (smoke tests)")
    args = p.parse_args(argv)
    global COMMIT
    COMMIT = git_commit()
    if not Path(args.data).is_file():
        sys.exit(f"CIFAR-10 file {args.data} not found: pass --data or set HYBRIDWRAP_CIFAR10_NPZ.")
    presets = TABLE1 if args.presets == ["all"] else args.presets
    for seed in args.seeds:
        for preset in presets:
            run_one(args, preset, seed)


if __name__ == "__main__":
    main()
