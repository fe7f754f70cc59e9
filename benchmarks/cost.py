"""What HybridNet costs: train-step time, FLOPs and peak memory against the plain backbone, and the
inference cost of the deployed classifier (which must equal the bare backbone's).

    python benchmarks/cost.py                 # ConvLarge 32 px, shake-shake 26 2x96d 32 px, ResNet-50 224 px

Setups per backbone: ``backbone`` (E_c + C, cross-entropy), ``mean_teacher`` (+ EMA teacher forward and
stability term), ``hybridnet-<decoder>`` (full HybridNet: both branches, all Eq. 2 terms, Mean Teacher) for
each decoder option: ``mirror`` (the encoder's residual blocks), ``light`` (few narrow convolutions) and
``generic`` (full-width 3x3 convolutions). Targets for resnet50 @224: mirror <= 4.5x and light <= 3.0x the
backbone's training-step FLOPs. Times
are measured side by side in one process, the setups interleaved over rounds (median reported); FLOPs
come from ``torch.utils.flop_counter`` over one whole training step; peak memory is the peak resident
set of a fresh subprocess above its resident set after building the model (CPU), or the peak of
``torch.cuda.max_memory_allocated`` above the built model (GPU): activations, gradients, optimiser
state and teacher, not the weights themselves (whose size the parameter counts give).
Writes benchmarks/results/cost-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from hybridwrap.decoders import DECODERS  # every decoder option, measured side by side
from hybridwrap.hardware import cpu_capability  # the SIMD level and native bf16, beside every time

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BACKBONES = {"convlarge": 32, "shakeshake26_2x96d": 32, "resnet50": 224}
SETUPS = ("backbone", "mean_teacher", *(f"hybridnet-{d}" for d in DECODERS))


def build(name: str, size: int, setup: str, device: str, width: float):
    import hybridwrap
    from hybridwrap import losses
    from hybridwrap.config import LossConfig
    from hybridwrap.teachers import MeanTeacher

    torch.manual_seed(0)
    kwargs = {"width": width} if name.startswith("convlarge") else {}
    hybrid = setup.startswith("hybridnet")
    if hybrid:
        kwargs["decoder"] = setup.split("-", 1)[1]
    model = hybridwrap.wrap(name, num_classes=10, input_size=size, discriminative_decoder=hybrid,
                            unsupervised_branch=hybrid, **kwargs).to(device).train()
    teacher = MeanTeacher(model.backbone, 0.99).to(device) if setup != "backbone" else None
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    loss_cfg = LossConfig()  # the paper's terms and weights; a setup without a part simply lacks its terms

    def step(x, labels):
        out = model(x)
        z = teacher.targets(x) if teacher is not None else None
        terms = losses.objective_terms(out, x, labels, loss_cfg, z)
        loss = losses.total_loss(terms, losses.loss_weights(loss_cfg, 0, 1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if teacher is not None:
            teacher.update(model.backbone, 10)

    return model, step


def batch(size: int, n: int, device: str):
    """Images and labels, the first fifth labeled (-1: unlabeled), as in the paper's 20 + 80 batches."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, size, size, generator=g).to(device)
    y = torch.randint(0, 10, (n,), generator=g)
    labels = torch.where(torch.arange(n) < max(1, n // 5), y, -1).to(device)
    return x, labels


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def flops_of(step, args) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step(*args)
    return counter.get_total_flops() / 1e9


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory_child(name, size, setup, n, device, width, steps) -> float:
    """Peak memory of training steps beyond the built model (MiB): activations, gradients, optimiser state,
    teacher. CPU: peak resident set (VmHWM, reset after building) minus the resident set after building."""
    model, step = build(name, size, setup, device, width)
    args = batch(size, n, device)
    if device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        for _ in range(steps):
            step(*args)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    base = _status_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current resident set
    for _ in range(steps):
        step(*args)
    return _status_mib("VmHWM") - base


def measure_memory(name, size, setups, n, device, width, steps) -> dict[str, float]:
    """`_memory_child` of each setup in a fresh process of its own, so that no other setup's memory is counted; two
    at a time (each process's peak is its own, so running them side by side changes no figure)."""
    def start(setup):
        code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import cost;"
                f"print(cost._memory_child({name!r}, {size}, {setup!r}, {n}, {device!r}, {width}, {steps}))")
        return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    peaks, waiting = {}, list(setups)
    while waiting:
        running = {setup: start(setup) for setup in waiting[:2]}
        waiting = waiting[2:]
        for setup, proc in running.items():
            out, err = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"memory measurement of {name}/{setup} failed: {err[-2000:]}")
            peaks[setup] = float(out.strip().splitlines()[-1])
    return peaks


def time_inference(name, size, n, device, width, rounds, reps):
    """Deployed classifier (HybridNet.classify) against the bare timm model with the same weights."""
    import timm

    import hybridwrap

    kwargs = {"width": width} if name.startswith("convlarge") else {}
    model = hybridwrap.wrap(name, num_classes=10, input_size=size, **kwargs).to(device).eval()
    if name.startswith(("convlarge", "shakeshake")):
        import hybridwrap_plugins.convlarge  # noqa: F401
        import hybridwrap_plugins.shakeshake  # noqa: F401
    bare = timm.create_model(name, num_classes=10, **kwargs).to(device).eval()
    bare.load_state_dict(model.backbone.state_dict())
    x = batch(size, n, device)[0]
    fns = {"classifier": model.classify, "bare": bare}
    times = {k: [] for k in fns}
    with torch.inference_mode():
        for f in fns.values():
            f(x)
        for _ in range(rounds):
            for k, f in fns.items():
                sync(device)
                t = time.perf_counter()
                for _ in range(reps):
                    f(x)
                sync(device)
                times[k].append((time.perf_counter() - t) / reps)
        same = torch.equal(model.classify(x), bare(x))
    c, b = statistics.median(times["classifier"]), statistics.median(times["bare"])
    same_params = sum(p.numel() for p in model.backbone.parameters()) == sum(p.numel() for p in bare.parameters())
    return {"classifier_s": c, "bare_s": b, "ratio": c / b, "same_parameters": same_params, "same_logits": same,
            "rounds_s": times}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    p.add_argument("--setups", nargs="+", default=list(SETUPS), choices=SETUPS)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--batch-224", type=int, default=4, help="batch for 224 px backbones")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=2, help="timed steps per setup per round")
    p.add_argument("--width", type=float, default=1.0, help="ConvLarge width")
    p.add_argument("--inference-rounds", type=int, default=20, help="interleaved rounds of the inference comparison")
    p.add_argument("--inference-reps", type=int, default=5, help="forward passes per round")
    p.add_argument("--size", type=int, help="override every input size (smoke tests)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--output", help="result file (default: results/cost-<device>.json)")
    args = p.parse_args(argv)
    device = args.device
    result = {"benchmark": "cost", "device": torch.cuda.get_device_name() if device == "cuda" else
              f"cpu ({platform.machine()})", "threads": torch.get_num_threads(), "precision": "fp32",
              "cpu_capability": cpu_capability(),
              "rounds": args.rounds, "batch": f"{args.batch} (32 px) / {args.batch_224} (224 px)",
              "torch": torch.__version__, "backbones": [],
              "command": "python benchmarks/cost.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))}
    for name in args.backbones:
        size = args.size or BACKBONES[name]
        n = args.batch_224 if size >= 224 else args.batch
        data = batch(size, n, device)
        steps, params = {}, {}
        setups = [s for s in SETUPS if s in args.setups or s == "backbone"]  # ratios need the backbone
        for s in setups:
            model, steps[s] = build(name, size, s, device, args.width)
            params[s] = sum(p.numel() for p in model.parameters()) / 1e6
        gflops = {s: flops_of(steps[s], data) for s in setups}  # also the warm-up step
        times = {s: [] for s in setups}
        for _ in range(args.rounds):
            for s in setups:
                sync(device)
                t = time.perf_counter()
                for _ in range(args.steps):
                    steps[s](*data)
                sync(device)
                times[s].append((time.perf_counter() - t) / args.steps)
        del steps
        entry = {"name": name, "input": f"{size} px", "batch": n, "setups": {}}
        peaks = measure_memory(name, size, setups, n, device, args.width, 2)
        for s in setups:
            entry["setups"][s] = {"step_s": statistics.median(times[s]), "rounds_s": times[s], "gflops": gflops[s],
                                  "parameters_m": params[s], "peak_mib": peaks[s]}
        entry["inference"] = time_inference(name, size, n, device, args.width, args.inference_rounds,
                                            args.inference_reps)
        result["backbones"].append(entry)
        base = entry["setups"]["backbone"]
        for s, v in entry["setups"].items():
            print(f"{name:<20} {s:<13} {v['step_s']:.3f} s/step  x{v['step_s'] / base['step_s']:.2f}  "
                  f"{v['gflops']:.1f} GFLOPs x{v['gflops'] / base['gflops']:.2f}  {v['peak_mib']:.0f} MiB")
        print(f"{name:<20} inference ratio classifier/bare {entry['inference']['ratio']:.3f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = Path(args.output) if args.output else RESULTS / f"cost-{'gpu' if device == 'cuda' else 'cpu'}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
