"""The time estimates `hybridwrap train` prints, against the time its commands take on this machine.

    python benchmarks/estimates.py                    # this CPU as it is
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 PYTHONPATH=benchmarks/no_native_bf16 \\
        python benchmarks/estimates.py --tag avx2     # as on a 2-core CPU with AVX2 and no native bf16 (fp32)

Runs three commands as a user types them, one at a time, each in a throw-away directory:
- the README's first command, ``hybridwrap train --baseline`` (6 runs of the embedded real MNIST);
- ``hybridwrap train --dataset mnist5k --max-steps 500`` (configs/mnist5k.yaml, 3 seeds);
- an own-images run, ``hybridwrap train --dataset imagefolder --data-path my_images --backbone resnet18``, on a
  folder of 150 CIFAR-10 images written from ../shared/data/cifar10.npz (3 classes, 40 train and 10 test each).

For each: the command's estimate ("the command: about … in all", from the process's start) against the process's
wall-clock time, and each run's estimate ("about … to the end of this run") against the time from that line to the
run's "done" line in its train.log. Writes ``results/estimates[-TAG].json``; the issue's bar is ±20 %.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CIFAR = REPO.parent / "shared" / "data" / "cifar10.npz"
COMMANDS = {
    "first command": ["train", "--baseline"],
    "mnist5k, 500 steps": ["train", "--dataset", "mnist5k", "--max-steps", "500"],
    "own images, resnet18": ["train", "--dataset", "imagefolder", "--data-path", "my_images", "--backbone", "resnet18"],
}
ABOUT = r"about (?:(\d+) min )?(\d+) s"


def seconds(match: re.Match) -> float:
    return 60 * int(match.group(1) or 0) + int(match.group(2))


def write_images(root: Path) -> None:
    import numpy as np
    from PIL import Image

    data = np.load(CIFAR)
    for split, x, y, n in (("train", data["x_train"], data["y_train"], 40), ("test", data["x_test"], data["y_test"], 10)):
        for c in range(3):
            folder = root / split / str(data["class_names"][c])
            folder.mkdir(parents=True, exist_ok=True)
            for i in np.flatnonzero(y == c)[:n]:
                Image.fromarray(x[i]).save(folder / f"{i}.png")


def log_time(line: str) -> float:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def run_estimates(workdir: Path) -> list[dict]:
    """Each run's estimate to its end against the time it took, from the train.log of every run under ``workdir``."""
    out = []
    for log in sorted(workdir.rglob("train.log")):
        lines = log.read_text().splitlines()
        paced = [(log_time(line), re.search(ABOUT + " to the end of this run", line)) for line in lines]
        paced = [(t, m) for t, m in paced if m]
        done = [log_time(line) for line in lines if " INFO done: " in line]
        if paced and done:
            estimated, measured = seconds(paced[0][1]), done[-1] - paced[0][0]
            out.append({"run": str(log.parent.relative_to(workdir)), "estimated_s": estimated,
                        "measured_s": round(measured, 1), "error_pct": round(100 * (estimated / measured - 1), 1)})
    return out


def main() -> None:
    sys.path.insert(0, str(HERE))
    from machine import command_env, cpu_capability, device_name, git_commit

    own = argparse.ArgumentParser()
    own.add_argument("--tag", choices=["avx2"], help="write results/estimates-avx2.json (the emulated CPU)")
    tag = own.parse_args().tag
    env = command_env(tag)
    commit = git_commit()  # the code the commands run
    commands = []
    for name, args in COMMANDS.items():
        with tempfile.TemporaryDirectory(prefix="hybridwrap-estimates-") as tmp:
            workdir = Path(tmp)
            if "my_images" in args:
                write_images(workdir / "my_images")
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "hybridwrap.cli", *args, "--no-progress"], cwd=tmp,
                                  capture_output=True, text=True, env=env)
            wall = time.perf_counter() - t0
            if done.returncode:
                sys.exit(f"{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
            said = re.search(r"the command: " + ABOUT + " in all", done.stdout + done.stderr)
            if said is None:
                sys.exit(f"{name}: no estimate of the command was printed")
            estimate = seconds(said)
            commands.append({"command": "hybridwrap " + " ".join(args), "name": name, "wall_s": round(wall, 1),
                             "estimated_s": estimate, "error_pct": round(100 * (estimate / wall - 1), 1),
                             "estimate_line": said.string[said.start():].splitlines()[0],
                             "runs": run_estimates(workdir)})
            print(f"{name}: estimated {estimate} s, took {wall:.1f} s ({commands[-1]['error_pct']:+.1f} %)", flush=True)
    record = {"commands": commands, "device": device_name(), "cpu_capability": cpu_capability(),
              "emulation": os.environ.get("HYBRIDWRAP_CPU_EMULATION") or None, "commit": commit,
              "python": sys.version.split()[0]}
    path = HERE / "results" / f"estimates{'-' + tag if tag else ''}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
