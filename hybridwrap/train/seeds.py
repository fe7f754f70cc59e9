"""Several seeds and the labeled-only baseline: one config per run, and the table of their results."""

from __future__ import annotations

import copy
import functools
import json
import os
import statistics
import time
from pathlib import Path

from .. import logs
from ..config import TrainConfig, apply_overrides, replaced
from ..errors import ConfigError
from ..resolution import before_data
from .checks import check_runs_data, validate
from .concurrent import plan, queue_order, train_concurrently
from .estimate import CommandClock, run_kind
from .loop import Run
from .rundir import check_run_dir, first_missing, remove_if_empty

logger = logs.get_logger("hybridwrap.train")


def finished_result(cfg: TrainConfig) -> dict | None:
    """The final metrics of the finished run in ``cfg.output_dir`` (at least ``cfg.max_steps`` steps, or the steps the
    run resolved from its budget in passes), or None when it has steps to go."""
    run_dir = Path(cfg.output_dir)
    metrics, saved = run_dir / "metrics.json", run_dir / "train_config.json"
    if not metrics.is_file() or not saved.is_file():
        return None
    result = json.loads(metrics.read_text())
    target = cfg.max_steps if cfg.budget_passes is None else json.loads(saved.read_text())["max_steps"]
    return result if result.get("steps", 0) >= target else None


def check_run(cfg: TrainConfig, resume: bool) -> None:
    """The checks a run's config and directory get before anything of it is written (on the copy a run resolves
    before its data, `resolution.before_data`; the resolved fields of a resumed run filled in)."""
    checked, _ = before_data(cfg)
    validate(checked, int(os.environ.get("WORLD_SIZE", "1")))
    check_run_dir(checked, Path(checked.output_dir), resume)


def train(cfg: TrainConfig, resume: bool = False, stop_at: int | None = None, report=None) -> dict:
    """Train one run of ``cfg`` into ``cfg.output_dir``.

    Args:
        cfg: the run's `TrainConfig` (``hybridwrap.config.load_config`` reads one).
        resume: continue the run in ``cfg.output_dir`` from its last checkpoint; a finished run writes nothing.
        stop_at: pause at this step with a checkpoint (the schedule stays the whole run's).
        report: called once with the run's time estimate (`estimate.RunPace`) when its pace is measured.

    Returns:
        The final metrics (also in ``output_dir/metrics.json``): accuracies of the student and the teacher on the
        test and validation images, steps, seconds, precision, threads.

    Examples:
        >>> from hybridwrap.config import load_config
        >>> from hybridwrap.train import train
        >>> cfg = load_config("configs/quickstart.yaml", ["seeds=1", "output_dir=runs/one"])
        >>> train(cfg)["test_acc"]
    """
    done = None
    if resume:
        check_run(cfg, resume)  # another config is refused even when the run has finished
        done = finished_result(cfg)
    if done is not None:
        logger.info(f"{cfg.output_dir}: finished already ({done['steps']} steps), nothing written; --max-steps N with "
                    "more steps continues it")
        return done
    run = Run(cfg, resume=resume)
    try:
        return run.fit(stop_at=stop_at, report=report)
    except BaseException:
        run.close(failed=True)  # before the first checkpoint: the run directory it created goes, so a rerun starts
        raise
    finally:
        run.close()


def seed_configs(cfg: TrainConfig) -> list[TrainConfig]:
    """One config per seed: seed k also draws labeled subset k. One seed keeps ``output_dir``; several
    get ``output_dir/seed-K``."""
    if cfg.seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {cfg.seeds}.")
    if cfg.seeds == 1:
        return [copy.deepcopy(cfg)]
    return [replaced(cfg, {"seed": cfg.seed + k, "data.labels_seed": cfg.data.labels_seed + k,
                           "output_dir": str(Path(cfg.output_dir) / f"seed-{cfg.seed + k}")}) for k in range(cfg.seeds)]


def baseline_config(cfg: TrainConfig) -> TrainConfig:
    """The labeled-only ``classification`` preset of ``cfg``, with its own ``baseline_overrides``."""
    base = replaced(cfg, {"preset": "classification", "output_dir": str(Path(cfg.output_dir) / "baseline")})
    return apply_overrides(base, list(cfg.baseline_overrides))


def train_with_baseline(cfg: TrainConfig, resume: bool = False, started: float | None = None) -> list[dict]:
    """Train ``cfg`` for each seed and (``compare_baseline``) the labeled-only baseline for each seed: one after
    another, or several at once where the hardware gains by it (``cfg.run_processes``,
    `concurrent`). Returns the results in that order, HybridNet's seeds first. ``started``: when the command began
    (``time.time()`` clock; default now), for the command's time estimate."""
    runs = seed_configs(cfg)
    if cfg.compare_baseline and cfg.preset != "classification":
        runs += seed_configs(baseline_config(cfg))
    how = plan(cfg, len(runs))
    logger.debug(f"hybridwrap: {len(runs)} run{'s' if len(runs) != 1 else ''}, {how.describe()}")
    for run in runs:  # a mistake is one line from this process before any run starts, not one per run after it
        check_run(run, resume)
    check_runs_data(runs)  # the data too, every image file opened once, before a file of any run is written
    order = queue_order(runs)
    clock = CommandClock([run_kind(run) for run in runs], order, how.processes,
                         time.time() if started is None else started, logger.info)
    if how.processes > 1:
        created = first_missing(Path(cfg.output_dir))
        try:
            return train_concurrently(train, runs, order, how, clock, resume=resume, log_level=logs.console_level())
        except BaseException:
            remove_if_empty(created)
            raise
    results: list[dict | None] = [None] * len(runs)
    for i in order:
        clock.begin(i, time.time())
        results[i] = train(runs[i], resume=resume, report=functools.partial(clock.paced, i))
        clock.end(i, time.time())
    return results


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}%"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}%"


def format_results(results: list[dict], selected_by: str = "") -> str:
    """Student/teacher accuracy per preset (mean ± std over seeds) and, with a baseline, who wins: on the test set,
    or on the validation hold-out for runs that never load the test split (``evaluate_test=false``)."""
    split = "test" if all("test_acc" in r for r in results) else "val"
    groups: dict[str, list[dict]] = {}
    for r in results:
        groups.setdefault(f"{r['preset']} ({r['dataset']})", []).append(r)
    n = max(len(g) for g in groups.values())
    head = f"{'test' if split == 'test' else 'validation'} accuracy" + (
        f", mean ± std over {n} seeds (seed k trains on labeled subset k)" if n > 1 else "")
    lines = [head, f"{'run':<28} {'student':>17} {'teacher':>17}"]
    for name, g in groups.items():
        teacher = (_mean_std([r[f"teacher_{split}_acc"] for r in g]) if all(f"teacher_{split}_acc" in r for r in g)
                   else "-")
        lines.append(f"{name:<28} {_mean_std([r[f'{split}_acc'] for r in g]):>17} {teacher:>17}")
    if selected_by:
        lines.append(f"settings: {selected_by}")
    runs = list(groups.values())
    if len(runs) == 2 and runs[1][0]["preset"] == "classification" and len(runs[0]) == len(runs[1]):
        diffs = [a[f"{split}_acc"] - b[f"{split}_acc"] for a, b in zip(runs[0], runs[1])]
        mean = statistics.fmean(diffs)
        spread = f" ± {statistics.stdev(diffs):.2f}" if len(diffs) > 1 else ""
        wins = sum(d > 0 for d in diffs)
        who = f"HybridNet ({runs[0][0]['preset']})"
        if mean > 0:
            verdict = f"{who} is ahead of its labeled-only baseline by {mean:.2f}{spread} points"
        else:
            verdict = f"{who} does NOT beat its labeled-only baseline here: {mean:+.2f}{spread} points"
        where = "test set" if split == "test" else "validation images"
        lines.append(f"{verdict} (student, {where}, ahead in {wins} of {len(diffs)} seeds).")
    return "\n".join(lines)
