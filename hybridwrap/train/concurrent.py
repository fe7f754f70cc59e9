"""Several runs at once on a CPU: one process per run, the cores shared out as threads.

A small network cannot keep two CPU cores busy from one process: a step of quarter-width ConvLarge on 12 px
digits takes about 1.5x, not 2x, less time on 2 threads than on 1 (benchmarks/first_command.py). Two such runs in
two processes of one thread each finish sooner than one after the other. Each run stays a pure function of its
config and its thread count: seed, batches and augmentation are drawn from the run's own seed and step, so the
same seed gives the same numbers whether it runs alone or beside others (tests/test_concurrent.py). The thread
count can change the last bits of a float sum, so every result records it (``threads``).
"""

from __future__ import annotations

import ctypes
import functools
import multiprocessing
import os
import queue
import signal
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import logs
from ..config import TrainConfig, replaced
from ..errors import ConfigError
from ..presets import PRESETS
from ..registry import discover_plugins
from .estimate import run_kind
from .rundir import has_config


@dataclass(frozen=True)
class Plan:
    """How a command's runs share the machine: ``processes`` at once, ``threads`` each, and why."""

    processes: int
    threads: int
    reason: str

    def describe(self) -> str:
        if self.processes == 1:
            return f"one run at a time, {self.threads} thread{'s' if self.threads != 1 else ''} ({self.reason})"
        return f"{self.processes} runs at a time, {self.threads} thread{'s' if self.threads != 1 else ''} each ({self.reason})"


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def plan(cfg: TrainConfig, runs: int, cuda: bool | None = None, cores: int | None = None) -> Plan:
    """The plan for ``runs`` runs of ``cfg`` on this machine. ``cfg.run_processes``: 0 decides from the hardware
    (concurrent runs on a CPU-only machine with at least 2 cores, when there are at least 2 runs and a single
    training process each), N runs at most N at once, 1 runs them one after another."""
    if cfg.run_processes < 0:
        raise ConfigError(f"run_processes must be 0 (decided from the hardware), 1 (one run at a time) or more, got "
                          f"{cfg.run_processes}.")
    cuda = torch.cuda.is_available() if cuda is None else cuda
    cores = usable_cores() if cores is None else cores
    threads = torch.get_num_threads()
    if runs < 2:
        return Plan(1, threads, "a single run")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return Plan(1, threads, "each run already spans several processes")
    if cfg.run_processes == 1:
        return Plan(1, threads, "run_processes=1")
    if cfg.run_processes == 0:
        if cuda:
            return Plan(1, threads, "auto: the runs share one GPU")
        if cores < 2:
            return Plan(1, threads, f"auto: {cores} CPU core")
        processes = min(runs, cores)
        return Plan(processes, max(1, cores // processes), f"auto: {cores} CPU cores, no GPU")
    processes = min(runs, cfg.run_processes)
    return Plan(processes, max(1, cores // processes), f"run_processes={cfg.run_processes}")


_training = False  # in a worker: whether a run is under way (a stop between runs has nothing to interrupt)
_interrupted = False  # in a worker: whether its run was told to stop already
_stopped = None  # in a worker: the command's stop event (a run queued before the stop must not start after it)
_messages = None  # in a worker: where its runs' starts and time estimates go, for the command's estimate
_recorded = None  # in a worker: set once the command's own run has written its config (the others start then)


def _interrupt_once(signum, frame) -> None:
    """Ctrl-C from the terminal and the stop sent by the command reach a worker both: the first stops its run,
    the second must not interrupt that run's clean-up. (The handler stays installed: replacing it while a signal
    is pending makes Python raise an error of its own.)"""
    global _interrupted
    if not _training or _interrupted:
        return
    _interrupted = True
    raise KeyboardInterrupt


def _die_with_the_command(command: int) -> None:
    """A worker never outlives its command: after a kill -9 of the command it would go on training and hold the run's
    lock. Linux ends it with its parent (PR_SET_PDEATHSIG); elsewhere a thread checks the parent every second. Its
    run keeps its last checkpoint, as after a kill -9 of a single run."""
    try:
        if ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL)) == 0:  # 1: PR_SET_PDEATHSIG
            if os.getppid() != command:  # the command died before the line above
                os._exit(1)
            return
    except (OSError, AttributeError):  # no prctl: not Linux
        pass

    def watch():
        while os.getppid() == command:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="hybridwrap-command-watch", daemon=True).start()


def _start_worker(threads: int, log_level: str | None, stopped, recorded, command: int, messages) -> None:
    global _stopped, _recorded, _messages
    _die_with_the_command(command)
    _stopped, _recorded, _messages = stopped, recorded, messages
    torch.set_num_threads(threads)
    discover_plugins()  # timm and the backbones load beside run 0's start, not after it in a run that waited
    signal.signal(signal.SIGINT, _interrupt_once)
    signal.signal(signal.SIGTERM, _interrupt_once)
    if log_level is not None:
        logs.attach_console(log_level)


def _train_one(train, cfg: TrainConfig, resume: bool, tag: str, index: int, first: bool) -> dict:
    global _training
    if not first:
        _recorded.wait()  # set by the command, or by its stop
    if _stopped.is_set():
        raise KeyboardInterrupt  # the command stopped while this run waited its turn: it never starts
    logs.prefix_console(f"[{tag}] ")  # lines of runs side by side say whose they are
    cfg = replaced(cfg, {"progress_bar": False})  # bars of several processes would tear each other
    _messages.put(("begin", index, time.time()))
    _training = True
    try:
        return train(cfg, resume=resume, report=functools.partial(_report, index))
    finally:
        _training = False


def _report(index: int, pace) -> None:
    _messages.put(("paced", index, pace))


def run_tag(cfg: TrainConfig) -> str:
    """``full seed 1``: which run a line or a result belongs to."""
    return f"{cfg.preset} seed {cfg.seed}"


def queue_order(configs: list[TrainConfig]) -> list[int]:
    """The order in which runs start: run 0 (the command's own, whose config ``--resume`` reads) first, then the
    first run of each other kind (`estimate.run_kind`), so that the command's estimate comes early, then the
    costliest first, so that the last to finish is a short one."""
    def images(i: int) -> int:  # what a run processes: a labeled-only run never reads the unlabeled batch
        c, preset = configs[i], PRESETS[configs[i].preset]
        unlabeled = preset.stability or preset.reconstruction
        return c.max_steps * (c.data.labeled_batch_size + (c.data.unlabeled_batch_size if unlabeled else 0))

    firsts = list({run_kind(c): i for i, c in reversed(list(enumerate(configs)))}.values())[::-1]
    rest = sorted((i for i in range(len(configs)) if i not in firsts), key=images, reverse=True)
    return [0] + sorted(firsts[1:], key=images, reverse=True) + rest


def train_concurrently(train, configs: list[TrainConfig], order: list[int], plan_: Plan, clock,
                       resume: bool = False, log_level: str | None = None) -> list[dict]:
    """Run ``train(cfg, resume=resume, report=...)`` (a module-level function: workers import it by name) for each of
    ``configs``, in ``order``, in ``plan_.processes`` worker processes; return their results in the order of
    ``configs``. ``clock`` (an `estimate.CommandClock`) hears when each run begins, measures its pace and ends.
    A failed run stops the others (each keeps its last checkpoint, so ``--resume`` continues) and its error is
    raised here; so is Ctrl-C. The other runs start once ``order[0]`` has written its config (their workers start
    beside it): a command killed at any moment after that leaves a run directory whose ``--resume`` knows the
    command."""
    context = multiprocessing.get_context("spawn")  # never fork a process whose torch threads are running
    stopped, recorded, messages = context.Event(), context.Event(), context.Queue()
    pool = ProcessPoolExecutor(plan_.processes, mp_context=context, initializer=_start_worker,
                               initargs=(plan_.threads, log_level, stopped, recorded, os.getpid(), messages))
    futures = {}
    try:
        for i in order:
            futures[pool.submit(_train_one, train, configs[i], resume, run_tag(configs[i]), i, i == order[0])] = i
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5 if recorded.is_set() else 0.05, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:  # its error alone: an estimate of a command that stops now would mislead
                _stop(futures, stopped, recorded)
                raise failed[0].exception()
            if not recorded.is_set() and (done or has_config(Path(configs[order[0]].output_dir))):
                recorded.set()
            _hear(messages, clock)
            for future in done:
                clock.end(futures[future], time.time())
        results: list[dict | None] = [None] * len(configs)
        for future, i in futures.items():
            results[i] = future.result()
        return results
    except KeyboardInterrupt:
        _stop(futures, stopped, recorded)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _hear(messages, clock) -> None:
    """Pass the workers' news (a run began, a run measured its pace) to the command's clock."""
    while True:
        try:
            what, index, value = messages.get_nowait()
        except queue.Empty:
            return
        if what == "begin":
            clock.begin(index, value)
        else:
            clock.paced(index, value)


def _stop(futures, stopped, recorded) -> None:
    """Stop every worker as Ctrl-C would (a terminal's Ctrl-C reached them already; a signal to this process alone
    or a failed run did not): each run keeps its last checkpoint, and queued runs never start."""
    stopped.set()
    recorded.set()  # the runs waiting for it see the stop and never start
    for future in futures:
        future.cancel()
    for child in multiprocessing.active_children():
        try:
            os.kill(child.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
