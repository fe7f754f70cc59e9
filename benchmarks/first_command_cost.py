"""What a training step of the README's first command costs in fp32, for candidate budgets, side by side.

    python benchmarks/first_command_cost.py                                   # this CPU as it is
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 PYTHONPATH=benchmarks/no_native_bf16 \\
        python benchmarks/first_command_cost.py --tag avx2                    # as on an AVX2 CPU without bf16

Each candidate is configs/digits.yaml with a few overrides (image size, unlabeled batch, width,
channels-last). For each, a HybridNet (``full``) run and a labeled-only baseline run of ``--steps`` steps are
trained in fp32 (``mixed_precision=no``: the precision of CPUs without native bf16) in a throw-away directory,
and seconds per step are taken from the runs' own timers (one evaluation and one checkpoint included). Rounds
alternate between candidates so that machine noise hits them alike; the median per candidate is kept. The
predicted whole-command time is seeds x max_steps x (full + baseline step) of the shipped step count, which is
how a budget that fits five minutes was chosen before `hybridwrap tune` chose the settings inside it
(benchmarks/quickstart_selection.sh). Writes results/first-command-cost-<tag>.json, with the CPU capability.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

# name -> overrides of configs/digits.yaml, each shape stated in full so that the names stay true whatever the
# shipped config holds; "issue17-16px-20+80" (a recorded key) is the command the first own-data study timed (0.53 s per HybridNet step there),
# whose intermediate targets were not detached (more backward work)
def _shape(px: int, unlabeled: int, *extra: str, channels_last: bool = True) -> list[str]:
    return [f"data.image_size={px}", f"model.input_size=[{px}, {px}]", f"data.unlabeled_batch_size={unlabeled}",
            f"channels_last={str(channels_last).lower()}", *extra]


CANDIDATES = {
    "issue17-16px-20+80": _shape(16, 80, "loss.detach_intermediate_targets=false"),
    "16px-20+80": _shape(16, 80),
    "16px-20+80-contiguous": _shape(16, 80, channels_last=False),
    "16px-20+40": _shape(16, 40),
    "12px-20+80": _shape(12, 80),
    "12px-20+40": _shape(12, 40),
    "16px-20+80-w0.125": _shape(16, 80, "model.backbone_kwargs={width: 0.125}"),
}


def step_seconds(overrides: list[str], preset: str, steps: int, tmp: Path) -> float:
    from hybridwrap.config import load_config
    from hybridwrap.train import baseline_config, train

    cfg = load_config(REPO / "configs" / "digits.yaml", overrides + [
        "mixed_precision=no", "seeds=1", f"max_steps={steps}", f"eval_every={steps}", f"checkpoint_every={steps}",
        "progress_bar=false", f"output_dir={tmp / 'run'}"])
    if preset == "classification":
        cfg = baseline_config(cfg)
    result = train(cfg)
    return result["seconds"] / steps


def main() -> None:
    from machine import git_commit

    from hybridwrap.hardware import cpu_capability

    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--tag", default="native")
    parser.add_argument("--output", help="JSON file (default: results/first-command-cost-<tag>.json)")
    args = parser.parse_args()
    logging.getLogger("hybridwrap").setLevel(logging.WARNING)
    times: dict[str, dict[str, list[float]]] = {c: {"full": [], "classification": []} for c in args.candidates}
    for r in range(args.rounds):
        for name in args.candidates:
            for preset in ("full", "classification"):
                with tempfile.TemporaryDirectory(prefix="hybridwrap-cost-") as tmp:
                    s = step_seconds(CANDIDATES[name], preset, args.steps, Path(tmp))
                times[name][preset].append(s)
                print(f"round {r} {name:24s} {preset:15s} {s:.3f} s/step", flush=True)
    from hybridwrap.config import load_config

    shipped = load_config(REPO / "configs" / "digits.yaml")
    rows = {}
    for name, t in times.items():
        full, base = statistics.median(t["full"]), statistics.median(t["classification"])
        rows[name] = {"overrides": CANDIDATES[name], "full_s_per_step": round(full, 4),
                      "baseline_s_per_step": round(base, 4),
                      "predicted_command_s_at_shipped_steps": round(shipped.seeds * shipped.max_steps * (full + base), 1),
                      "full_rounds": [round(v, 4) for v in t["full"]],
                      "baseline_rounds": [round(v, 4) for v in t["classification"]]}
    out = {"benchmark": "first_command_cost", "precision": "no (fp32)", "steps_per_run": args.steps,
           "rounds": args.rounds, "cpu_capability": cpu_capability(),
           "cpu_emulation": os.environ.get("HYBRIDWRAP_CPU_EMULATION"),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores", "commit": git_commit(),
           "shipped": {"seeds": shipped.seeds, "max_steps": shipped.max_steps}, "candidates": rows}
    path = Path(args.output) if args.output else HERE / "results" / f"first-command-cost-{args.tag}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(rows, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
