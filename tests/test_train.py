"""Training runs end to end: presets, checkpoints, exact resume after kill -9, multi-process, bad input."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import ENV_TESTS, REPO, SHARED_CIFAR, cli, free_port, wait_for_exit, wait_for_output
from hybridwrap import CheckpointError, ConfigError, DataError, TrainingError
from hybridwrap.config import TrainConfig, load_config
from hybridwrap.presets import PRESETS, TABLE1
from hybridwrap.train import checkpoint_dirs, train

ENV = ENV_TESTS  # the CLI subprocesses' environment, one definition (conftest)


def _cfg(path, out, **overrides):
    cfg = load_config(path)
    cfg.output_dir = str(out)
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


@pytest.mark.parametrize("preset", TABLE1)
def test_every_table1_preset_trains_and_writes_checkpoint_and_metrics(preset, tiny_config, tmp_path):
    out = tmp_path / preset
    result = train(_cfg(tiny_config(preset=preset), out))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == result and metrics["steps"] == 4 and 0 <= metrics["test_acc"] <= 100
    assert ("teacher_test_acc" in metrics) == PRESETS[preset].stability
    assert [p.name for p in checkpoint_dirs(out)] == ["step-00000002", "step-00000004"]
    assert (out / "model" / "model.safetensors").is_file() and (out / "labels.json").is_file()
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_lines = [line for line in lines if line["split"] == "train"]
    assert [line["step"] for line in train_lines] == [2, 4]
    expected_terms = {"loss/cls"} | ({"loss/rec"} if PRESETS[preset].reconstruction else set())
    assert expected_terms <= set(train_lines[-1])
    if PRESETS[preset].branch_u:
        assert 0 <= metrics["branch/energy_share_c"] <= 1 and "branch/psnr_x_hat_u" in metrics
    assert any((out / "tensorboard").rglob("events.out.tfevents*"))


def test_temporal_ensembling_and_validation_split(tiny_config, tmp_path):
    cfg = _cfg(tiny_config(loss={"stability": "temporal_ensembling"}, data={"val_size": 100}), tmp_path / "te")
    result = train(cfg)
    assert "teacher_test_acc" not in result and "val_acc" in result
    labels = json.loads((tmp_path / "te" / "labels.json").read_text())
    assert len(labels["val"]) == 100 and not set(labels["val"]) & set(labels["labeled"])


def test_keep_last_k_checkpoints(tiny_config, tmp_path):
    train(_cfg(tiny_config(max_steps=6, checkpoint_every=1, keep_checkpoints=2, eval_every=100), tmp_path / "k"))
    assert [p.name for p in checkpoint_dirs(tmp_path / "k")] == ["step-00000005", "step-00000006"]


def _weights(run: Path) -> dict:
    teacher = run / "model" / "teacher.safetensors"  # none for the labeled-only baseline
    return {**load_file(str(run / "model" / "model.safetensors")),
            **({"teacher." + k: v for k, v in load_file(str(teacher)).items()} if teacher.is_file() else {})}


def test_a_teacher_of_its_own_initialisation_trains_and_resumes_to_the_same_weights(tiny_config, tmp_path):
    """loss.teacher_init=own (configs/official_code.yaml): the run resumes the teacher it started, not a new draw."""
    config = tiny_config(loss={"teacher_init": "own"}, max_steps=4, eval_every=1000)
    whole = train(_cfg(config, tmp_path / "whole"))
    train(_cfg(config, tmp_path / "cut"), stop_at=2)
    train(_cfg(config, tmp_path / "cut"), resume=True)
    copied = train(_cfg(tiny_config(max_steps=4, eval_every=1000), tmp_path / "copied"))
    teachers = {name: load_file(str(tmp_path / name / "model" / "teacher.safetensors")) for name in ("whole", "cut", "copied")}
    for k, v in teachers["whole"].items():
        assert torch.equal(v, teachers["cut"][k]), k
    assert any(not torch.equal(v, teachers["copied"][k]) for k, v in teachers["whole"].items())
    assert json.loads((tmp_path / "cut" / "train_config.json").read_text())["loss"]["teacher_init"] == "own"
    assert whole["steps"] == copied["steps"] == 4


def test_kill_9_then_resume_is_bit_identical_to_an_uninterrupted_run(tiny_config, tmp_path):
    config = tiny_config(max_steps=20, checkpoint_every=5, eval_every=1000, log_every=5)
    base = ["train", "--config", str(config), "--no-progress"]
    subprocess.run(cli(*base, "--output-dir", str(tmp_path / "a")), check=True, capture_output=True, env=ENV)

    run_b = tmp_path / "b"
    proc = subprocess.Popen(cli(*base, "--output-dir", str(run_b)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=ENV)
    try:
        wait_for_output(proc.stderr, "checkpoints/step-00000010")  # its console line, once the checkpoint is written
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    killed_at = checkpoint_dirs(run_b)[-1].name
    assert killed_at < "step-00000020", "the run finished before it could be killed"
    assert not (run_b / "metrics.json").exists()

    done = subprocess.run(cli(*base, "--output-dir", str(run_b), "--resume"), capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    a, b = _weights(tmp_path / "a"), _weights(run_b)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("source", ["in_memory", "on_disk"])
def test_multi_process_matches_one_process(source, tiny_config, tmp_path):
    """accelerate launch --multi_gpu --num_processes 2 on CPU (gloo): synced replicas, same result as 1 process.
    On disk, each process reads, decodes and augments only its own images, in its own loader worker."""
    no_bn = {"decoder_norm": "none", "backbone_kwargs": {"width": 0.125, "norm": "none", "drop_rate": 0.0,
                                                          "noise_std": 0.0}}
    data = {}
    if source == "on_disk":
        from test_streaming import CLASSES, make_imagefolder

        no_bn.update(in_chans=3, num_classes=CLASSES)
        data = {"dataset": "imagefolder", "path": str(make_imagefolder(tmp_path / "folder")), "num_labels": 8,
                "max_eval_images": None, "num_workers": 1}
    config = tiny_config(max_steps=6, checkpoint_every=3, eval_every=3, check_replicas_every=1, model=no_bn,
                         data=data)
    args = ["-m", "hybridwrap.train", "--config", str(config), "--no-progress"]
    two = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                          "--num_machines", "1", "--main_process_port", str(free_port()),
                          "--mixed_precision", "no", "--dynamo_backend", "no",
                          *args, "--output-dir", str(tmp_path / "two")], capture_output=True, text=True, env=ENV,
                         timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("test accuracy") == 1  # the table is printed by rank 0 only
    one = subprocess.run([sys.executable, *args, "--output-dir", str(tmp_path / "one")], capture_output=True,
                         text=True, env=ENV, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    m2 = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert m2["processes"] == 2
    steps = [json.loads(line)["step"] for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["split"] == "train"]
    assert steps == sorted(set(steps))  # one writer: no step logged twice
    w1, w2 = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=1e-5, msg=k)


# ----------------------------------------------------------------------------------------- bad input


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_config, tmp_path, monkeypatch):
    from hybridwrap import losses

    real = losses.reconstruction_loss
    calls = {"n": 0}

    def exploding(*args, **kwargs):
        calls["n"] += 1
        value = real(*args, **kwargs)
        return value * float("nan") if calls["n"] > 3 else value

    monkeypatch.setattr(losses, "reconstruction_loss", exploding)
    out = tmp_path / "nan"
    with pytest.raises(TrainingError, match=r"Non-finite loss at step 3: term\(s\) \['rec'\].*step-00000002.*is kept"):
        train(_cfg(tiny_config(preset="hybrid_architecture", max_steps=6), out))
    kept = checkpoint_dirs(out)
    assert [p.name for p in kept] == ["step-00000002"]
    assert load_file(str(kept[0] / "model.safetensors"))  # still loadable


def test_refuses_to_overwrite_a_run(tiny_config, tmp_path):
    cfg = tiny_config(max_steps=2)
    train(_cfg(cfg, tmp_path / "r"))
    before = (tmp_path / "r" / "metrics.json").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run. Pass --resume"):
        train(_cfg(cfg, tmp_path / "r"))
    assert (tmp_path / "r" / "metrics.json").read_bytes() == before


def test_resume_with_another_config_is_refused(tiny_config, tmp_path):
    train(_cfg(tiny_config(max_steps=2), tmp_path / "r"))
    other = _cfg(tiny_config(max_steps=4, model={"backbone_kwargs": {"width": 0.25}}), tmp_path / "r")
    with pytest.raises(CheckpointError, match=r"another config \(model.backbone_kwargs: .*width.*0.125.*0.25"):
        train(other, resume=True)
    with pytest.raises(CheckpointError, match=r"preset: 'full' -> 'autoencoder'"):
        train(_cfg(tiny_config(max_steps=4, preset="autoencoder"), tmp_path / "r"), resume=True)


def test_images_of_another_size_than_the_wrap_time_hint_train(tiny_config, tmp_path):
    """model.input_size is a hint (summary, FLOPs): digits resized to 32x32 train a model wrapped at 16x16."""
    result = train(_cfg(tiny_config(max_steps=2, data={"image_size": 32}, model={"input_size": [16, 16]}),
                        tmp_path / "s"))
    assert result["steps"] == 2


def test_labels_outside_num_classes(tiny_config, tmp_path):
    with pytest.raises(DataError, match="outside 0..4.*model.num_classes"):
        train(_cfg(tiny_config(model={"num_classes": 5}), tmp_path / "c"))


def test_unknown_config_key_is_named(tiny_config):
    with pytest.raises(ConfigError, match=r"Unknown config key 'loss.lambda_recon' in .*Did you mean loss.lambda_rec"):
        load_config(tiny_config(loss={"lambda_recon": 0.5}))
    with pytest.raises(ConfigError, match=r"Unknown config key .*'epochs'"):
        load_config(tiny_config(epochs=3))
    with pytest.raises(ConfigError, match="must look like section.field=value"):
        load_config(None, ["loss.lambda_rec"])
    assert load_config(None, ["loss.lambda_rec=0.25", "loss.balance=false"]).loss.lambda_rec == 0.25


# ------------------------------------------------------------------------------------ user commands


def test_cli_train_with_baseline_then_eval(tmp_path, tiny_config):
    out = tmp_path / "cli"
    done = subprocess.run(cli("train", "--config", str(tiny_config(run_processes=1)), "--output-dir", str(out),
                              "--baseline", "--no-progress"), capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    assert "full (digits)" in done.stdout and "classification (digits)" in done.stdout
    full = json.loads((out / "metrics.json").read_text())
    assert f"{full['test_acc']:.2f}%" in done.stdout
    assert (out / "baseline" / "metrics.json").is_file()

    ev = subprocess.run(cli("eval", str(out)), capture_output=True, text=True, env=ENV)
    assert ev.returncode == 0, ev.stderr
    assert f"test_acc: {full['test_acc']:.2f}" in ev.stdout
    assert f"teacher_test_acc: {full['teacher_test_acc']:.2f}" in ev.stdout


@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="../shared/data/cifar10.npz not present")
def test_cli_train_on_real_cifar10(tmp_path):
    out = tmp_path / "cifar"
    done = subprocess.run(cli("train", "--dataset", "cifar10", "--data-path", str(SHARED_CIFAR), "--output-dir", str(out),
                              "--max-steps", "2", "--no-progress", "--set", "data.max_train_images=3000",
                              "--set", "data.max_eval_images=100", "--set", "data.num_labels=100"),
                         capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    m = json.loads((out / "metrics.json").read_text())  # one seed: the quickstart's 3 seeds are digits-only
    assert m["dataset"] == "cifar10" and m["labels"] == 100
    names = json.loads((out / "model" / "config.json").read_text())["model"]["label_names"]
    assert names[:3] == ["airplane", "automobile", "bird"] and len(names) == 10  # the npz's class names
    saved = json.loads((out / "train_config.json").read_text())
    fresh = TrainConfig()  # digits choices not carried over: the library's defaults
    assert saved["selected_by"] == "" and saved["protocol"] == ""
    assert saved["loss"]["lambda_rec"] == fresh.loss.lambda_rec and saved["loss"]["lambda_rec_inter"] == 0.5
    assert saved["loss"]["detach_intermediate_targets"] and saved["loss"]["teacher_buffers"] == "own"
    assert not saved["data"]["unlabeled_includes_labeled"] and saved["data"]["translate"] is None


@pytest.mark.parametrize("args,match,code", [  # the console script itself (tests/test_bad_inputs.py: many more)
    (["train", "--set", "loss.nope=1"], "Unknown config key", 2),
    (["train", "--dataset", "npz", "--data-path", "/no/such.npz"], "not found", 3),
    (["eval", "/no/such/run"], "neither a run directory nor a Hub repo id", 4),
])
def test_cli_errors_are_one_line(args, match, code, tmp_path):
    done = subprocess.run(cli(*args, *(["--output-dir", str(tmp_path / "x")] if args[0] == "train" else [])),
                          capture_output=True, text=True, env=ENV)
    assert done.returncode == code
    assert "Traceback" not in done.stderr and match in done.stderr
    assert done.stderr.startswith("hybridwrap: error:")


def test_every_shipped_config_loads():
    configs = sorted((REPO / "configs").glob("*.yaml"))
    assert {c.name for c in configs} >= {"quickstart.yaml", "cifar10_convlarge.yaml", "official_code.yaml"}
    for path in configs:
        cfg = load_config([path])
        assert cfg.preset in PRESETS
    layered = load_config([REPO / "configs" / "cifar10_convlarge.yaml", REPO / "configs" / "official_code.yaml"])
    assert (layered.loss.lambda_rec, layered.loss.lambda_rec_inter, layered.loss.detach_intermediate_targets) == (0.25, 0.5, True)
    assert layered.model.backbone == "convlarge" and layered.data.num_labels == 4000


def test_format_results_mean_std_and_an_honest_verdict():
    from hybridwrap.train import format_results

    def res(preset, acc, seed, teacher=None):
        r = {"preset": preset, "dataset": "digits", "test_acc": acc, "seed": seed}
        return {**r, "teacher_test_acc": teacher} if teacher is not None else r

    ahead = [res("full", a, s, a + 1) for s, a in enumerate((95.0, 96.0, 97.0))] + \
            [res("classification", a, s) for s, a in enumerate((94.0, 94.0, 94.0))]
    text = format_results(ahead, "hybridwrap tune on 288 validation images")
    assert "mean ± std over 3 seeds" in text and "96.00 ± 1.00%" in text and "97.00 ± 1.00%" in text
    assert "settings: hybridwrap tune on 288 validation images" in text
    assert "is ahead of its labeled-only baseline by 2.00 ± 1.00 points" in text and "ahead in 3 of 3 seeds" in text
    behind = [res("full", 93.0, s) for s in range(3)] + [res("classification", 94.0, s) for s in range(3)]
    assert "does NOT beat its labeled-only baseline here: -1.00 ± 0.00 points" in format_results(behind)


def test_seeds_and_baseline_overrides(tiny_config, tmp_path):
    from hybridwrap.train import baseline_config, seed_configs

    cfg = load_config(tiny_config(seeds=3, baseline_overrides=["optim.lr=0.001"]))
    cfg.output_dir = str(tmp_path / "q")
    runs = seed_configs(cfg)
    assert [(c.seed, c.data.labels_seed, Path(c.output_dir).name) for c in runs] == [
        (0, 0, "seed-0"), (1, 1, "seed-1"), (2, 2, "seed-2")]
    base = baseline_config(cfg)
    assert base.preset == "classification" and base.optim.lr == 0.001 and cfg.optim.lr == 0.003
    assert Path(base.output_dir) == tmp_path / "q" / "baseline"


def test_cli_train_several_seeds_with_baseline(tmp_path, tiny_config):
    out = tmp_path / "seeds"
    done = subprocess.run(cli("train", "--config", str(tiny_config(max_steps=2)), "--output-dir", str(out), "--baseline",
                              "--seeds", "2", "--no-progress"), capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    assert "mean ± std over 2 seeds" in done.stdout and "labeled-only baseline" in done.stdout
    for d in ("seed-0", "seed-1", "baseline/seed-0", "baseline/seed-1"):
        assert (out / d / "metrics.json").is_file()
    labels = [json.loads((out / d / "labels.json").read_text())["labeled"] for d in ("seed-0", "seed-1")]
    assert labels[0] != labels[1]  # seed k trains on labeled subset k


def test_translation_and_normalisation_reach_the_run(tiny_config, tmp_path):
    from hybridwrap.train import Run

    run = Run(_cfg(tiny_config(), tmp_path / "t"))
    assert run.steps.translate == 2  # 16 px digits: 1/8 of the side
    assert run.cfg.model.mean == (0.5,)  # ConvLarge's pretrained_cfg, one value for the 1-channel images
    run2 = Run(_cfg(tiny_config(data={"translate": 3, "normalize": "dataset"}), tmp_path / "t2"))
    assert run2.steps.translate == 3
    mean = run2.data.train_x.double().mean().item() / 255
    assert run2.cfg.model.mean[0] == pytest.approx(mean, abs=1e-5)
    saved = json.loads((tmp_path / "t2" / "train_config.json").read_text())
    assert saved["model"]["mean"] == list(run2.cfg.model.mean)  # recorded with the run, reused on resume


def test_a_run_resolves_its_own_copy_once_and_then_only_reads_it(tiny_config, tmp_path):
    import dataclasses

    from hybridwrap.config import replaced, to_dict
    from hybridwrap.train import Run

    cfg = _cfg(tiny_config(model={"decoder": None}), tmp_path / "r", budget_passes=2.0)
    given = to_dict(cfg)
    run = Run(cfg)
    try:
        assert to_dict(cfg) == given  # the caller's config: neither preset, budget nor backbone fields written into it
        resolved = run.cfg
        assert resolved.max_steps != cfg.max_steps and resolved.budget_passes == 2.0  # the passes, in steps
        assert resolved.model.decoder == "generic" and resolved.model.mean == (0.5,)  # the backbone's, before building
        assert resolved.model.decoder == run.model.config.decoder and resolved.model.std == run.model.config.std
        for owner, name in ((resolved, "max_steps"), (resolved.model, "mean"), (resolved.loss, "balance"),
                            (resolved.data, "num_labels"), (resolved.optim, "lr")):
            with pytest.raises(dataclasses.FrozenInstanceError, match="resolved once, then read only"):
                setattr(owner, name, getattr(owner, name))
        assert json.loads((tmp_path / "r" / "train_config.json").read_text()) == json.loads(
            json.dumps(to_dict(resolved), default=list))  # the record is the config the run read
        with pytest.raises(dataclasses.FrozenInstanceError, match="resolved once, then read only"):
            resolved.model.backbone_kwargs["width"] = 0.5  # what a frozen config holds is read only too
        with pytest.raises(dataclasses.FrozenInstanceError):
            resolved.model.backbone_kwargs.update(width=0.5)
        assert resolved.baseline_overrides == () and resolved.model.backbone_kwargs == {"width": 0.125}
        again = replaced(resolved, {"seed": 5})  # a writable copy
        again.model.mean = (0.25,)
        again.model.backbone_kwargs["width"] = 0.5
        again.baseline_overrides.append("optim.lr=0.1")
        assert (again.seed, resolved.seed, resolved.model.mean) == (5, 0, (0.5,))
        assert resolved.model.backbone_kwargs == {"width": 0.125} and resolved.baseline_overrides == ()
    finally:
        run.close()


def test_resume_with_resolved_fields_left_unset_is_not_a_difference(tiny_config, tmp_path):
    path = tiny_config(model={"input_size": None}, data={"image_size": 32})  # None: the backbone default, 32
    out = tmp_path / "r"
    train(_cfg(path, out, max_steps=2))
    train(_cfg(path, out, max_steps=4), resume=True)  # input size, mean and std were resolved: not differences
    assert json.loads((out / "metrics.json").read_text())["steps"] == 4


def test_resume_from_the_run_directory_alone(tiny_config, tmp_path):
    out = tmp_path / "own"
    first = subprocess.run(cli("train", "--config", str(tiny_config(max_steps=2, seeds=2, run_processes=1)), "--output-dir", str(out),
                               "--no-progress"), capture_output=True, text=True, env=ENV)
    assert first.returncode == 0, first.stderr
    # the documented resume: no --config, the run's own one (here a 2-seed run); --max-steps extends it, and
    # mixed_precision=auto decides the precision again on this machine (the run recorded the fp32 it trained in)
    again = subprocess.run(cli("train", "--resume", "--output-dir", str(out), "--max-steps", "4", "--no-progress",
                               "--set", "mixed_precision=auto"), capture_output=True, text=True, env=ENV)
    assert again.returncode == 0, again.stderr
    from hybridwrap.hardware import resolve_precision

    for seed in (0, 1):
        m = json.loads((out / f"seed-{seed}" / "metrics.json").read_text())
        assert m["steps"] == 4 and m["seed"] == seed
        assert m["precision"] == resolve_precision("auto", cuda=False)[0]


# ----------------------------------------------------------------------------------------- console, log, signals


def test_console_and_train_log_show_the_start_evaluations_checkpoints_and_end(tiny_config, tmp_path):
    config = str(tiny_config(max_steps=4, eval_every=2, checkpoint_every=2, log_every=2))
    out = tmp_path / "logged"
    done = subprocess.run(cli("train", "--config", config, "--output-dir", str(out), "--no-progress"),
                          capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    log = (out / "train.log").read_text()
    for text in (done.stderr, log):
        assert "hybridwrap: training full (convlarge" in text and "20 labeled" in text
        assert f"run directory {out} (new run)" in text
        assert "step 2/4: test " in text and "(teacher " in text  # the periodic evaluation
        assert f"step 4/4: checkpoint {out / 'checkpoints' / 'step-00000004'}" in text
        assert "done: 4 steps in" in text
    assert "cls=" not in done.stderr and "cls=" in log  # losses: train.log always, the console with --verbose

    quiet = subprocess.run(cli("train", "--config", config, "--output-dir", str(tmp_path / "q"), "--no-progress",
                               "--quiet"), capture_output=True, text=True, env=ENV)
    assert quiet.returncode == 0 and "step 2/4" not in quiet.stderr and "test accuracy" in quiet.stdout
    assert "step 2/4: test " in (tmp_path / "q" / "train.log").read_text()
    verbose = subprocess.run(cli("train", "--config", config, "--output-dir", str(tmp_path / "v"), "--no-progress",
                                 "--verbose"), capture_output=True, text=True, env=ENV)
    assert verbose.returncode == 0 and "step 2/4: cls=" in verbose.stderr


def test_resume_logs_each_step_once_and_counts_all_training_time(tiny_config, tmp_path):
    path = tiny_config(max_steps=6, eval_every=2, checkpoint_every=2, log_every=1)
    out = tmp_path / "r"
    train(_cfg(path, out), stop_at=4)
    with open(out / "metrics.jsonl", "a") as f:  # lines a killed run wrote after its last checkpoint
        f.write(json.dumps({"step": 5, "split": "train", "loss/total": 9.9}) + "\n")
    first = json.loads((checkpoint_dirs(out)[-1] / "train_state.json").read_text())["step"]
    assert first == 4
    result = train(_cfg(path, out), resume=True)
    train(_cfg(path, out), resume=True)  # resumed at its end: evaluates again, logs nothing twice
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    keys = [(x["step"], x["split"]) for x in lines]
    assert len(keys) == len(set(keys)), keys
    assert [x["step"] for x in lines if x["split"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert all(x.get("loss/total") != 9.9 for x in lines)
    paused_seconds = torch.load(checkpoint_dirs(out)[0] / "custom_checkpoint_0.pkl", weights_only=False)["seconds"]
    assert result["seconds"] > paused_seconds > 0  # the total of both sessions, not the resumed part only


def test_ctrl_c_names_the_last_checkpoint_and_the_resume_command(tiny_config, tmp_path):
    config = tiny_config(max_steps=100000, checkpoint_every=3, eval_every=100000)
    out = tmp_path / "int"
    # A suite started in the background from a script (`bash .ci/run &`) inherits SIGINT ignored, and so would the
    # child: Python then installs no KeyboardInterrupt at all. Give the child a terminal's default Ctrl-C.
    # with the progress bar on: the message must start a line of its own, not be glued to the bar's
    proc = subprocess.Popen(cli("train", "--config", str(config), "--output-dir", str(out), "--set", "progress_bar=true"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        head = wait_for_output(proc.stderr, "checkpoints/step-")
        proc.send_signal(signal.SIGINT)
        err = head + proc.communicate(timeout=60)[1]
    finally:
        proc.kill()  # a failed wait must not leave a training running beside the rest of the suite
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert f"The last checkpoint is {out / 'checkpoints'}" in err
    assert f"continue with: hybridwrap train --resume --output-dir {out}" in err
    assert any(line.startswith("hybridwrap: error: interrupted.") for line in err.split("\n")), err[-500:]


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process parents from /proc (Linux)")
def test_workers_stop_when_the_launcher_is_killed(tiny_config, tmp_path):
    config = tiny_config(max_steps=100000, checkpoint_every=3, eval_every=100000)
    out = tmp_path / "orphans"
    launcher = subprocess.Popen([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                                 "--num_machines", "1", "--main_process_port", str(free_port()),
                                 "--mixed_precision", "no", "--dynamo_backend", "no",
                                 "-m", "hybridwrap.train", "--config", str(config), "--output-dir", str(out),
                                 "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env={**ENV, "OMP_NUM_THREADS": "1"})
    head = wait_for_output(launcher.stderr, "checkpoints/step-")
    workers = _children(launcher.pid)
    assert len(workers) == 2
    launcher.kill()  # kill -9 of the launcher alone
    launcher.wait()
    assert wait_for_exit(workers) == [], "the workers outlived their launcher"
    assert "the launcher (pid" in head + launcher.stderr.read()


@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="../shared/data/cifar10.npz not present")
def test_readme_cifar10_command_killed_then_resumed_is_bit_identical(tmp_path):
    """The documented CIFAR-10 command (shortened by overrides), kill -9, then the same command plus --resume."""
    import shlex

    line = next(x for x in (REPO / "docs" / "own-data.md").read_text().splitlines()
                if x.startswith("hybridwrap train --baseline --dataset cifar10 --data-path"))
    readme = shlex.split(line)[1:]
    readme[readme.index("--data-path") + 1] = str(SHARED_CIFAR)
    shorter = ["--max-steps", "6", "--no-progress", "--set", "checkpoint_every=2", "--set", "eval_every=1000",
               "--set", "data.max_train_images=500", "--set", "data.max_eval_images=50", "--set", "data.num_labels=100",
               "--set", "data.labeled_batch_size=10", "--set", "data.unlabeled_batch_size=20"]

    def command(out: Path) -> list[str]:
        args = list(readme)
        args[args.index("--output-dir") + 1] = str(out)
        return cli(*args, *shorter)

    straight = subprocess.run(command(tmp_path / "a"), capture_output=True, text=True, env=ENV)
    assert straight.returncode == 0, straight.stderr
    run_b = tmp_path / "b"
    proc = subprocess.Popen(command(run_b), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    try:
        wait_for_output(proc.stderr, "checkpoints/step-00000004", timeout=300)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert not (run_b / "metrics.json").exists(), "the run finished before it could be killed"
    resumed = subprocess.run(command(run_b) + ["--resume"], capture_output=True, text=True, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    for sub in ("", "baseline"):
        a, b = _weights(tmp_path / "a" / sub), _weights(run_b / sub)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (sub, k)


def test_stl10_places365_config_end_to_end_on_the_binary_release_layout(tmp_path):
    """configs/stl10_places_resnet50.yaml at 224 px on a tiny STL-10 binary fixture (unlabeled split, folds) with a
    Places365 checkpoint in the 2017 layout: a few steps on CPU, then eval."""
    import timm

    from conftest import make_stl10_binary

    make_stl10_binary(tmp_path / "stl10_binary", n_train=20, n_test=4, n_unlabeled=10, fold_size=10)
    net = timm.create_model("resnet50", num_classes=365)
    state = {"module." + k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save({"epoch": 90, "arch": "resnet50", "state_dict": state}, tmp_path / "resnet50_places365.pth.tar",
               _use_new_zipfile_serialization=False, pickle_protocol=2)
    out = tmp_path / "stl"
    done = subprocess.run(cli(
        "train", "--config", str(REPO / "configs" / "stl10_places_resnet50.yaml"), "--data-path",
        str(tmp_path / "stl10_binary"), "--output-dir", str(out), "--max-steps", "2", "--no-progress",
        "--set", f"model.backbone_kwargs={{checkpoint_path: {tmp_path / 'resnet50_places365.pth.tar'}}}",
        "--set", "data.num_labels=10", "--set", "data.labeled_batch_size=2", "--set", "data.unlabeled_batch_size=2",
        "--set", "data.eval_batch_size=4", "--set", "eval_every=1000", "--set", "checkpoint_every=1000"),
        capture_output=True, text=True, env={**ENV, "OMP_NUM_THREADS": "2"}, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["dataset"] == "stl10" and m["steps"] == 2 and m["test_images"] == 4
    labels = json.loads((out / "labels.json").read_text())
    assert len(labels["labeled"]) == 10
    # the 10 unlabeled training images + the 10 of the unlabeled split (the labeled 10 are not in the pool)
    assert "20 in the unlabeled pool" in done.stderr
    assert "protocol: HybridNet §4.2 Table 3 STL-10" in done.stderr  # the config's protocol line, at start-up
    assert "read from disk on access, crop_flip augmentation" in done.stderr  # 224 px: the ImageNet recipe
    saved = json.loads((out / "model" / "config.json").read_text())["model"]
    assert saved["input_size"] == [224, 224] and saved["backbone"] == "places365_resnet50"


def test_ctrl_c_under_hybridwrap_launch_is_one_line_with_the_resume_command(tiny_config, tmp_path):
    config = tiny_config(max_steps=100000, checkpoint_every=3, eval_every=100000)
    out = tmp_path / "int2"
    proc = subprocess.Popen(cli("launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                                "--main_process_port", str(free_port()),
                                "--mixed_precision", "no", "--dynamo_backend", "no", "train", "--config", str(config),
                                "--output-dir", str(out), "--no-progress"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**ENV, "OMP_NUM_THREADS": "1"})
    head = wait_for_output(proc.stderr, "checkpoints/step-")
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    err = head + proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "death signal" not in err
    assert err.count("hybridwrap: error: interrupted. The last checkpoint is") == 1
    assert f"continue with: hybridwrap train --resume --output-dir {out}" in err


def test_config_show_round_trips_and_keys_lists_every_field(tmp_path, capsys):
    import yaml

    from hybridwrap.cli import main as cli_main
    from hybridwrap.config import to_dict

    assert cli_main(["config", "--show", "--set", "loss.lambda_rec=0.5"]) == 0
    shown = capsys.readouterr().out
    (tmp_path / "shown.yaml").write_text(shown)
    again = load_config([tmp_path / "shown.yaml"])  # the printed YAML is a config train takes
    assert again.loss.lambda_rec == 0.5 and "model.decoder" in shown.splitlines()[1]
    # the precision shown is this machine's, and the comment says where it came from
    assert again.mixed_precision in ("no", "bf16", "fp16") and shown.splitlines()[2].startswith("# (mixed_precision: auto")
    assert cli_main(["config", "--keys"]) == 0
    keys = {line.split("=", 1)[0][len("--set "):] for line in capsys.readouterr().out.splitlines()}
    fields = to_dict(again)
    expected = {f"{s}.{k}" for s, sec in fields.items() if isinstance(sec, dict) for k in sec}
    expected |= {s for s, v in fields.items() if not isinstance(v, dict)}
    assert keys == expected and {"model.decoder", "data.fold", "log_level"} <= keys


def test_a_set_the_preset_agrees_with_takes_effect():
    import argparse

    from hybridwrap.resolution import apply_preset
    from hybridwrap.train_cli import add_train_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    cfg = config_from_args(parser.parse_args(["--preset", "table2_d", "--set", "loss.balance=false"]))
    apply_preset(cfg)
    assert cfg.preset == "table2_d" and cfg.loss.balance is False and cfg.loss.intermediate is True
