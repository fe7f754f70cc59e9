"""A run directory nothing can corrupt: resume of one run of several, a finished run, two processes on one run."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ENV_TESTS, wait_for_output, write_config
from hybridwrap.train import checkpoint_dirs


def _cli(*args):
    return [sys.executable, "-m", "hybridwrap.cli", *map(str, args)]


def _digest(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_resume_of_one_seed_resumes_that_run_alone_and_nests_nothing(tmp_path):
    config = write_config(tmp_path / "c.yaml", seeds=2, run_processes=1, max_steps=2)
    out = tmp_path / "r2"
    first = subprocess.run(_cli("train", "--config", config, "--output-dir", out, "--baseline", "--no-progress"),
                           capture_output=True, text=True, env=ENV_TESTS)
    assert first.returncode == 0, first.stderr
    def run_dirs():
        return sorted(p.parent.relative_to(out) for p in out.rglob("train_config.json"))

    before = run_dirs()
    # one seed, extended: that run alone continues, nothing is nested inside it
    again = subprocess.run(_cli("train", "--resume", "--output-dir", out / "seed-1", "--max-steps", 3, "--no-progress"),
                           capture_output=True, text=True, env=ENV_TESTS)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "seed-1" / "metrics.json").read_text())["steps"] == 3
    assert json.loads((out / "seed-0" / "metrics.json").read_text())["steps"] == 2
    assert run_dirs() == before == [Path("baseline/seed-0"), Path("baseline/seed-1"), Path("seed-0"), Path("seed-1")]
    assert "classification" not in again.stdout.split("run directory")[0].split("test accuracy")[1]
    # --baseline on one seed names the command's directory instead, and changes nothing
    digest = _digest(out)
    refused = subprocess.run(_cli("train", "--resume", "--output-dir", out / "baseline" / "seed-0", "--baseline"),
                             capture_output=True, text=True, env=ENV_TESTS)
    assert refused.returncode == 4, refused.stderr
    assert f"is one run of the command in {out}, resumed alone; for the whole command: hybridwrap train --resume " \
           f"--output-dir {out}" in refused.stderr
    assert _digest(out) == digest


def test_resuming_a_finished_run_says_so_and_writes_nothing(tmp_path):
    config = write_config(tmp_path / "c.yaml", max_steps=2)
    out = tmp_path / "done"
    assert subprocess.run(_cli("train", "--config", config, "--output-dir", out, "--no-progress"),
                          capture_output=True, text=True, env=ENV_TESTS).returncode == 0
    digest = _digest(out)
    again = subprocess.run(_cli("train", "--resume", "--output-dir", out, "--no-progress"), capture_output=True,
                           text=True, env=ENV_TESTS)
    assert again.returncode == 0, again.stderr
    assert "finished already (2 steps), nothing written" in again.stderr
    assert _digest(out) == digest


def test_a_second_process_on_one_run_is_refused_at_once_and_a_killed_one_leaves_no_stale_lock(tmp_path):
    config = write_config(tmp_path / "c.yaml", max_steps=100000, checkpoint_every=3, eval_every=100000)
    out = tmp_path / "busy"
    first = subprocess.Popen(_cli("train", "--config", config, "--output-dir", out), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=ENV_TESTS, start_new_session=True)
    try:
        wait_for_output(first.stderr, "checkpoints/step-")
        t0 = time.time()
        second = subprocess.run(_cli("train", "--config", config, "--output-dir", out, "--resume"),
                                capture_output=True, text=True, env=ENV_TESTS)
        assert second.returncode == 2, second.stderr
        assert f"{out} is being written by another hybridwrap train (pid {first.pid})" in second.stderr
        assert time.time() - t0 < 60
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # kill -9: the kernel drops its lock
        first.communicate()
    step = int(checkpoint_dirs(out)[-1].name[len("step-"):])
    resumed = subprocess.run(_cli("train", "--resume", "--output-dir", out, "--max-steps", step + 1, "--no-progress"),
                             capture_output=True, text=True, env=ENV_TESTS)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "metrics.json").read_text())["steps"] == step + 1
    assert not (out / ".lock").exists()


def test_a_failed_start_of_runs_side_by_side_removes_the_folders_they_shared_and_keeps_any_file(tmp_path):
    from hybridwrap.train.rundir import first_missing, remove_if_empty

    out = tmp_path / "out"
    created = first_missing(out / "baseline")
    assert created == out
    (out / "baseline").mkdir(parents=True)  # one run removed its own folder, another made it again, then failed
    (out / "hybridnet").mkdir()
    remove_if_empty(created)
    assert not out.exists()
    (out / "baseline").mkdir(parents=True)
    (out / "baseline" / "train.log").write_text("kept: a run wrote it\n")
    remove_if_empty(created)
    assert (out / "baseline" / "train.log").is_file()
    remove_if_empty(None)
