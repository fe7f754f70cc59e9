"""Smoke tests: every benchmark script runs for a couple of steps and writes its results file.

The benchmarks themselves are not part of CI; these only prove the scripts work.
"""

import json
import subprocess
import sys

import pytest

from conftest import REPO, SHARED_CIFAR

BENCH = REPO / "benchmarks"


def _run(*args, timeout=600):
    done = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=REPO, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="../shared/data/cifar10.npz not present")
def test_ablation_and_render_smoke(tmp_path):
    results, runs = tmp_path / "results", tmp_path / "runs"
    common = ["--data", SHARED_CIFAR, "--iterations", 2, "--eval-every", 2, "--limit-images", 1500, "--val-size", 300,
              "--labels", 100, "--width", 0.125, "--tag", "smoke", "--results-dir", results, "--runs-dir", runs]
    _run(BENCH / "ablation.py", "--presets", "classification_stability", "full", *common)
    files = sorted(results.glob("ablation-*.json"))
    assert len(files) == 2
    r = json.loads(files[-1].read_text())
    for key in ("preset", "dataset", "labels", "seed", "backbone", "width", "iterations", "test_acc", "teacher_test_acc",
                "val_acc", "seconds", "device", "commit", "curve", "command"):
        assert key in r, key
    assert r["dataset"] == "cifar10-jpegtest" and r["iterations"] == 2
    again = _run(BENCH / "ablation.py", "--presets", "full", *common)  # accumulate: a finished run is skipped
    assert "[skip]" in again
    _run(BENCH / "render_results.py", "--results-dir", results, "--output", tmp_path / "R.md")
    md = (tmp_path / "R.md").read_text()
    assert "| full |" in md and "| classification_stability |" in md and "python benchmarks/ablation.py" in md


def test_cost_smoke(tmp_path):
    out = tmp_path / "cost.json"
    _run(BENCH / "cost.py", "--backbones", "convlarge", "--size", 16, "--batch", 2, "--rounds", 1, "--steps", 1,
         "--width", 0.125, "--output", out)
    res = json.loads(out.read_text())
    b = res["backbones"][0]
    assert set(b["setups"]) == {"backbone", "mean_teacher", "hybridnet"}
    assert b["setups"]["hybridnet"]["gflops"] > b["setups"]["backbone"]["gflops"] > 0
    assert b["inference"]["same_parameters"] and b["inference"]["same_logits"]


def test_step_options_smoke(tmp_path):
    out = tmp_path / "opts.json"
    _run(BENCH / "step_options.py", "--width", 0.125, "--steps", 1, "--rounds", 1, "--options", "fp32", "bf16",
         "--output", out)
    res = json.loads(out.read_text())
    assert res["options"]["fp32"]["speedup_vs_fp32"] == 1.0 and "bf16" in res["options"]


def test_gpu_check_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(BENCH / "gpu_check.sh")], check=True)
    subprocess.run(["bash", "-n", str(BENCH / "cpu_ablation.sh")], check=True)
