"""Several seeds and the labeled-only baseline: one config per run, and the table of their results."""

from __future__ import annotations

import copy
import statistics
from pathlib import Path

from ..config import TrainConfig, apply_overrides
from ..errors import ConfigError
from .loop import Run


def train(cfg: TrainConfig, resume: bool = False, stop_at: int | None = None) -> dict:
    """Train one run; returns the final metrics (also written to ``output_dir/metrics.json``)."""
    run = Run(cfg, resume=resume)
    try:
        return run.fit(stop_at=stop_at)
    except KeyboardInterrupt:
        run.close(failed=True)  # before the first checkpoint: the run directory it created goes, so a rerun starts
        raise
    finally:
        run.close()


def seed_configs(cfg: TrainConfig) -> list[TrainConfig]:
    """One config per seed: seed k also draws labeled subset k. One seed keeps ``output_dir``; several
    get ``output_dir/seed-K``."""
    if cfg.seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {cfg.seeds}.")
    out = []
    for k in range(cfg.seeds):
        c = copy.deepcopy(cfg)
        if cfg.seeds > 1:
            c.seed, c.data.labels_seed = cfg.seed + k, cfg.data.labels_seed + k
            c.output_dir = str(Path(cfg.output_dir) / f"seed-{c.seed}")
        out.append(c)
    return out


def baseline_config(cfg: TrainConfig) -> TrainConfig:
    """The labeled-only ``classification`` preset of ``cfg``, with its own ``baseline_overrides``."""
    base = copy.deepcopy(cfg)
    base.preset = "classification"
    base.output_dir = str(Path(cfg.output_dir) / "baseline")
    return apply_overrides(base, list(cfg.baseline_overrides))


def train_with_baseline(cfg: TrainConfig, resume: bool = False) -> list[dict]:
    """Train ``cfg`` for each seed, then (``compare_baseline``) the labeled-only baseline for each seed."""
    runs = seed_configs(cfg)
    if cfg.compare_baseline and cfg.preset != "classification":
        runs += seed_configs(baseline_config(cfg))
    return [train(run, resume=resume) for run in runs]


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}%"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}%"


def format_results(results: list[dict], selected_by: str = "") -> str:
    """Student/teacher test accuracy per preset (mean ± std over seeds) and, with a baseline, who wins."""
    groups: dict[str, list[dict]] = {}
    for r in results:
        groups.setdefault(f"{r['preset']} ({r['dataset']})", []).append(r)
    n = max(len(g) for g in groups.values())
    head = "test accuracy" + (f", mean ± std over {n} seeds (seed k trains on labeled subset k)" if n > 1 else "")
    lines = [head, f"{'run':<28} {'student':>17} {'teacher':>17}"]
    for name, g in groups.items():
        teacher = _mean_std([r["teacher_test_acc"] for r in g]) if all("teacher_test_acc" in r for r in g) else "-"
        lines.append(f"{name:<28} {_mean_std([r['test_acc'] for r in g]):>17} {teacher:>17}")
    if selected_by:
        lines.append(f"settings: {selected_by}")
    runs = list(groups.values())
    if len(runs) == 2 and runs[1][0]["preset"] == "classification" and len(runs[0]) == len(runs[1]):
        diffs = [a["test_acc"] - b["test_acc"] for a, b in zip(runs[0], runs[1])]
        mean = statistics.fmean(diffs)
        spread = f" ± {statistics.stdev(diffs):.2f}" if len(diffs) > 1 else ""
        wins = sum(d > 0 for d in diffs)
        who = f"HybridNet ({runs[0][0]['preset']})"
        if mean > 0:
            verdict = f"{who} is ahead of its labeled-only baseline by {mean:.2f}{spread} points"
        else:
            verdict = f"{who} does NOT beat its labeled-only baseline here: {mean:+.2f}{spread} points"
        lines.append(f"{verdict} (student, test set, ahead in {wins} of {len(diffs)} seeds).")
    return "\n".join(lines)
