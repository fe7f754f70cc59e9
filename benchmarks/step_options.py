"""Which CPU speed options help the HybridNet training step? Measured side by side in one process.

    python benchmarks/step_options.py --width 0.25 --steps 10

For each option (fp32, bf16 autocast, channels_last, both, torch.compile) it times full-HybridNet
training steps (forward of both branches + Mean Teacher target + backward + Adam) on a CIFAR-sized batch
of 20 + 80 images and writes benchmarks/results/step-options-<host>.json. Rounds alternate between
options so that machine noise hits them all alike; the median per option is reported, with its ratio to
fp32.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

import hybridwrap
from hybridwrap import losses
from hybridwrap.config import LossConfig
from hybridwrap.teachers import MeanTeacher
from hybridwrap.hardware import cpu_capability  # the SIMD level and native bf16, beside every time

RESULTS = Path(__file__).parent / "results"


def make_step(width: float, bf16: bool, channels_last: bool, compile_model: bool, batch: int = 100):
    torch.manual_seed(0)
    model = hybridwrap.wrap("convlarge", num_classes=10, width=width).train()
    teacher = MeanTeacher(model.backbone, 0.99)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    teacher.to(memory_format=fmt)
    forward = torch.compile(model) if compile_model else model
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))
    labels = torch.where(torch.arange(batch) < 20, y, -1)  # 20 labeled + 80 unlabeled
    loss_cfg = LossConfig()  # the paper's terms and weights

    def step(i: int):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = forward(x)
            z = teacher.targets(x)
        terms = losses.objective_terms(out, x, labels, loss_cfg, z)
        loss = losses.total_loss(terms, losses.loss_weights(loss_cfg, 0, 1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        teacher.update(model.backbone, i + 1)

    return step


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--steps", type=int, default=10, help="timed steps per option per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--output", help="result file (default: results/step-options-w<width>.json)")
    p.add_argument("--options", nargs="+", default=["fp32", "bf16", "channels_last", "bf16_channels_last", "compile"])
    args = p.parse_args()
    specs = {"fp32": (False, False, False), "bf16": (True, False, False), "channels_last": (False, True, False),
             "bf16_channels_last": (True, True, False), "compile": (False, False, True)}
    steps, times, errors = {}, {o: [] for o in args.options}, {}
    for o in args.options:
        try:
            steps[o] = make_step(args.width, *specs[o])
            for i in range(2):  # warm-up (and compilation)
                steps[o](i)
        except Exception as exc:  # an option that does not run here is reported, not fatal
            errors[o] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    for r in range(args.rounds):
        for o in steps:
            t = time.perf_counter()
            for i in range(args.steps):
                steps[o](i)
            times[o].append((time.perf_counter() - t) / args.steps)
    base = statistics.median(times["fp32"]) if times.get("fp32") else None
    result = {"benchmark": "step_options", "model": "convlarge full HybridNet + Mean Teacher", "width": args.width,
              "batch": "20+80 at 32x32", "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
              "cpu_capability": cpu_capability(),
              "torch": torch.__version__,
              "options": {o: {"median_step_s": statistics.median(v), "rounds_s": v,
                              "speedup_vs_fp32": (base / statistics.median(v)) if base else None}
                          for o, v in times.items() if v},
              "errors": errors}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = Path(args.output) if args.output else RESULTS / f"step-options-w{args.width}.json"
    out.write_text(json.dumps(result, indent=2))
    for o, v in result["options"].items():
        print(f"{o:<20} {v['median_step_s']:.3f} s/step  x{v['speedup_vs_fp32']:.2f}")
    for o, e in errors.items():
        print(f"{o:<20} failed: {e}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
