"""Does memory grow with the unlabeled pool, and does the loader keep up with training? (224 px, on disk)

    python benchmarks/streaming.py --data ../shared/data/cifar10.npz --pools 2000 50000

For each pool size, an ImageFolder is written outside the repository (``--work-dir``): the same labeled
``train/`` and ``test/`` images, and ``unlabeled/`` holding N CIFAR-10 training images as PNG files. Then:

1. **Peak memory of a training run.** ``hybridwrap train`` runs in a fresh subprocess on that folder at
   224 px (images upscaled when read) with its default loader workers; the benchmark samples the
   proportional set size (PSS, from /proc/PID/smaps_rollup: shared pages counted once) of the training
   process and its workers every 0.1 s, and reports the peak of their sum, with the RSS sum beside it.
2. **The loader alone.** The same batches (this run's augmentation, two views for the Mean Teacher) are
   made by ``StepBatches`` through the DataLoader with 0, 1 and 2 workers and no model: images per second,
   set beside the images per second the training step consumes (its batch over its measured step time).

The runs go one after the other in one invocation, so the two pool sizes are compared on the same machine
state. Writes benchmarks/results/streaming-<device>.json (rendered by render_results.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from hybridwrap.hardware import cpu_capability  # the SIMD level and native bf16, beside every time

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "cifar10.npz"


def write_pool(root: Path, npz: Path, n_unlabeled: int, per_class: int, n_test: int) -> Path:
    """An ImageFolder of CIFAR-10 PNGs: per_class labeled training images per class, n_test test images and
    n_unlabeled unlabeled ones (kept between invocations: written once per size)."""
    from PIL import Image

    done = root / "complete.json"
    if done.is_file() and json.loads(done.read_text()) == {"unlabeled": n_unlabeled, "per_class": per_class,
                                                          "test": n_test}:
        return root
    with np.load(npz) as z:
        x_train, y_train, x_test, y_test = z["x_train"], z["y_train"].reshape(-1), z["x_test"], z["y_test"].reshape(-1)
    if n_unlabeled > len(x_train):
        raise SystemExit(f"--pools: at most {len(x_train)} unlabeled images (the CIFAR-10 training set)")
    for c in range(10):
        for split, xs, ys, n in (("train", x_train, y_train, per_class), ("test", x_test, y_test, n_test // 10)):
            folder = root / split / f"{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in np.flatnonzero(ys == c)[:n]:
                Image.fromarray(xs[i]).save(folder / f"{i:05d}.png")
    for i in range(n_unlabeled):
        folder = root / "unlabeled" / f"{i // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x_train[i]).save(folder / f"{i:05d}.png")
    done.write_text(json.dumps({"unlabeled": n_unlabeled, "per_class": per_class, "test": n_test}))
    return root


def run_config(root: Path, args) -> dict:
    return {
        "preset": "full", "max_steps": args.steps, "eval_every": 10 ** 6, "log_every": 1,
        "checkpoint_every": 10 ** 6, "progress_bar": False,
        "model": {"backbone": args.backbone, "num_classes": 10, "input_size": [args.size, args.size],
                  "decoder": args.decoder},
        "data": {"dataset": "imagefolder", "path": str(root), "image_size": args.size, "num_labels": 10 * args.per_class,
                 "labeled_batch_size": args.labeled, "unlabeled_batch_size": args.unlabeled,
                 "max_eval_images": args.eval_images},
        "loss": {"stability": "mean_teacher"},
    }


def _tree(pid: int) -> list[int]:
    """pid and its descendants (Linux /proc)."""
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += [int(c) for c in children]
        frontier += [int(c) for c in children]
    return found


def _memory_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in KiB; (0, 0) once it has exited."""
    try:
        pss = rss = 0
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
        return pss, rss
    except (OSError, ValueError):
        return 0, 0


def train_peak(config: dict, work: Path) -> dict:
    """Train in a fresh subprocess; peak PSS/RSS summed over it and its loader workers, and the step time."""
    import yaml

    run = work / "run"
    if run.exists():
        import shutil

        shutil.rmtree(run)
    cfg_file = work / "config.yaml"
    cfg_file.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen([sys.executable, "-m", "hybridwrap.cli", "train", "--config", str(cfg_file),
                             "--output-dir", str(run), "--no-progress", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = {"pss_kib": 0, "rss_kib": 0, "processes": 0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            pids = _tree(proc.pid)
            sizes = [_memory_kib(p) for p in pids]
            pss, rss = sum(s[0] for s in sizes), sum(s[1] for s in sizes)
            if pss > peak["pss_kib"]:
                peak.update(pss_kib=pss, rss_kib=rss, processes=len([s for s in sizes if s[0]]))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.communicate()[0]
    stop.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"training failed ({proc.returncode}):\n{output}")
    # step time from the train.log timestamps of the per-step train lines (log_every=1), past the first step
    stamps = []
    for line in (run / "train.log").read_text().splitlines():
        if " DEBUG step " in line and " lr=" in line:
            day, clock = line.split()[:2]
            stamps.append(time.mktime(time.strptime(f"{day} {clock.split(',')[0]}", "%Y-%m-%d %H:%M:%S"))
                          + int(clock.split(",")[1]) / 1000)
    step_s = (stamps[-1] - stamps[1]) / (len(stamps) - 2) if len(stamps) > 2 else None
    return {"peak_pss_mib": peak["pss_kib"] / 1024, "peak_rss_sum_mib": peak["rss_kib"] / 1024,
            "processes_at_peak": peak["processes"], "step_s": step_s, "steps_timed": max(len(stamps) - 2, 0)}


def loader_rate(root: Path, args, workers: int, steps: int) -> dict:
    """Images per second of the training batches (both views), made with ``workers`` workers and no model."""
    from hybridwrap.config import DataConfig
    from hybridwrap.data import load_data
    from hybridwrap.data.loader import step_batches, step_loader
    from hybridwrap.data.semisup import make_split

    data_cfg = DataConfig(dataset="imagefolder", path=str(root), image_size=args.size, labeled_batch_size=args.labeled,
                          unlabeled_batch_size=args.unlabeled)
    data = load_data(data_cfg)
    steps_ds = step_batches(data, make_split(data.train_y, 10, 10 * args.per_class, 0), data_cfg, 0, True)
    steps_ds.end = steps
    t0 = time.perf_counter()
    n = sum(len(b.images) for b in step_loader(steps_ds, workers))
    seconds = time.perf_counter() - t0
    return {"workers": workers, "steps": steps, "images": n, "seconds": seconds, "images_per_s": n / seconds,
            "augmentation": steps_ds.mode}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="CIFAR-10 .npz the pools are written from")
    p.add_argument("--pools", type=int, nargs="+", default=[2000, 50000], help="unlabeled pool sizes")
    p.add_argument("--work-dir", default="/tmp/hybridwrap-streaming", help="where the image folders go")
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--decoder", default="light")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=12, help="training steps per run")
    p.add_argument("--labeled", type=int, default=4)
    p.add_argument("--unlabeled", type=int, default=12)
    p.add_argument("--per-class", type=int, default=10, help="labeled images per class")
    p.add_argument("--eval-images", type=int, default=20)
    p.add_argument("--loader-steps", type=int, default=20)
    p.add_argument("--results-dir", default=str(RESULTS))
    args = p.parse_args()
    import torch

    work = Path(args.work_dir)
    pools = []
    for n in args.pools:
        root = write_pool(work / f"pool-{n}", Path(args.data), n, args.per_class, 10 * args.eval_images)
        files = sum(1 for _ in (root / "unlabeled").rglob("*.png"))
        print(f"pool {n}: training ({args.steps} steps at {args.size} px)", flush=True)
        run = train_peak(run_config(root, args), work / f"pool-{n}")
        print(f"  peak PSS {run['peak_pss_mib']:.0f} MiB, step {run['step_s']:.2f} s", flush=True)
        rates = []
        for workers in (0, 1, 2):
            rates.append(loader_rate(root, args, workers, args.loader_steps))
            print(f"  loader, {workers} workers: {rates[-1]['images_per_s']:.0f} images/s", flush=True)
        consumed = (args.labeled + args.unlabeled) / run["step_s"] if run["step_s"] else None
        pools.append({"unlabeled_images": n, "files_on_disk": files, "train": run, "loader": rates,
                      "training_consumes_images_per_s": consumed})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = {
        "benchmark": "streaming", "device": device, "cpus": os.cpu_count(), "platform": platform.platform(),
        "cpu_capability": cpu_capability(),
        "torch": torch.__version__, "backbone": args.backbone, "decoder": args.decoder, "size": args.size,
        "batch": [args.labeled, args.unlabeled], "steps": args.steps, "pools": pools,
        "pss_growth_mib": pools[-1]["train"]["peak_pss_mib"] - pools[0]["train"]["peak_pss_mib"],
        "command": "python benchmarks/streaming.py " + shlex.join(sys.argv[1:]),
    }
    out = Path(args.results_dir) / f"streaming-{device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
