"""What a new user hit on a fresh clone, each path end to end through the CLI: its exit status, its one
line, and that nothing was written (these join the bad-input catalogue's rules)."""

from __future__ import annotations

import json
import subprocess
import time

import numpy as np
import pytest
from PIL import Image

from conftest import ENV_TESTS, SHARED_CIFAR, cli

CONFIG, HUB = 2, 5


def _run(*args, cwd, env=ENV_TESTS, timeout=600):
    return subprocess.run(cli(*map(str, args)), capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def _files(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """train/<class>/, test/<class>/ and unlabeled/ of 16-px RGB images, 2 classes."""
    root = tmp_path_factory.mktemp("paths") / "my_images"
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("test", 2)):
        for c, name in enumerate(("cat", "dog")):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(100 * c, 100 * c + 120, (16, 16, 3), dtype=np.uint8)).save(
                    root / split / name / f"{i}.png")
    (root / "unlabeled").mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / "unlabeled" / f"{i}.png")
    return root


TINY_RUN = ["--max-steps", "2", "--no-progress", "--set", "data.labeled_batch_size=2",
            "--set", "data.unlabeled_batch_size=2", "--set", "mixed_precision=no"]


@pytest.fixture(scope="module")
def own_run(images, tmp_path_factory):
    """The README's own-images command (every train/ image labeled, an unlabeled/ folder), shortened."""
    cwd = tmp_path_factory.mktemp("own-run")
    done = _run("train", "--dataset", "imagefolder", "--data-path", images, "--backbone", "resnet18", *TINY_RUN, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd / "runs" / "my_images-resnet18"


def test_card_of_an_own_images_run_names_the_unlabeled_folder(own_run, tmp_path):
    out = tmp_path / "README.md"
    done = _run("card", own_run, "--output", out, "--no-picture", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    assert "**8** labeled images (every labeled training image; no validation hold-out)" in text
    assert "the 6 images of the unlabeled/ folder" in text
    assert "the rest of the training set" not in text and "without a label" not in text


def test_card_sentences_follow_what_the_run_used():
    from hybridwrap.card import labels_phrase, unlabeled_phrase

    digits = {"dataset": "digits", "num_labels": 100, "labels_seed": 0}
    assert labels_phrase(digits, {"labels_seed": 2}, 100, 10).startswith("**100** labeled images (10 per class")
    assert unlabeled_phrase(digits, {"unlabeled_train": 1342, "labeled_train": 0, "extra": 0}) == \
        "the 1342 training images without a label"
    npz = {"dataset": "npz", "num_labels": 40}
    assert unlabeled_phrase(npz, {"unlabeled_train": 60, "labeled_train": 0, "extra": 5,
                                  "extra_source": "the x_unlabeled array of d.npz"}) == \
        "the 60 training images without a label and the 5 images of the x_unlabeled array of d.npz"
    own = {"dataset": "imagefolder", "num_labels": None}
    assert unlabeled_phrase(own, {"unlabeled_train": 0, "labeled_train": 8, "extra": 0}) == \
        "the 8 labeled images themselves"  # no unlabeled/ folder: the labeled images stand in
    assert labels_phrase({"dataset": "stl10", "num_labels": 1000, "fold": 3}, {}, 1000, 10).endswith("fold 3)")
    assert unlabeled_phrase({"dataset": "cifar10", "num_labels": 4000}, {"unlabeled_train": 41000, "labeled_train": 0,
                                                                          "extra": 0}).startswith("the 41000 training")
    assert unlabeled_phrase({"dataset": "svhn"}, {"stream": "ufldl-stanford/svhn (extra)"}) == \
        "the stream of ufldl-stanford/svhn (extra)"


def test_a_run_records_what_its_unlabeled_pool_held(own_run):
    pool = json.loads((own_run / "metrics.json").read_text())["unlabeled_pool"]
    assert pool == {"unlabeled_train": 0, "labeled_train": 0, "extra": 6, "extra_source": "the unlabeled/ folder",
                    "stream": None}


@pytest.mark.parametrize("target", ["data-folder", "missing"])
def test_resume_of_something_that_is_no_run_is_refused_and_writes_nothing(images, tmp_path, target):
    out = images if target == "data-folder" else tmp_path / "runs" / "does-not-exist"
    before = _files(images)
    done = _run("train", "--resume", "--output-dir", out, "--no-progress", cwd=tmp_path)
    assert done.returncode == CONFIG, done.stderr[-2000:]
    line = done.stderr.strip()
    assert line.count("\n") == 0 and line.startswith("hybridwrap: error: --resume continues a run, but")
    assert f"looked for {out}/train_config.json and {out}/seed-*/train_config.json" in line
    assert _files(images) == before and not (tmp_path / "runs").exists()


def test_eval_reproduces_the_training_metrics_of_a_bf16_and_an_fp32_run(tmp_path, capsys):
    """Every reported accuracy is computed in fp32: `eval` on the saved weights prints the metrics.jsonl figure (in
    this process: the command runs end to end in tests/test_train.py)."""
    from hybridwrap.cli import main as cli_main

    common = ["--set", "model.backbone_kwargs={width: 0.125}", "--max-steps", "3", "--no-progress", "--seeds", "1",
              "--set", "data.max_eval_images=120"]
    for precision in ("bf16", "no"):
        run = tmp_path / precision
        done = _run("train", *common, "--set", f"mixed_precision={precision}", "--output-dir", run, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        final = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()][-1]
        assert json.loads((run / "metrics.json").read_text())["precision"] == precision
        assert cli_main(["eval", str(run)]) == 0
        shown = capsys.readouterr().out
        assert f"{final['test_acc']:.2f}" in shown and f"{final['teacher_test_acc']:.2f}" in shown, \
            (precision, final, shown)


@pytest.mark.parametrize("command", [["predict", "runs/no_such_run", "new_photos"], ["eval", "runs/no_such_run"],
                                     ["export", "runs/no_such_run"]], ids=["predict", "eval", "export"])
def test_a_missing_local_run_is_not_sent_to_the_hub_for_a_minute(command, tmp_path):
    (tmp_path / "new_photos").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "new_photos" / "a.png")
    env = {**ENV_TESTS, "HF_ENDPOINT": "http://127.0.0.1:9"}  # nothing listens there: the Hub is unreachable
    t0 = time.time()
    done = _run(*command, cwd=tmp_path, env=env)
    assert time.time() - t0 < 20
    assert done.returncode == HUB, done.stderr[-2000:]
    line = done.stderr.strip()
    assert line.count("\n") == 0, line
    assert "runs/no_such_run: no such run directory; as a Hub repo id it cannot be reached (offline" in line
    assert "Retrying" not in done.stderr and "Traceback" not in done.stderr


def test_from_pretrained_of_a_missing_local_run_says_both_within_seconds(monkeypatch):
    import hybridwrap
    from hybridwrap.errors import HubError

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    t0 = time.time()
    with pytest.raises(HubError, match="runs/no_such_run: no such run directory; as a Hub repo id it cannot be reached"):
        hybridwrap.from_pretrained("runs/no_such_run")
    assert time.time() - t0 < 15


@pytest.mark.parametrize("kwargs,fix", [
    ("{width:0.25}", "'width:0.25' of convlarge has no value. YAML needs a space after the colon: write {width: 0.25}"),
    ("{width: }", "'width' of convlarge has no value. Give each a value, or leave it out"),
], ids=["glued-colon", "no-value"])
def test_a_backbone_kwarg_without_a_value_is_a_config_error(kwargs, fix, tmp_path):
    done = _run("train", "--set", f"model.backbone_kwargs={kwargs}", "--max-steps", "1", "--no-progress",
                "--output-dir", tmp_path / "run", cwd=tmp_path)
    assert done.returncode == CONFIG, done.stderr[-2000:]
    assert done.stderr.strip() == f"hybridwrap: error: model.backbone_kwargs {fix}."
    assert not (tmp_path / "run").exists()


def test_a_backbone_kwarg_without_a_value_is_refused_before_any_run_starts(tiny_config):
    from hybridwrap.config import load_config
    from hybridwrap.errors import ConfigError
    from hybridwrap.train.checks import validate

    cfg = load_config(tiny_config(), ["model.backbone_kwargs={width:0.25}"])
    with pytest.raises(ConfigError, match="'width:0.25' of convlarge has no value"):
        validate(cfg, 1)
    validate(load_config(tiny_config(), ["model.backbone_kwargs={width: 0.25}"]), 1)


@pytest.mark.parametrize("backbone", ["convlarge", "shakeshake26_2x96d", "places365_resnet50"])
def test_first_party_plugins_refuse_a_kwarg_they_do_not_take(backbone):
    from hybridwrap.config import ModelConfig
    from hybridwrap.errors import ConfigError
    from hybridwrap.builder import build_from_config

    with pytest.raises(ConfigError, match=f"{backbone} does not take backbone_kwargs bogus"):
        build_from_config(ModelConfig(backbone=backbone, backbone_kwargs={"bogus": 1}, input_size=(32, 32)))


def test_loader_workers_follow_the_cpus_this_process_may_use(monkeypatch):
    from hybridwrap.data import loader

    monkeypatch.setattr(loader.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert loader.default_workers(in_memory=False) == 1  # half of 2 usable cores, never more than torch suggests
    assert loader.default_workers(in_memory=True) == 0


def test_card_of_an_own_images_run_without_an_unlabeled_folder(images, tmp_path):
    import shutil

    folder = tmp_path / "labeled_only"
    shutil.copytree(images, folder, ignore=shutil.ignore_patterns("unlabeled"))
    done = _run("train", "--dataset", "imagefolder", "--data-path", folder, "--backbone", "resnet18", *TINY_RUN,
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "card.md"
    done = _run("card", tmp_path / "runs" / "labeled_only-resnet18", "--output", out, "--no-picture", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "the unlabeled data were the 8 labeled images themselves" in out.read_text()


@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="../shared/data/cifar10.npz not present")
def test_card_of_a_cifar10_run_from_the_local_copy(tmp_path):
    done = _run("train", "--dataset", "cifar10", "--data-path", SHARED_CIFAR, "--max-steps", "2", "--no-progress",
                "--set", "model.backbone_kwargs={width: 0.0625}", "--set", "data.max_eval_images=50",
                "--set", "data.labeled_batch_size=10", "--set", "data.unlabeled_batch_size=10",
                "--set", "mixed_precision=no", "--output-dir", tmp_path / "run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    done = _run("card", tmp_path / "run", "--output", tmp_path / "card.md", "--no-picture", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    text = (tmp_path / "card.md").read_text()
    assert "**4000** labeled images (400 per class" in text
    assert "the unlabeled data were the 46000 training images without a label" in text
    assert "CIFAR-10 test (JPEG copy)" in text
