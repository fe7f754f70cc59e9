"""A training path that starts from the user's images and backbone, with nothing of the digits demo."""

import json
from pathlib import Path
import subprocess
import time

import numpy as np
import pytest
from PIL import Image

from conftest import ENV_TESTS, free_port, cli


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """train/<class>/ and test/<class>/ of 32-px RGB images, 3 classes."""
    root = tmp_path_factory.mktemp("own") / "my_images"
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 2)):
        for c, name in enumerate(("apple", "pear", "plum")):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(60 * c, 60 * c + 80, (32, 32, 3), dtype=np.uint8)).save(
                    root / split / name / f"{i}.png")
    return root


NARROW = ("--set", "model.backbone_kwargs={width: 0.125}")  # where the default backbone's width is not what is tested


def _train(*args, cwd, env=ENV_TESTS):
    return subprocess.run(cli("train", *map(str, args), "--no-progress"), capture_output=True, text=True, env=env,
                          cwd=cwd)


def test_own_folder_with_a_timm_backbone_trains_with_no_other_option(folder, tmp_path):
    done = _train("--dataset", "imagefolder", "--data-path", folder, "--backbone", "resnet18", "--max-steps", "2",
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "runs" / "my_images-resnet18"  # named after the data and the backbone
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["model"]["backbone"] == "resnet18" and saved["model"]["backbone_kwargs"] == {}
    assert saved["model"]["in_chans"] == 3 and saved["model"]["num_classes"] == 3  # from the images
    assert saved["model"]["input_size"] == [32, 32] and saved["data"]["image_size"] is None
    assert saved["data"]["unlabeled_batch_size"] == 80 and saved["data"]["translate"] is None  # not the demo's
    assert saved["model"]["label_names"] == ["apple", "pear", "plum"]
    assert saved["seeds"] == 1 and saved["selected_by"] == "" and saved["protocol"] == ""
    assert json.loads((run / "labels.json").read_text())["num_labels"] == 18  # every train/ image is labeled
    assert "settings:" not in done.stdout  # no tune selection is claimed
    assert "18 labeled" in done.stderr and "precision" in done.stderr


def test_backbone_kwargs_the_backbone_does_not_take_are_one_line(folder, tmp_path):
    done = _train("--dataset", "imagefolder", "--data-path", folder, "--backbone", "resnet18", "--max-steps", "1",
                  "--set", "model.backbone_kwargs={width: 0.25}", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == ("hybridwrap: error: resnet18 does not take backbone_kwargs width (they belong to "
                                   "another backbone): remove them from model.backbone_kwargs.")
    assert not (tmp_path / "runs" / "my_images-resnet18").exists()


def test_pretrained_inside_backbone_kwargs_is_refused_with_the_right_key(folder, tmp_path):
    done = _train("--dataset", "imagefolder", "--data-path", folder, "--backbone", "resnet18", "--max-steps", "1",
                  "--set", "model.backbone_kwargs={pretrained: true}", cwd=tmp_path)
    assert done.returncode == 2 and "set model.pretrained=true (--pretrained)" in done.stderr


def test_pretrained_offline_fails_within_seconds_with_the_hub_error(folder, tmp_path):
    env = {**ENV_TESTS, "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}", "HF_HOME": str(tmp_path / "hf")}
    start = time.time()
    done = _train("--dataset", "imagefolder", "--data-path", folder, "--backbone", "resnet18", "--pretrained",
                  "--max-steps", "1", cwd=tmp_path, env=env)
    assert time.time() - start < 60  # the interpreter's start-up and the data load; no minute of retries
    assert done.returncode == 5, done.stderr[-2000:]
    line = done.stderr.strip()
    assert line.count("\n") == 0 and line.startswith("hybridwrap: error: The pretrained weights of resnet18")
    assert "--checkpoint-path" in line and "pretrained_cfg_overlay" in line


def test_checkpoint_path_from_the_cli_starts_both_encoders_from_the_file(folder, tmp_path):
    import timm
    import torch
    from safetensors.torch import save_file

    weights = timm.create_model("resnet18", num_classes=3).state_dict()
    save_file(weights, str(tmp_path / "r18.safetensors"))
    done = _train("--dataset", "imagefolder", "--data-path", folder, "--backbone", "resnet18", "--checkpoint-path",
                  tmp_path / "r18.safetensors", "--max-steps", "1", "--output-dir", tmp_path / "run",
                  "--set", "optim.lr=0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    from hybridwrap.serialization import load_model

    model, _ = load_model(tmp_path / "run" / "model")
    # lr 0: the encoders still hold the file's weights (BatchNorm statistics aside)
    for name in ("conv1.weight", "layer1.0.conv1.weight"):
        torch.testing.assert_close(model.backbone.state_dict()[name], weights[name])
        torch.testing.assert_close(model.encoder_u.state_dict()[name], weights[name])


def test_ctrl_c_before_the_first_checkpoint_leaves_nothing_so_the_same_command_runs_again(tmp_path, monkeypatch):
    from conftest import write_config
    from hybridwrap.config import load_config
    from hybridwrap.train import Run, train

    cfg = load_config(write_config(tmp_path / "c.yaml", max_steps=2))
    cfg.output_dir = str(tmp_path / "runs" / "x")

    def interrupted(self, stop_at=None, report=None):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(Run, "fit", interrupted)
        with pytest.raises(KeyboardInterrupt):
            train(cfg)
    assert not (tmp_path / "runs").exists()  # what this start created is gone
    assert train(load_config(write_config(tmp_path / "c.yaml", max_steps=2, output_dir=str(tmp_path / "runs" / "x"))))


def test_written_model_files_get_the_usual_mode(tmp_path):
    import os

    import hybridwrap

    umask = os.umask(0o022)
    try:
        hybridwrap.save_pretrained(hybridwrap.wrap("convlarge", num_classes=2, width=0.125), tmp_path / "m")
    finally:
        os.umask(umask)
    for name in ("model.safetensors", "config.json"):
        assert oct((tmp_path / "m" / name).stat().st_mode & 0o777) == "0o644", name


def test_a_file_that_is_not_an_npz_gets_no_pickle_advice(tmp_path):
    bad = tmp_path / "data.npz"
    bad.write_text("not numpy")
    done = subprocess.run(cli("train", "--dataset", "npz", "--data-path", str(bad), "--max-steps", "1"),
                          capture_output=True, text=True, env=ENV_TESTS, cwd=tmp_path)
    assert done.returncode == 3
    assert "numpy.savez(path, x_train=" in done.stderr and "pickle" not in done.stderr


# -- own data sizes its default budget in passes over its unlabeled pool, from the budget map -----

def test_own_data_default_budget_is_passes_over_its_pool_with_its_ramps_scaled(folder, tmp_path):
    from hybridwrap.budget import OWN_DATA_PASSES, steps_for_passes

    done = _train("--dataset", "imagefolder", "--data-path", folder, "--output-dir", tmp_path / "run", *NARROW,
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    saved = json.loads((tmp_path / "run" / "train_config.json").read_text())
    steps = steps_for_passes(OWN_DATA_PASSES, 18, 80)  # 18 labeled images, no unlabeled/ folder: the pool is them
    assert (saved["budget_passes"], saved["max_steps"]) == (OWN_DATA_PASSES, steps) and steps != 240  # not the demo's
    assert saved["loss"]["stability_rampup_steps"] == round(60 * steps / 240)  # the quickstart's quarter of the run
    assert f"{steps} steps ({steps * 80 / 18:.1f} passes over the unlabeled pool, sized by budget_passes=" \
           f"{OWN_DATA_PASSES})" in done.stderr
    assert "may not pay yet" not in done.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == steps


def test_own_data_below_the_map_crossover_says_so_and_names_the_steps_that_reach_it(folder, tmp_path):
    from hybridwrap.budget import CROSSOVERS, OWN_DATA_PASSES, RECONSTRUCTION_PAYS, steps_for_passes

    done = _train("--dataset", "imagefolder", "--data-path", folder, "--max-steps", "1", "--output-dir",
                  tmp_path / "run", *NARROW, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["budget_passes"] is None  # steps given
    assert "1 steps make 4.4 passes over the 18 unlabeled images: HybridNet may not pay yet" in done.stderr
    for name, c in CROSSOVERS.items():
        assert f"{c['passes']:.1f} passes on {name} ({c['steps']} steps, {c['labels']} labels)" in done.stderr
    if RECONSTRUCTION_PAYS:
        assert f"reconstruction added to Mean Teacher from {RECONSTRUCTION_PAYS['passes']:.1f} passes" in done.stderr
    assert f"The own-data default, {OWN_DATA_PASSES} passes, reaches them all: give it --max-steps " \
           f"{steps_for_passes(OWN_DATA_PASSES, 18, 80)}, or leave out --max-steps" in done.stderr
    assert "Warning" not in done.stderr and "warnings.warn" not in done.stderr  # one logged line, no source line
    baseline = _train("--dataset", "imagefolder", "--data-path", folder, "--max-steps", "1", "--preset",
                      "classification", "--output-dir", tmp_path / "labeled-only", *NARROW, cwd=tmp_path)
    assert baseline.returncode == 0 and "may not pay yet" not in baseline.stderr  # no unlabeled term to pay


def test_a_budget_in_passes_resumes_with_the_steps_it_resolved():
    from hybridwrap.config import TrainConfig, fingerprint, scaled_to
    from hybridwrap.resolution import fill_resolved

    def fresh():
        cfg = TrainConfig(budget_passes=12)
        cfg.max_steps, cfg.loss.stability_rampup_steps, cfg.optim.lr_rampdown_steps = 240, 60, 60
        return cfg

    saved = scaled_to(fresh(), 1000)  # what the run resolved from its pool at start-up
    again = fill_resolved(fresh(), saved)  # the same command with --resume, before its data is loaded
    assert fingerprint(again) == fingerprint(saved) and again.max_steps == 1000
    other = fresh()
    other.budget_passes = 20  # another budget is a difference, not a resolution
    assert fill_resolved(other, saved).max_steps == 240


def test_max_steps_on_the_command_line_replaces_the_own_data_budget_in_passes(folder):
    import argparse

    from hybridwrap.budget import OWN_DATA_PASSES
    from hybridwrap.train_cli import add_train_arguments, config_from_args

    p = argparse.ArgumentParser()
    add_train_arguments(p)
    own = ["--dataset", "imagefolder", "--data-path", str(folder)]
    assert config_from_args(p.parse_args(own)).budget_passes == OWN_DATA_PASSES
    assert config_from_args(p.parse_args(own + ["--max-steps", "50"])).budget_passes is None
    assert config_from_args(p.parse_args(own + ["--set", "max_steps=50"])).budget_passes is None
    assert config_from_args(p.parse_args([])).budget_passes is None  # the digits demo keeps its 240 steps
    assert config_from_args(p.parse_args(["--dataset", "mnist5k"])).budget_passes is None


def test_config_show_with_a_dataset_prints_what_the_data_resolves(folder, capsys):
    """`hybridwrap config --show --dataset X` prints the run's config as training will resolve it from the data:
    channels, classes, class names and the budget in passes as steps."""
    import yaml

    from hybridwrap.budget import OWN_DATA_PASSES, steps_for_passes
    from hybridwrap.cli import main as cli_main
    from hybridwrap.resolution import pool_size
    from hybridwrap.saved_configs import from_dict

    assert cli_main(["config", "--show", "--dataset", "imagefolder", "--data-path", str(folder)]) == 0
    out = capsys.readouterr().out
    shown = yaml.safe_load(out)
    assert (shown["model"]["in_chans"], shown["model"]["num_classes"]) == (3, 3)
    assert shown["model"]["label_names"] == ["apple", "pear", "plum"]
    pool = pool_size(from_dict(shown))  # the unlabeled pool of the run it shows
    assert shown["max_steps"] == steps_for_passes(OWN_DATA_PASSES, pool, shown["data"]["unlabeled_batch_size"])
    assert "resolved from --dataset imagefolder's data" in out
    assert (shown["model"]["decoder"], len(shown["model"]["mean"])) == ("generic", 3)  # the backbone's, as a run's


def test_tune_sizes_an_own_data_budget_before_it_sets_its_halving_point(folder):
    from hybridwrap.budget import steps_for_passes
    from hybridwrap.resolution import pool_size, resolve_budget
    from hybridwrap.config import TrainConfig

    cfg = TrainConfig(budget_passes=10)
    cfg.data.dataset, cfg.data.path, cfg.data.num_labels, cfg.data.val_size = "imagefolder", str(folder), 6, 3
    cfg.model.num_classes = 3
    assert pool_size(cfg) == 9  # 18 train images, 3 held out for validation, 6 labeled
    resolve_budget(cfg)
    assert cfg.max_steps == steps_for_passes(10, 9, cfg.data.unlabeled_batch_size)


def _with_broken_files(folder, tmp_path, where=("train/apple", "unlabeled")):
    import shutil

    root = tmp_path / "broken_images"
    shutil.copytree(folder, root)
    for i, place in enumerate(where):
        (root / place).mkdir(parents=True, exist_ok=True)
        (root / place / f"broken{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not an image" * 3)
    if "unlabeled" in where:  # the unlabeled folder also gets a good image, so it is a pool of its own
        Image.new("RGB", (32, 32)).save(root / "unlabeled" / "good.png")
    return root


def test_every_unreadable_image_is_named_before_anything_is_written(folder, tmp_path):
    root = _with_broken_files(folder, tmp_path)
    done = _train("--dataset", "imagefolder", "--data-path", root, "--max-steps", "2", "--output-dir",
                  tmp_path / "run", cwd=tmp_path)
    assert done.returncode == 3, done.stderr[-2000:]
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("hybridwrap: error: 2 unreadable image file(s): ") and "broken0.png" in line \
        and "broken1.png" in line and "pass --skip-bad-images to train without them" in line
    listing = line.split("with the reason: ")[1].split(")")[0]
    assert len(Path(listing).read_text().splitlines()) == 2
    assert not (tmp_path / "run").exists()


def test_skip_bad_images_trains_without_them_and_records_which(folder, tmp_path):
    root = _with_broken_files(folder, tmp_path)
    done = _train("--dataset", "imagefolder", "--data-path", root, "--max-steps", "2", "--output-dir",
                  tmp_path / "run", "--skip-bad-images", *NARROW, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    skipped = (tmp_path / "run" / "skipped_images.txt").read_text().splitlines()
    assert sorted(Path(line.split("\t")[0]).name for line in skipped) == ["broken0.png", "broken1.png"]
    assert "skipped 2 unreadable image file(s) (--skip-bad-images)" in done.stderr
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["data"]["skip_bad_images"] is True
