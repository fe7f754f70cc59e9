"""The first command's frontier: what HybridNet gains over its labeled-only baseline against what the command costs.

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 PYTHONPATH=benchmarks/no_native_bf16 \\
        python benchmarks/first_command.py --tag avx2     # fp32, as on a 2-core AVX2 CPU without native bf16
    python benchmarks/first_command.py --tag native       # this CPU as it is
    python benchmarks/first_command.py --choose           # the choice, from the avx2 JSON (validation only)

Each candidate is `hybridwrap train --baseline --config configs/mnist5k.yaml` with a few overrides that cut the
work of a step or of a run (image size, width, unlabeled batch, steps) and nothing of the method. One candidate also
takes 20 labels instead of 100 (``data.num_labels``) with the study's steps and unlabeled batch, so the same passes
over the unlabeled pool: the regime where the labels x budget study found reconstruction paying on top of Mean Teacher
with the fewest passes (``hybridwrap.budget.RECONSTRUCTION_PAYS``); it measures what the command costs there. Each is
3 seeds of HybridNet (``full``) and 3 of its labeled-only baseline, seed k on labeled subset k, the baseline with its
own tuned settings (``baseline_overrides``), both students scored on the 500 validation images held out of the
training set. The test split is never loaded here (``evaluate_test=false``). The command runs as a user runs it,
in its own process, timed from start to exit (imports, data, set-up, evaluations and checkpoints included), with
the concurrency the hardware gives it (``run_processes``: 0); the JSON records that plan, the thread count and
the CPU beside the time.

One JSON per candidate and tag, ``results/first-command-<candidate>-<tag>.json``; a candidate already measured is
skipped, so the frontier can be stopped and run again. One command at a time: never beside another training.

The choice (``--choose``, also rendered in RESULTS.md): of the candidates measured under the AVX2 emulation, the
cheapest whose paired lead on validation (full − classification, per seed) is at least ``LEAD`` points on average
and beyond its spread (mean − std > 0, the budget map's rule) with every seed ahead, and whose command takes at most
``MINUTES`` minutes; where none does, the cheapest that leads beyond its spread at all. The chosen
candidate becomes configs/quickstart.yaml (tests/test_first_command.py checks that it is); its test accuracy is
measured once, by benchmarks/quickstart.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
BASE = "configs/mnist5k.yaml"
LEAD = 3.0  # points on validation, mean over the seeds
MINUTES = 5.0  # the whole command, fp32 under the AVX2 emulation


def shape(px: int, width: float, unlabeled: int) -> list[str]:
    return [f"data.image_size={px}", f"model.input_size=[{px}, {px}]", f"model.backbone_kwargs={{width: {width}}}",
            f"data.unlabeled_batch_size={unlabeled}"]


# name -> (steps, overrides of configs/mnist5k.yaml). Every schedule is scaled to the steps (--max-steps), as in the
# budget map; the overrides change the cost of a step (image size, width, unlabeled batch) or the label count, never
# a loss or a λ (at 20 labels the study's selection chose mnist5k.yaml's own λs and baseline settings).
CANDIDATES = {
    "16px-w0.125-20+80-1000": (1000, shape(16, 0.125, 80)),
    "16px-w0.125-20+40-1500": (1500, shape(16, 0.125, 40)),
    "16px-w0.125-20+40-1000": (1000, shape(16, 0.125, 40)),
    "16px-w0.125-20+80-750": (750, shape(16, 0.125, 80)),
    "12px-w0.125-20+80-1000": (1000, shape(12, 0.125, 80)),
    "16px-w0.125-20+80-2000-n20": (2000, shape(16, 0.125, 80) + ["data.num_labels=20"]),
}


def result_path(name: str, tag: str, results: Path = RESULTS) -> Path:
    return results / f"first-command-{name}-{tag}.json"


def command(name: str, output_dir: Path) -> list[str]:
    steps, overrides = CANDIDATES[name]
    return [sys.executable, "-m", "hybridwrap.cli", "train", "--baseline", "--config", str(REPO / BASE),
            "--max-steps", str(steps), "--output-dir", str(output_dir), "--no-progress", "--quiet",
            *[f"--set={o}" for o in overrides + ["evaluate_test=false"]]]


def run_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def measure(name: str, tag: str, results: Path) -> dict:
    """Run the candidate's command once, timed as a whole process, and keep each run's validation scores."""
    from machine import cpu_capability, git_commit

    from hybridwrap.config import load_config

    seeds = load_config(REPO / BASE).seeds
    with tempfile.TemporaryDirectory(prefix="hybridwrap-first-command-") as tmp:
        out = Path(tmp) / "run"
        t0 = time.perf_counter()
        done = subprocess.run(command(name, out), cwd=REPO, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if done.returncode:
            sys.exit(f"{name}: the command failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        runs = {"full": [run_metrics(out / f"seed-{s}") for s in range(seeds)],
                "classification": [run_metrics(out / "baseline" / f"seed-{s}") for s in range(seeds)]}
    steps, overrides = CANDIDATES[name]
    keep = ("seed", "labels_seed", "val_acc", "teacher_val_acc", "seconds", "threads", "precision", "steps")
    record = {
        "benchmark": "first_command", "candidate": name, "tag": tag, "base": BASE, "steps": steps,
        "overrides": overrides, "seconds": round(seconds, 1), "minutes": round(seconds / 60, 2),
        "plan": run_plan(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "cpu_capability": cpu_capability(), "cpu_emulation": os.environ.get("HYBRIDWRAP_CPU_EMULATION"),
        "commit": git_commit(),
        "runs": {preset: [{k: r.get(k) for k in keep} for r in rs] for preset, rs in runs.items()},
    }
    record["paired_val"] = paired(record)
    path = result_path(name, tag, results)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def run_plan() -> str:
    """How the command shares this machine between its runs: the decision it makes itself (same function, same
    machine), as its start-up line says it."""
    from hybridwrap.config import load_config
    from hybridwrap.train.concurrent import plan

    cfg = load_config(REPO / BASE)
    return plan(cfg, 2 * cfg.seeds).describe()


def paired(record: dict) -> dict:
    """full − classification on validation, seed by seed: mean, std, seeds ahead."""
    diffs = [f["val_acc"] - c["val_acc"] for f, c in zip(record["runs"]["full"], record["runs"]["classification"])]
    return {"diffs": [round(d, 3) for d in diffs], "mean": round(statistics.fmean(diffs), 3),
            "std": round(statistics.stdev(diffs), 3) if len(diffs) > 1 else 0.0,
            "ahead": sum(d > 0 for d in diffs), "seeds": len(diffs)}


def beyond_spread(p: dict) -> bool:
    """A lead larger than its own spread, every seed ahead (the budget map's rule)."""
    return p["mean"] - p["std"] > 0 and p["ahead"] == p["seeds"] >= 2


def qualifies(record: dict, lead: float = LEAD, minutes: float = MINUTES) -> bool:
    p = record["paired_val"]
    return p["mean"] >= lead and beyond_spread(p) and record["minutes"] <= minutes


def choose(records: list[dict], lead: float = LEAD, minutes: float = MINUTES) -> tuple[dict | None, str]:
    """(the chosen record, why) among the AVX2-emulated records: the cheapest that qualifies; where none does, the
    cheapest that leads beyond its spread on validation at all (mean − std > 0, every seed ahead)."""
    timed = sorted((r for r in records if r["tag"] == "avx2"), key=lambda r: r["minutes"])
    for r in timed:
        if qualifies(r, lead, minutes):
            return r, (f"the cheapest candidate that leads on validation by at least {lead:g} points on average, beyond "
                       f"its spread with every seed ahead, in at most {minutes:g} minutes")
    for r in timed:
        if beyond_spread(r["paired_val"]) and r["minutes"] <= minutes:
            return r, (f"no candidate leads by {lead:g} points in {minutes:g} minutes: the cheapest that leads beyond "
                       "its spread on validation")
    return None, "no candidate leads beyond its spread on validation"


def load(results: Path = RESULTS) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("first-command-*.json"))
            if json.loads(p.read_text()).get("benchmark") == "first_command"]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tag", default="native", choices=["avx2", "native"],
                   help="avx2: run under benchmarks/no_native_bf16 (checked); native: this CPU as it is")
    p.add_argument("--candidates", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES))
    p.add_argument("--choose", action="store_true", help="print the choice from the committed JSON and exit")
    p.add_argument("--results-dir", default=str(RESULTS))
    args = p.parse_args(argv)
    results = Path(args.results_dir)
    if args.choose:
        chosen, why = choose(load(results))
        print(f"{chosen['candidate'] if chosen else 'none'}: {why}")
        return
    emulated = bool(os.environ.get("HYBRIDWRAP_CPU_EMULATION"))
    if emulated != (args.tag == "avx2"):
        sys.exit("--tag avx2 runs under the emulation (PYTHONPATH=benchmarks/no_native_bf16 with ATEN_CPU_CAPABILITY=avx2 "
                 "ONEDNN_MAX_CPU_ISA=AVX2), --tag native without it.")
    for name in args.candidates:
        path = result_path(name, args.tag, results)
        if path.exists():
            print(f"[skip] {path.name} exists")
            continue
        r = measure(name, args.tag, results)
        d = r["paired_val"]
        print(f"[done] {name} {args.tag}: {r['minutes']:.2f} min, full − classification on validation "
              f"{d['mean']:+.2f} ± {d['std']:.2f} ({d['ahead']}/{d['seeds']})", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
