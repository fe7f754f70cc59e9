"""hybridwrap tune: validation-only selection, resume, the written config, bad grids."""

from pathlib import Path
import json
import subprocess
import sys

import numpy as np
import pytest

import hybridwrap.train as train_module
import hybridwrap.tune as tune_module
from conftest import ENV_TESTS, SHARED_CIFAR, cli
from hybridwrap import ConfigError
from hybridwrap.config import load_config
from hybridwrap.tune import parse_grid, tune

GRID = {"loss.lambda_rec": [0.25, 1.0], "loss.lambda_rec_inter": [0.5]}


def _poisoned_npz(path):
    """16x16 grayscale images of 4 classes whose *test* labels are out of range: touching the test split fails."""
    rng = np.random.default_rng(0)
    y_train = np.repeat(np.arange(4), 30)
    x_train = (rng.random((120, 16, 16, 1)) * 60 + y_train[:, None, None, None] * 45).astype(np.uint8)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_train[:8], y_test=np.full(8, 99))
    return path


def _cfg(tiny_config, tmp_path, **changes):
    npz = _poisoned_npz(tmp_path / "poisoned.npz")
    data = {"dataset": "npz", "path": str(npz), "num_labels": 8, "val_size": 24, "max_eval_images": None}
    cfg = load_config(tiny_config(data=data, model={"num_classes": 4}, **changes))
    return cfg


def test_trials_score_on_held_out_training_images_and_never_touch_the_test_split(tiny_config, tmp_path):
    cfg = _cfg(tiny_config, tmp_path)
    with pytest.raises(Exception, match="test labels span 99"):  # a normal run reads the test split...
        train_module.train(load_config(tiny_config(data={"dataset": "npz", "path": str(tmp_path / "poisoned.npz"),
                                                         "num_labels": 8, "max_eval_images": None},
                                                   model={"num_classes": 4}, output_dir=str(tmp_path / "plain"))))
    summary = tune(cfg, GRID, tmp_path / "tune", early_stop=0.5, log=lambda *_: None)  # ...a tune never does
    assert summary["val_size"] == 24 and summary["trials"] == 2 and summary["early_stop_step"] == 2
    lines = [json.loads(line) for line in (tmp_path / "tune" / "trials.jsonl").read_text().splitlines()]
    assert all("val_acc" in r and not any(k.startswith("test") for k in r) for r in lines)
    for trial in (tmp_path / "tune" / "trials").iterdir():
        split = json.loads((trial / "labels.json").read_text())
        assert len(split["val"]) == 24 and not set(split["val"]) & set(split["labeled"])
        assert max(split["val"]) < 120  # training images only
        metrics = trial / "metrics.json"
        if metrics.exists():
            assert not any(k.startswith("test") or k.startswith("teacher_test") for k in json.loads(metrics.read_text()))


def test_tune_resumes_and_matches_an_uninterrupted_tune(tiny_config, tmp_path, monkeypatch):
    straight = tune(_cfg(tiny_config, tmp_path), GRID, tmp_path / "a", log=lambda *_: None)

    real_train, calls = train_module.train, []

    def dies_on_the_third_trial(cfg, resume=False, stop_at=None):
        calls.append((cfg.output_dir, resume, stop_at))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_train(cfg, resume=resume, stop_at=stop_at)

    monkeypatch.setattr(tune_module, "train", dies_on_the_third_trial)  # the name tune trains its trials with
    with pytest.raises(KeyboardInterrupt):
        tune(_cfg(tiny_config, tmp_path), GRID, tmp_path / "b", log=lambda *_: None)
    assert [c[2] for c in calls] == [2, 2, None]  # two trials to the early-stop step, then the finalist
    interrupted = calls[2][0]
    calls.clear()
    resumed = tune(_cfg(tiny_config, tmp_path), GRID, tmp_path / "b", log=lambda *_: None)
    assert calls == [(interrupted, True, None)]  # only the unfinished trial, resumed from its checkpoint
    assert resumed["ranking"] == straight["ranking"] and resumed["best"] == straight["best"]
    calls.clear()
    tune(_cfg(tiny_config, tmp_path), GRID, tmp_path / "b", log=lambda *_: None)
    assert calls == []  # everything finished: nothing retrains


def test_best_yaml_round_trips_into_train(tiny_config, tmp_path):
    cfg = _cfg(tiny_config, tmp_path, max_steps=2)
    cfg.data.val_size = 0  # tune holds out its default (a fifth); the chosen config trains on everything again
    summary = tune(cfg, {"loss.lambda_rec": [0.25, 0.5]}, tmp_path / "t", early_stop=0, log=lambda *_: None)
    best = load_config(tmp_path / "t" / "best.yaml")
    assert best.loss.lambda_rec == summary["best"]["loss.lambda_rec"]
    assert best.data.val_size == 0  # the chosen config trains on every training image again
    assert "validation images" in best.selected_by and "test set unused" in best.selected_by
    # train it as the user would (the poisoned test split is swapped for the real digits)
    done = subprocess.run(cli("train", "--config", str(tmp_path / "t" / "best.yaml"), "--dataset", "digits",
                              "--set", "model.num_classes=10", "--set", "data.num_labels=20",
                              "--set", "model.input_size=[16,16]", "--set", "data.image_size=16",
                              "--output-dir", str(tmp_path / "final"), "--no-progress"),
                          capture_output=True, text=True, env=ENV_TESTS)
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "final" / "train_config.json").read_text())
    assert saved["loss"]["lambda_rec"] == summary["best"]["loss.lambda_rec"]
    assert "settings: hybridwrap tune on 24 validation images" in done.stdout


@pytest.mark.parametrize("grid,preset,match", [
    (["loss.lambda_recc=0.5"], "full", "Unknown config key"),
    (["loss.lambda_rec="], "full", "lists no values"),
    (["loss.lambda_rec"], "full", "must look like section.field=v1,v2"),
    (["loss.lambda_rec=0.5,0.5"], "full", "repeats a value"),
    (["loss.lambda_rec=0.5", "loss.lambda_rec=1"], "full", "given twice"),
    (["loss.lambda_rec=high"], "full", "must be of type float"),
    (["loss.lambda_rec=0.5"], "classification", "has no effect under preset 'classification'"),
    ([], "classification", "Pass --grid"),
])
def test_bad_grid_is_a_clear_error(grid, preset, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        from hybridwrap.tune import Tuner

        cfg = load_config()
        cfg.preset = preset
        Tuner(cfg, parse_grid(grid, preset), tmp_path, [0])
    args = [a for g in grid for a in ("--grid", g)]
    done = subprocess.run(cli("tune", "--preset", preset, "--tune-dir", str(tmp_path / "cli"), *args),
                          capture_output=True, text=True, env=ENV_TESTS)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("hybridwrap: error:") and match.split("'")[0] in done.stderr
    assert not (tmp_path / "cli").exists()  # nothing trained, nothing written


def test_cli_tune_end_to_end_on_the_embedded_digits(tiny_config, tmp_path):
    done = subprocess.run(cli("tune", "--config", str(tiny_config()), "--tune-dir", str(tmp_path / "t"),
                              "--grid", "loss.lambda_rec=0.25,1.0", "--grid", "loss.lambda_rec_inter=0.5",
                              "--val-size", "50"),
                          capture_output=True, text=True, env=ENV_TESTS)
    assert done.returncode == 0, done.stderr
    assert "tune: trial 1/2" in done.stdout and "tune: trial 2/2" in done.stdout
    assert "(stopped early)" in done.stdout and "test set unused" in done.stdout
    summary = json.loads((tmp_path / "t" / "tune.json").read_text())
    assert summary["val_size"] == 50 and summary["best"] in [r["settings"] for r in summary["ranking"]]


def test_the_quickstart_settings_are_the_ones_tune_chose_on_validation():
    """configs/digits.yaml must hold what benchmarks/quickstart_selection.sh chose, never a hand pick."""
    from conftest import REPO

    results = REPO / "benchmarks" / "history" / "results"  # the digits demo's selection, archived with its section
    cfg = load_config(REPO / "configs" / "digits.yaml")
    tunes = {p.stem[len("tune-quickstart-"):]: json.loads(p.read_text()) for p in results.glob("tune-quickstart-*-px*.json")}  # 0.3's
    key = f"n{cfg.data.num_labels}-it{cfg.max_steps}-px{cfg.data.image_size}-u{cfg.data.unlabeled_batch_size}"
    full, base = tunes[f"full-{key}"], tunes[f"baseline-{key}"]
    for name, value in full["best"].items():
        section, field = name.split(".")
        assert getattr(getattr(cfg, section), field) == value, name
    assert cfg.baseline_overrides == [f"{k}={v}" for k, v in base["best"].items()]
    assert cfg.max_steps == full["max_steps"] == base["max_steps"]
    assert full["trials"] == base["trials"]  # the baseline was tuned with the same budget
    sys.path[:0] = [str(REPO / "benchmarks"), str(REPO / "benchmarks" / "history")]
    from renderers.quickstart import budget_gaps, chosen_budget

    gaps = budget_gaps(tunes)
    assert len(gaps) >= 2 and key == chosen_budget(tunes)  # the budget where HybridNet's validation lead is largest
    assert all(round(gaps[key], 9) >= round(g, 9) for g in gaps.values())
    assert cfg.seeds >= 3 and "validation" in cfg.selected_by


@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="../shared/data/cifar10.npz not present")
def test_cli_tune_end_to_end_on_the_cifar10_npz(tmp_path):
    done = subprocess.run(cli("tune", "--dataset", "cifar10", "--data-path", str(SHARED_CIFAR),
                              "--tune-dir", str(tmp_path / "c"), "--max-steps", "2", "--val-size", "100",
                              "--grid", "loss.lambda_rec=0.25,1.0", "--set", "data.max_train_images=600",
                              "--set", "data.num_labels=100", "--set", "model.backbone_kwargs={width: 0.125}",
                              "--set", "data.labeled_batch_size=4", "--set", "data.unlabeled_batch_size=8",
                              "--set", "eval_every=1", "--set", "checkpoint_every=1"),
                          capture_output=True, text=True, env=ENV_TESTS)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "c" / "tune.json").read_text())
    assert summary["dataset"] == "cifar10" and summary["val_size"] == 100 and summary["trials"] == 2
    assert "test set unused" in done.stdout


def test_ctrl_c_in_tune_says_that_rerunning_resumes(tmp_path, tiny_config, monkeypatch, capsys):
    import hybridwrap.tune as tune_module
    from hybridwrap.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tune_module, "tune", interrupted)
    code = main(["tune", "--config", str(tiny_config()), "--tune-dir", str(tmp_path / "t")])
    assert code == 130
    err = capsys.readouterr().err
    assert "Re-running the same command resumes" in err and f"{tmp_path / 't'}/trials.jsonl" in err


def test_trials_show_progress_unless_no_progress():
    from hybridwrap.config import TrainConfig
    from hybridwrap.tune import Trial, trial_config

    base = TrainConfig()
    trial = Trial(name="t0", settings={"loss.lambda_rec": 0.5}, seed=0)
    assert trial_config(base, trial, Path("/tmp/t")).progress_bar
    base.progress_bar = False
    assert not trial_config(base, trial, Path("/tmp/t")).progress_bar
