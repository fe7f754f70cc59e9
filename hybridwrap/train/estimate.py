"""How long a run and a command take, measured on this machine as they go, never guessed.

A run measures its own pace over its first steps (the median step; the first pays for warm-up and is left out) and adds what
it has still to do besides steps: its evaluations (one batch of them timed), its checkpoints and its saved model
(the model's weights serialised once, scaled by the bytes each file holds). Its set-up is the time it has
already spent. The command's estimate puts those together: the time since the process started, and the runs
still to come laid out on the processes that run them (`concurrent`), once a run of each kind has measured its
pace. Runs of one kind (the same config but for seed and directory) cost the same.
"""

from __future__ import annotations

import heapq
import io
import json
import os
import statistics
import time
from dataclasses import dataclass

import torch
from safetensors.torch import save

from ..config import TrainConfig, to_dict

PACE_STEPS = 10  # at least this many steps after the first...
PACE_SECONDS = 3.0  # ...and at least this long: a short measurement of a fast step is noise


def process_started() -> float:
    """When this process started (``time.time()`` clock): the time a user waits includes Python's and torch's
    imports. Linux reads it from /proc; elsewhere the time of this call stands in for it."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime, in clock ticks since boot
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time()


def describe(seconds: float) -> str:
    """A time to the second: "4 min 12 s", "58 s"."""
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60} s" if whole >= 60 else f"{whole} s"


def run_kind(cfg: TrainConfig) -> str:
    """Runs whose configs differ only in seed, labeled subset and directory cost the same."""
    fields = to_dict(cfg)
    for key in ("seed", "output_dir"):
        fields.pop(key, None)
    fields["data"] = {k: v for k, v in fields["data"].items() if k != "labels_seed"}
    return json.dumps(fields, sort_keys=True, default=str)


@dataclass(frozen=True)
class RunPace:
    """What a run measured at its pace point: ``remaining`` seconds to its end from time ``at``."""

    at: float
    remaining: float


def steps_between(first: int, last: int, every: int) -> int:
    """The steps in (first, last] that are multiples of ``every``."""
    return max(0, last // every - first // every)


def evaluation_seconds(run) -> float:
    """One evaluation of ``run`` (a `loop.Run`): one batch of its images read and classified, timed (the second
    time: the first pays for warm-up, as a run's first evaluation does once), scaled to every image it scores, by
    the student and the teacher."""
    loaders = [loader for loader in (run.eval_loader, run.val_loader) if loader is not None]
    images = sum(len(loader.dataset) for loader in loaders)
    if not images:
        return 0.0
    dataset = loaders[0].dataset
    n = min(len(dataset), loaders[0].batch_size or 1)
    net = run.accelerator.unwrap_model(run.model).backbone
    t0 = time.perf_counter()
    x = torch.stack([dataset[i][0] for i in range(n)]).to(run.accelerator.device)
    reading = time.perf_counter() - t0
    net.eval()
    with torch.no_grad():
        net(run.normalize(x).float())
        t0 = time.perf_counter()
        net(run.normalize(x).float())
        classifying = time.perf_counter() - t0
    net.train()
    nets = 1 + (run.teacher is not None)
    return (reading + classifying * nets) / n * images


def saving_seconds(run) -> tuple[float, float]:
    """(a checkpoint, the saved model) of ``run``: its weights serialised once in memory, scaled by the bytes of
    each (a checkpoint also holds the teacher and the optimiser's state)."""
    model = run.accelerator.unwrap_model(run.model)
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    t0 = time.perf_counter()
    buffer = io.BytesIO(save(weights))
    per_byte = (time.perf_counter() - t0) / max(1, buffer.getbuffer().nbytes)
    model_bytes = sum(v.numel() * v.element_size() for v in weights.values())
    teacher = model_bytes if run.teacher is not None else 0
    optimizer = sum(t.numel() * t.element_size() for state in run.optimizer.state.values()
                    for t in state.values() if torch.is_tensor(t))
    return per_byte * (model_bytes + teacher + optimizer), per_byte * (model_bytes + teacher)


class Pace:
    """The estimate of one run, logged once, at its pace point; ``report`` (if given) receives it as a `RunPace`."""

    def __init__(self, run, end: int, log, report=None):
        self.run, self.end, self.log, self.report = run, end, log, report
        self.first, self.times = run.state.step + 1, None

    def tick(self, step: int) -> None:
        """Call after each step with the number of steps done."""
        if step == self.first:
            self.times = [time.time()]
        elif self.times is not None:
            self.times.append(time.time())
            if step >= self.first + PACE_STEPS and step < self.end and self.times[-1] - self.times[0] >= PACE_SECONDS:
                # the median step: a hiccup of the machine (another process starting beside it) is not its pace
                self.log_estimate(step, statistics.median(b - a for a, b in zip(self.times, self.times[1:])))
                self.times = None

    def log_estimate(self, step: int, per_step: float) -> None:
        cfg, run = self.run.cfg, self.run
        evaluations = steps_between(step, self.end - 1, cfg.eval_every) + 1
        checkpoints = len({s for s in range(step + 1, self.end + 1)
                           if s % cfg.checkpoint_every == 0 or s == self.end})
        checkpoint, model = saving_seconds(run)
        final = model if self.end == cfg.max_steps else 0.0
        remaining = (per_step * (self.end - step) + evaluations * evaluation_seconds(run) + checkpoints * checkpoint
                     + final)
        self.log(f"step {step}/{cfg.max_steps}: {per_step:.3f} s per step, about {describe(remaining)} to the end of "
                 f"this run ({self.end - step} steps, {evaluations} evaluation{'s' if evaluations != 1 else ''}, "
                 f"{checkpoints} checkpoint{'s' if checkpoints != 1 else ''}"
                 + (", the saved model)" if final else ")"))
        if self.report is not None:
            self.report(RunPace(time.time(), remaining))


class CommandClock:
    """The estimate of a command of several runs: once each kind of run has measured its pace, the runs still to
    come are laid out on ``processes`` processes in the order they were queued, and the end is logged once."""

    def __init__(self, kinds: list[str], order: list[int], processes: int, started: float, log):
        self.kinds, self.order, self.processes, self.started, self.log = kinds, order, processes, started, log
        self.begun: dict[int, float] = {}
        self.ended: set[int] = set()
        self.expected_end: dict[int, float] = {}
        self.duration: dict[str, float] = {}  # per kind: a run's seconds from its start to its end
        self.said = False

    def begin(self, i: int, at: float) -> None:
        self.begun[i] = at

    def end(self, i: int, at: float) -> None:
        """Run ``i`` ended at ``at``: a run too short to measure its pace gives its kind's duration by ending."""
        self.ended.add(i)
        self.duration.setdefault(self.kinds[i], at - self.begun.get(i, at))
        self.say(at)

    def paced(self, i: int, pace: RunPace) -> None:
        self.expected_end[i] = pace.at + pace.remaining
        self.duration.setdefault(self.kinds[i], self.expected_end[i] - self.begun.get(i, pace.at))
        self.say(pace.at)

    def finish_time(self, now: float) -> float | None:
        """When the last run should end, or None while a kind of run has not measured its pace."""
        if any(kind not in self.duration for kind in self.kinds):
            return None
        running = [max(now, self.expected_end.get(i, self.begun[i] + self.duration[self.kinds[i]]))
                   for i in self.begun if i not in self.ended]
        free = sorted(running + [now] * max(0, self.processes - len(running)))[:self.processes]
        heapq.heapify(free)
        last = max(free)
        for i in self.order:
            if i in self.begun:
                continue
            end = heapq.heappop(free) + self.duration[self.kinds[i]]
            heapq.heappush(free, end)
            last = max(last, end)
        return last

    def say(self, now: float) -> None:
        end = None if self.said else self.finish_time(now)
        if end is None:
            return
        self.said = True
        runs = len(self.kinds)
        at_once = f", {self.processes} at a time" if self.processes > 1 and runs > 1 else ""
        self.log(f"the command: about {describe(end - self.started)} in all, {describe(end - now)} to go ("
                 f"{runs} run{'s' if runs != 1 else ''}{at_once}; each kind of run timed over its first steps)")
