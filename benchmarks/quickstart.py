"""The README's first command, measured: `hybridwrap train --baseline` on the embedded real MNIST, timed as a process.

    python benchmarks/quickstart.py                   # this CPU as it is
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 PYTHONPATH=benchmarks/no_native_bf16 \\
        python benchmarks/quickstart.py --tag avx2    # as on a 2-core CPU with AVX2 and no native bf16 (fp32)

Runs the command exactly as a user types it (configs/quickstart.yaml, the choice of benchmarks/first_command.py),
in a throw-away run directory, and writes ``results/quickstart-mnist5k[-TAG].json``: the wall-clock seconds of the
whole process, what it printed on stdout, each run's test and validation accuracy, the machine, its CPU capability,
the emulation where benchmarks/no_native_bf16 stood in for another CPU, and how the runs shared it. This is the one
look at the test set that the frontier's choice gets. ``render_results.py`` puts it into RESULTS.md and the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
COMMAND = ["hybridwrap", "train", "--baseline"]


def main() -> None:
    sys.path.insert(0, str(HERE))
    from machine import command_env, cpu_capability, git_commit
    from first_command import run_metrics, run_plan

    from hybridwrap.config import load_config

    own = argparse.ArgumentParser()
    own.add_argument("--tag", choices=["avx2"], help="write results/quickstart-mnist5k-avx2.json (the emulated CPU)")
    tag = own.parse_args().tag
    env = command_env(tag)
    cfg = load_config(REPO / "configs" / "quickstart.yaml")
    with tempfile.TemporaryDirectory(prefix="hybridwrap-quickstart-") as tmp:
        out = Path(tmp) / "runs" / "quickstart"
        t0 = time.perf_counter()  # the user's command, run from a fresh directory (its runs/ is the default)
        done = subprocess.run([sys.executable, "-m", "hybridwrap.cli", *COMMAND[1:], "--no-progress"], cwd=tmp,
                              capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - t0
        if done.returncode:
            sys.exit(f"the command failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        runs = [run_metrics(out / f"seed-{s}") for s in range(cfg.seeds)]
        if bool(env.get("HYBRIDWRAP_CPU_EMULATION")) and runs[0]["precision"] != "no":
            sys.exit("the emulation did not reach the command: it trained in " + runs[0]["precision"])
        runs += [run_metrics(out / "baseline" / f"seed-{s}") for s in range(cfg.seeds)]
    output = done.stdout.replace(str(Path(tmp)) + os.sep, "")  # the run directory as the user sees it
    record = {
        "command": " ".join(COMMAND), "config": "configs/quickstart.yaml", "seconds": round(seconds, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "cpu_capability": cpu_capability(),
        "cpu_emulation": os.environ.get("HYBRIDWRAP_CPU_EMULATION"), "precision": runs[0]["precision"],
        "plan": run_plan(), "commit": git_commit(), "seeds": cfg.seeds,
        "num_labels": cfg.data.num_labels, "max_steps": cfg.max_steps, "image_size": cfg.data.image_size,
        "batch": [cfg.data.labeled_batch_size, cfg.data.unlabeled_batch_size], "output": output,
        "runs": [{k: r.get(k) for k in ("preset", "seed", "labels_seed", "test_acc", "teacher_test_acc", "val_acc",
                                        "teacher_val_acc", "seconds", "threads")} for r in runs],
    }
    path = HERE / "results" / (f"quickstart-mnist5k-{tag}.json" if tag else "quickstart-mnist5k.json")
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(output)
    print(f"wrote {path} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
