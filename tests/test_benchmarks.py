"""Smoke tests: every benchmark script runs for a couple of steps and writes its results file.

The benchmarks themselves are not part of CI; these only prove the scripts work.
"""

import json
import os
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
              "--labels", 100, "--width", 0.125, "--tag", "protocol", "--results-dir", results, "--runs-dir", runs]
    _run(BENCH / "ablation.py", "--presets", "classification", "classification_stability", "full", *common)
    files = sorted(results.glob("ablation-*.json"))
    assert len(files) == 3
    r = json.loads(files[-1].read_text())
    for key in ("preset", "dataset", "labels", "seed", "backbone", "width", "iterations", "test_acc", "teacher_test_acc",
                "val_acc", "seconds", "resumed_from_step", "device", "commit", "curve", "command"):
        assert key in r, key
    assert r["dataset"] == "cifar10-jpegtest" and r["iterations"] == 2 and r["resumed_from_step"] == 0
    assert r["config"] == ["configs/cifar10_convlarge.yaml"] and r["overrides"] == [] and r["protocol"]
    from hybridwrap.hardware import cpu_capability

    assert r["cpu_capability"] == cpu_capability()  # this CPU as torch sees it (the emulation reaches the script too)
    again = _run(BENCH / "ablation.py", "--presets", "full", *common)  # accumulate: a finished run is skipped
    assert "[skip]" in again
    study = [a if a != "protocol" else "study-lams" for a in common]
    _run(BENCH / "ablation.py", "--presets", "classification_stability", *study, "--set", "loss.lambda_stability=10")
    _run(BENCH / "fit_gap.py", "--runs-dir", runs, "--results-dir", results)
    fit = json.loads((results / "fitgap-protocol-full-w0.125-n100-it2-s0.json").read_text())
    assert fit["labels"] == 100 and fit["val_size"] == 300
    assert fit["student_gap"] == fit["student_labeled_acc"] - fit["student_val_acc"]
    assert "teacher_labeled_acc" not in fit  # the Table 1 protocol's Temporal Ensembling has no teacher network
    study_fit = json.loads((results / "fitgap-study-lams-classification_stability-w0.125-n100-it2-s0.json").read_text())
    assert study_fit["labels"] == 100
    assert len(list(results.glob("fitgap-*.json"))) == 4
    _run(BENCH / "render_results.py", "--results-dir", results, "--output", tmp_path / "R.md")
    md = (tmp_path / "R.md").read_text()
    assert "## Table 1 under the shipped protocol" in md and "configs/cifar10_convlarge.yaml` run as it is" in md
    assert "| full |" in md and "| classification_stability |" in md and "python benchmarks/ablation.py" in md
    assert "| full − classification | " in md and "Conclusion, on validation" in md
    # the one-knob studies of 0.1-0.2's recipe render on the archive's page
    _run(BENCH / "history" / "render.py", "--results-dir", results, "--output", tmp_path / "H.md")
    assert "| study-lams | --set loss.lambda_stability=10 | classification_stability |" in (tmp_path / "H.md").read_text()


def test_fit_gap_without_runs_names_the_fix(tmp_path):
    done = subprocess.run([sys.executable, BENCH / "fit_gap.py", "--runs-dir", tmp_path], capture_output=True, text=True)
    assert done.returncode != 0 and "benchmarks/ablation.py first" in done.stderr


def test_cost_smoke(tmp_path):
    out = tmp_path / "cost.json"
    _run(BENCH / "cost.py", "--backbones", "convlarge", "--size", 16, "--batch", 2, "--rounds", 1, "--steps", 1,
         "--width", 0.125, "--output", out)
    res = json.loads(out.read_text())
    b = res["backbones"][0]
    assert set(b["setups"]) == {"backbone", "mean_teacher", "hybridnet-mirror", "hybridnet-light", "hybridnet-generic"}
    for decoder in ("mirror", "light", "generic"):
        assert b["setups"][f"hybridnet-{decoder}"]["gflops"] > b["setups"]["backbone"]["gflops"] > 0
    assert b["inference"]["same_parameters"] and b["inference"]["same_logits"]


@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="../shared/data/cifar10.npz not present")
def test_streaming_smoke(tmp_path):
    results = tmp_path / "results"
    _run(BENCH / "streaming.py", "--data", SHARED_CIFAR, "--pools", 20, 60, "--size", 32, "--steps", 4, "--per-class", 2,
         "--labeled", 2, "--unlabeled", 2, "--eval-images", 10, "--loader-steps", 3, "--work-dir", tmp_path / "pools",
         "--results-dir", results)
    res = json.loads((results / "streaming-cpu.json").read_text())
    assert [p["unlabeled_images"] for p in res["pools"]] == [20, 60] == [p["files_on_disk"] for p in res["pools"]]
    for pool in res["pools"]:
        assert pool["train"]["peak_pss_mib"] > 50 and pool["train"]["processes_at_peak"] >= 2  # trainer + a worker
        assert pool["train"]["step_s"] > 0 and [r["workers"] for r in pool["loader"]] == [0, 1, 2]
        assert all(r["images"] == 3 * 4 for r in pool["loader"])  # 3 steps of 2 + 2 images (this process's share)
    _run(BENCH / "render_results.py", "--results-dir", results, "--output", tmp_path / "R.md")
    md = (tmp_path / "R.md").read_text()
    assert "## Memory and loader speed with an on-disk unlabeled pool" in md and "| 60 | " in md


def test_step_options_smoke(tmp_path):
    out = tmp_path / "opts.json"
    _run(BENCH / "step_options.py", "--width", 0.125, "--steps", 1, "--rounds", 1, "--options", "fp32", "bf16",
         "--output", out)
    res = json.loads(out.read_text())
    assert res["options"]["fp32"]["speedup_vs_fp32"] == 1.0 and "bf16" in res["options"]


def test_first_command_cost_smoke(tmp_path):
    out = tmp_path / "cost.json"
    _run(BENCH / "first_command_cost.py", "--steps", 1, "--rounds", 1, "--candidates", "12px-20+40", "--output", out)
    res = json.loads(out.read_text())
    row = res["candidates"]["12px-20+40"]
    assert row["full_s_per_step"] > 0 and row["baseline_s_per_step"] > 0 and res["precision"] == "no (fp32)"
    assert res["cpu_capability"] and res["cpu_emulation"] == os.environ.get("HYBRIDWRAP_CPU_EMULATION")


def test_no_native_bf16_emulation_makes_auto_precision_fp32():
    """benchmarks/no_native_bf16 stands in for a CPU without native bf16: auto precision must then be fp32."""
    env = {**os.environ, "PYTHONPATH": f"{BENCH / 'no_native_bf16'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    code = ("import os, sys; from hybridwrap.hardware import cpu_capability, resolve_precision; "
            "assert 'torch' in sys.modules; print(resolve_precision('auto', cuda=False)[0], cpu_capability(), '|', "
            "os.environ['HYBRIDWRAP_CPU_EMULATION'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no ") and "(no native bf16)" in done.stdout and "ATEN_CPU_CAPABILITY=avx2" in done.stdout
    plain = subprocess.run([sys.executable, "-c", "import sys; print('torch' in sys.modules)"],
                           capture_output=True, text=True, env=env)
    assert plain.stdout.strip() == "False"  # the hook imports nothing itself: torch-free commands stay torch-free


def test_benchmark_shell_scripts_are_valid_bash():
    scripts = sorted(BENCH.rglob("*.sh"))
    assert {p.name for p in scripts} >= {"gpu_check.sh", "protocol_study.sh", "quickstart_selection.sh"}
    for script in scripts:  # every one of them, so a new script is checked without a line here
        subprocess.run(["bash", "-n", str(script)], check=True)


def test_the_gpu_check_runs_table_1s_four_presets_and_prints_their_table(tmp_path):
    """The prepared GPU check, as a dry run on the CPU (a tiny network, 4 steps): it trains the four presets the
    question turns on, keeps each one's JSON where $OUT points as soon as it is written, and prints their table."""
    import numpy as np

    rng = np.random.default_rng(0)
    data = tmp_path / "cifar-like.npz"
    np.savez(data, x_train=rng.integers(0, 256, (200, 32, 32, 3), dtype=np.uint8), y_train=np.arange(200) % 10,
             x_test=rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8), y_test=np.arange(50) % 10,
             class_names=np.array([f"c{i}" for i in range(10)]))
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "DRY_RUN": "1", "HYBRIDWRAP_CIFAR10_NPZ": str(data), "OUT": str(out),
           "RESULTS_DIR": str(tmp_path / "results"), "RUNS_DIR": str(tmp_path / "runs")}
    done = subprocess.run(["bash", str(BENCH / "gpu_check.sh")], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    presets = ("classification_stability", "full", "autoencoder_stability", "classification")
    assert sorted(p.name for p in out.iterdir()) == sorted(f"ablation-gpu-dry-{p}-w0.125-n20-it4-s0.json"
                                                           for p in presets)
    table = [line for line in done.stdout.splitlines() if " seed 0 it " in line]
    assert sorted(line.split()[0] for line in table) == sorted(presets)


def test_results_md_is_exactly_what_the_committed_json_renders(tmp_path):
    """RESULTS.md is generated, never edited: rendering the committed results again gives it byte for byte."""
    out = tmp_path / "RESULTS.md"
    _run(BENCH / "render_results.py", "--output", out)
    assert out.read_text() == (BENCH / "RESULTS.md").read_text()
    assert len(out.read_text().splitlines()) <= 400  # the current studies; the archive renders on its own


def test_the_archive_is_exactly_what_its_json_renders(tmp_path):
    """benchmarks/history/RESULTS.md: hybridwrap 0.1-0.3's results, rendered on their own, byte for byte."""
    out = tmp_path / "RESULTS.md"
    _run(BENCH / "history" / "render.py", "--output", out)
    assert out.read_text() == (BENCH / "history" / "RESULTS.md").read_text()
    assert (tmp_path / "results" / "curves.png").is_file()  # the plot goes beside the output, not into the repo
    current = {p.name for p in (BENCH / "results").glob("*.json")}
    assert not current & {p.name for p in (BENCH / "history" / "results").glob("*.json")}


@pytest.mark.parametrize("page", ["RESULTS.md", "history/RESULTS.md"])
def test_reproduce_lines_use_repository_relative_paths(page):
    md = (BENCH / page).read_text()
    blocks = md.split("```bash")[1:]
    commands = [line for block in blocks for line in block.split("```")[0].splitlines() if line.strip()]
    assert commands
    absolute = [c for c in commands if any(tok.startswith("/") for tok in c.split())]
    assert not absolute, absolute[:3]
