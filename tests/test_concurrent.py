"""Several runs of one command at once (hybridwrap.train.concurrent): the plan, exact results, failures."""

import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import write_config
from hybridwrap.config import load_config
from hybridwrap.errors import ConfigError, DataError
from hybridwrap.train import seed_configs, train, train_with_baseline
from hybridwrap.train.concurrent import Plan, plan, queue_order, train_concurrently
from hybridwrap.train.seeds import baseline_config


def _cfg(tmp_path, **changes):
    return load_config(write_config(tmp_path / "c.yaml", **changes), [f"output_dir={tmp_path / 'run'}"])


@pytest.mark.parametrize("cuda, cores, setting, runs, expected", [
    (False, 2, 0, 6, (2, 1)),  # the first command on 2 cores: two runs at a time, one thread each
    (False, 8, 0, 2, (2, 4)),  # fewer runs than cores: the cores shared out as threads
    (False, 1, 0, 6, (1, None)),  # one core: nothing to gain
    (True, 8, 0, 6, (1, None)),  # one GPU: the runs would share it
    (False, 2, 1, 6, (1, None)),  # asked for one at a time
    (False, 8, 3, 6, (3, 2)),  # at most 3 at once
    (False, 2, 0, 1, (1, None)),  # a single run
])
def test_the_plan_follows_the_hardware_and_the_setting(tmp_path, cuda, cores, setting, runs, expected):
    p = plan(_cfg(tmp_path, run_processes=setting), runs, cuda=cuda, cores=cores)
    assert p.processes == expected[0]
    if expected[1] is not None:
        assert p.threads == expected[1]
    assert p.reason in p.describe()


def test_a_negative_run_processes_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="run_processes must be 0"):
        plan(_cfg(tmp_path, run_processes=-1), 2)


def _weights(run_dir):
    return load_file(str(run_dir / "model" / "model.safetensors"))


def test_a_seed_gives_the_same_numbers_alone_or_beside_another(tmp_path):
    """Seed 1 trained beside seed 0 (two processes, one thread each) equals seed 1 trained alone on one thread:
    the same accuracies and bit-identical weights."""
    cfg = _cfg(tmp_path, seeds=2, run_processes=2)
    side_by_side = train_with_baseline(cfg)
    assert [r["threads"] for r in side_by_side] == [1, 1]
    alone_cfg = seed_configs(_cfg(tmp_path, seeds=2, run_processes=1, output_dir=str(tmp_path / "alone")))[1]
    alone_cfg.output_dir = str(tmp_path / "alone")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = train(alone_cfg)
    finally:
        torch.set_num_threads(threads)
    keys = ("test_acc", "teacher_test_acc", "seed", "labels_seed", "steps", "threads")
    assert {k: alone[k] for k in keys} == {k: side_by_side[1][k] for k in keys}
    together, single = _weights(tmp_path / "run" / "seed-1"), _weights(tmp_path / "alone")
    assert together.keys() == single.keys()
    assert all(torch.equal(together[k], single[k]) for k in together)


def _late_config_then_done(cfg, resume=False, report=None):
    """A stand-in for `train` (a worker imports it by name): run 0 writes its config two seconds in, as a run does
    once its data has resolved it; the baseline says whether run 0's config was there when it began."""
    run_dir = Path(cfg.output_dir)
    if cfg.preset == "classification":
        return {"saw_the_commands_config": (run_dir.parent / "train_config.json").is_file()}
    time.sleep(2.0)
    run_dir.mkdir(parents=True)
    (run_dir / "train_config.json").write_text("{}")
    return {}


class _Clock:
    def begin(self, i, at): pass
    def paced(self, i, pace): pass
    def end(self, i, at): pass


def test_no_run_starts_before_the_commands_own_run_has_written_its_config(tmp_path):
    """A command killed at any moment leaves a directory whose ``--resume`` knows the command: its own run's config
    exists before any other run of it (here the baseline, quicker to start) writes a file."""
    cfg = _cfg(tmp_path, compare_baseline=True)
    runs = seed_configs(cfg) + seed_configs(baseline_config(cfg))
    results = train_concurrently(_late_config_then_done, runs, queue_order(runs), Plan(2, 1, "test"), _Clock())
    assert results == [{}, {"saw_the_commands_config": True}]


def _fails_before_its_config(cfg, resume=False, report=None):
    """A stand-in for `train`: run 0 fails before writing its config; any other run that begins leaves a file."""
    run_dir = Path(cfg.output_dir)
    if cfg.preset != "classification":
        raise ConfigError("run 0 failed before its config")
    run_dir.mkdir(parents=True)
    (run_dir / "began").write_text("")
    return {}


def test_when_the_commands_own_run_fails_before_its_config_no_other_run_starts(tmp_path):
    cfg = _cfg(tmp_path, compare_baseline=True)
    runs = seed_configs(cfg) + seed_configs(baseline_config(cfg))
    with pytest.raises(ConfigError, match="run 0 failed before its config"):
        train_concurrently(_fails_before_its_config, runs, queue_order(runs), Plan(2, 1, "test"), _Clock())
    assert not (tmp_path / "run").exists()


def test_a_data_mistake_is_found_before_any_worker_starts(tmp_path):
    cfg = _cfg(tmp_path, seeds=2, run_processes=2, data={"num_labels": 5000})
    with pytest.raises(DataError, match="num_labels"):
        train_with_baseline(cfg)
    assert not (tmp_path / "run").exists()


def test_a_run_that_fails_in_its_worker_stops_the_command_with_its_own_error(tmp_path):
    from hybridwrap.errors import TrainingError

    cfg = _cfg(tmp_path, seeds=2, run_processes=2, max_steps=6, checkpoint_every=100, optim={"lr": 1e30})
    with pytest.raises(TrainingError, match="Non-finite loss at step 1"):
        train_with_baseline(cfg)
    assert not (tmp_path / "run" / "seed-0").exists() and not (tmp_path / "run" / "seed-1").exists()


@pytest.mark.parametrize("whole_group", [True, False], ids=["terminal-ctrl-c", "signal-to-the-command-alone"])
def test_ctrl_c_stops_every_run_and_names_the_resume_command(tmp_path, whole_group):
    """Runs side by side stop on Ctrl-C, each keeping its last checkpoint: one line, exit 130, no worker left."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import ENV_TESTS, wait_for_output
    from hybridwrap.train import checkpoint_dirs

    config = write_config(tmp_path / "c.yaml", seeds=2, run_processes=2, max_steps=100000, checkpoint_every=3,
                          eval_every=100000)
    out = tmp_path / "int"
    proc = subprocess.Popen([sys.executable, "-m", "hybridwrap.cli", "train", "--config", str(config), "--output-dir",
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV_TESTS,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        head = wait_for_output(proc.stderr, *(f"seed-{s}/checkpoints/step-" for s in (0, 1)))  # both runs' lines
        if whole_group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        err = head + proc.communicate(timeout=120)[1]
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # a failed wait must not leave trainings beside the rest of the suite
        except ProcessLookupError:
            pass
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-2000:]
    assert err.count("hybridwrap: error: interrupted. The last checkpoint is") == 1, err[-2000:]
    assert f"continue with: hybridwrap train --resume --output-dir {out}" in err
    assert all(checkpoint_dirs(out / f"seed-{s}") for s in (0, 1))


def test_a_kill_9_of_the_command_ends_its_workers_too(tmp_path):
    """Workers never outlive their command: otherwise they would go on training and hold the run's lock."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import ENV_TESTS, wait_for_exit, wait_for_output

    config = write_config(tmp_path / "c.yaml", seeds=2, run_processes=2, max_steps=100000, checkpoint_every=3,
                          eval_every=100000)
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "hybridwrap.cli", "train", "--config", str(config), "--output-dir",
                             str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV_TESTS,
                            start_new_session=True)
    try:
        wait_for_output(proc.stderr, *(f"seed-{s}/checkpoints/step-" for s in (0, 1)))
        workers = [int((out / f"seed-{s}" / ".lock").read_text()) for s in (0, 1)]  # each run's lock names its worker
        proc.send_signal(signal.SIGKILL)  # the command alone
        proc.wait()
        alive = wait_for_exit(workers, timeout=10)
        assert not alive, f"workers {alive} outlived their command"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
