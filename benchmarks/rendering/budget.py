"""Where HybridNet pays: the budget map of benchmarks/budget_map.py (accuracy against steps, the paired gain)."""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

from . import common
from .common import mean_std, table_header

DATASETS = ("mnist5k", "digits", "cifar10")
HYBRID, BASELINE = "full", "classification"
NAMES = {"classification": "classification (labeled only)", "classification_stability": "classification + stability",
         "full": "full HybridNet"}
FIGURE = Path("figures") / "budget-map.png"
# what the library reads of the map (hybridwrap.budget): written by render_results.py, never by hand
SUMMARY = common.HERE.parent / "hybridwrap" / "budget_map.json"


def load() -> list[dict]:
    return common.load("budget-*.json")


def by_dataset(runs: list[dict]) -> dict[str, dict[int, dict[str, list[dict]]]]:
    """dataset -> steps -> preset -> runs (sorted by seed)."""
    out: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in sorted(runs, key=lambda r: (r["dataset"], r["steps"], r["preset"], r["seed"])):
        out[r["dataset"]][r["steps"]][r["preset"]].append(r)
    return out


def paired(presets: dict[str, list[dict]], a: str, b: str, key: str) -> list[float]:
    """Per-seed differences a − b of ``key`` at one budget (``presets``: preset -> runs)."""
    return common.paired_diffs([r for rs in presets.values() for r in rs], a, b, key)


def leads_beyond_spread(diffs: list[float]) -> bool:
    """A lead larger than its own spread: mean − std > 0 over at least two seeds, every seed ahead."""
    return len(diffs) >= 2 and all(d > 0 for d in diffs) and statistics.mean(diffs) - statistics.stdev(diffs) > 0


def crossover(runs: list[dict], dataset: str, key: str = "val_acc") -> int | None:
    """The first budget from which full HybridNet leads its baseline beyond the spread on ``key`` at that budget and
    every larger one measured (validation by default: budgets are chosen on validation, never on test)."""
    steps = by_dataset(runs).get(dataset, {})
    budgets = sorted(s for s in steps if paired(steps[s], HYBRID, BASELINE, key))
    first = None
    for s in budgets:
        if leads_beyond_spread(paired(steps[s], HYBRID, BASELINE, key)):
            first = s if first is None else first
        else:
            first = None
    return first


def _stat(diffs: list[float]) -> dict:
    return {"mean": round(statistics.mean(diffs), 2), "std": round(statistics.stdev(diffs), 2) if len(diffs) > 1 else 0.0,
            "ahead": sum(d > 0 for d in diffs), "seeds": len(diffs)}


def summary(runs: list[dict]) -> dict:
    """What the library needs of the map: each data set's crossover (steps, passes over the pool, labels) and, where
    the map measured classification + stability, where the gain comes from at each budget (paired on validation)."""
    crossovers, sources = {}, {}
    for dataset, steps in sorted(by_dataset(runs).items()):
        first = crossover(runs, dataset)
        if first is not None:
            at = next(r for rs in steps[first].values() for r in rs)
            crossovers[dataset] = {"steps": first, "passes": at["unlabeled_passes"], "labels": at["labels"]}
        for s, presets in sorted(steps.items()):
            stability = paired(presets, "classification_stability", BASELINE, "val_acc")
            if stability:
                first_run = next(r for rs in presets.values() for r in rs)
                sources.setdefault(dataset, []).append({
                    "steps": s, "passes": first_run["unlabeled_passes"], "pool": first_run["unlabeled_pool"],
                    "labels": first_run["labels"],
                    "full": _stat(paired(presets, HYBRID, BASELINE, "val_acc")), "stability": _stat(stability),
                    "reconstruction": _stat(paired(presets, HYBRID, "classification_stability", "val_acc"))})
    return {"generated_by": "python benchmarks/render_results.py, from benchmarks/results/budget-*.json and "
                            "labels-*.json",
            "crossovers": crossovers, "gain_sources": sources}


def write_summary(runs: list[dict], study: dict | None = None, path: Path = SUMMARY) -> None:
    """The map's summary and (``study``) the labels x budget study's, for the library."""
    path.write_text(json.dumps({**summary(runs), **({"reconstruction": study} if study else {})}, indent=2) + "\n")


def _minutes(rs: list[dict]) -> float | None:
    secs = [r["seconds"] for r in rs if r.get("seconds")]
    return statistics.mean(secs) / 60 if secs else None


def dataset_lines(dataset: str, steps: dict[int, dict[str, list[dict]]], runs: list[dict]) -> list[str]:
    any_run = next(r for by_preset in steps.values() for rs in by_preset.values() for r in rs)
    presets = [p for p in ("classification", "classification_stability", "full")
               if any(p in by_preset for by_preset in steps.values())]
    caps = sorted({f"{r.get('cpu_capability')}, {r.get('precision')}" for by_preset in steps.values()
                   for rs in by_preset.values() for r in rs})
    reused = sorted({r["reused_from"].split("-s")[0] for by_preset in steps.values() for rs in by_preset.values()
                     for r in rs if r.get("reused_from")})
    lines = [f"### {dataset}: `{any_run['config']}`, {any_run['labels']} labels", "",
             f"{any_run['unlabeled_pool']} unlabeled images in the pool, {any_run['val_size']} validation images held "
             f"out of the training set. "
             + (f"Settings chosen on validation at {any_run['selected_at']} steps and held fixed at every budget"
                if any_run.get("selected_at") else
                f"Settings: the config's protocol as it is ({any_run.get('protocol') or 'its source'}; not tuned "
                "here), the baseline with the same optimiser settings")
             + "; every schedule scaled to the budget. Measured on: "
             + "; ".join(f"CPU capability {c}" for c in caps) + "."
             + (f" Rows reused from the shipped protocol's runs of the same config: {', '.join(reused)}." if reused else ""),
             "", *table_header("| steps | passes over the pool | " + " | ".join(
                 f"{NAMES[p]} val / test | min" for p in presets) + " | full − classification, val | test |")]
    for s in sorted(steps):
        by_preset = steps[s]
        passes = next((r["unlabeled_passes"] for rs in by_preset.values() for r in rs if r.get("unlabeled_passes")), None)
        cells = []
        for p in presets:
            rs = by_preset.get(p, [])
            minutes = _minutes(rs)
            cells.append(f"{mean_std([r['val_acc'] for r in rs if r.get('val_acc') is not None])} / "
                         f"{mean_std([r['test_acc'] for r in rs])} ({len(rs)}) | "
                         + ("-" if minutes is None else f"{minutes:.1f}"))
        lines.append(f"| {s} | {'-' if passes is None else f'{passes:.1f}'} | " + " | ".join(cells)
                     + f" | {common.paired_cell(paired(by_preset, HYBRID, BASELINE, 'val_acc'))} | "
                       f"{common.paired_cell(paired(by_preset, HYBRID, BASELINE, 'test_acc'))} |")
    lines.append("")
    if "classification_stability" in presets:
        stab = [(s, paired(steps[s], "classification_stability", BASELINE, "val_acc"),
                 paired(steps[s], HYBRID, "classification_stability", "val_acc")) for s in sorted(steps)]
        lines += ["Where the gain comes from, on validation (paired by seed; seeds ahead in brackets):", "",
                  *table_header("| steps | stability − classification | full − (classification + stability) |")]
        lines += [f"| {s} | {common.paired_cell(a)} | {common.paired_cell(b)} |" for s, a, b in stab]
        lines.append("")
    first = crossover(runs, dataset)
    first_test = crossover(runs, dataset, "test_acc")
    measured = sorted(s for s in steps if paired(steps[s], HYBRID, BASELINE, "val_acc"))
    if first is None:
        lines.append(f"**No budget measured shows HybridNet ahead of its baseline beyond the spread on validation** "
                     f"(budgets {', '.join(map(str, measured)) or 'none yet'} with both presets).")
    else:
        lines.append(f"**HybridNet leads its baseline beyond the spread on validation from {first} steps** (at that "
                     "budget and every larger one measured; mean − std > 0 with every seed ahead)"
                     + (f"; on test from {first_test} steps." if first_test else "; on test not at every budget "
                        "from there."))
    lines.append("")
    return lines


def budget_plot(runs: list[dict], path: Path) -> bool:
    """Accuracy and the paired gain against steps and against CPU minutes, one colour per data set."""
    if not runs:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    styles = {"classification": ":", "classification_stability": "--", "full": "-"}
    for colour, (dataset, steps) in zip(("C0", "C1", "C2"), sorted(by_dataset(runs).items())):
        budgets = sorted(steps)
        for preset, style in styles.items():
            xs = [s for s in budgets if steps[s].get(preset)]
            if not xs:
                continue
            acc = [statistics.mean(r["test_acc"] for r in steps[s][preset]) for s in xs]
            minutes = [_minutes(steps[s][preset]) or 0 for s in xs]
            axes[0][0].plot(xs, acc, style, color=colour, marker="o", label=f"{dataset} {preset}")
            axes[0][1].plot(minutes, acc, style, color=colour, marker="o")
        gain_x = [s for s in budgets if paired(steps[s], HYBRID, BASELINE, "val_acc")]
        for key, marker, label in (("val_acc", "o", "val"), ("test_acc", "s", "test")):
            gains = [paired(steps[s], HYBRID, BASELINE, key) for s in gain_x]
            means = [statistics.mean(g) for g in gains]
            errs = [statistics.stdev(g) if len(g) > 1 else 0 for g in gains]
            minutes = [_minutes(steps[s][HYBRID]) or 0 for s in gain_x]
            axes[1][0].errorbar(gain_x, means, yerr=errs, color=colour, marker=marker, capsize=3,
                                linestyle="-" if key == "val_acc" else ":", label=f"{dataset} ({label})")
            axes[1][1].errorbar(minutes, means, yerr=errs, color=colour, marker=marker, capsize=3,
                                linestyle="-" if key == "val_acc" else ":")
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.axhline(0, color="black", linewidth=0.8)
    axes[0][0].set(xlabel="training steps", ylabel="test accuracy (%)", title="accuracy vs steps")
    axes[0][1].set(xlabel="CPU minutes per run", ylabel="test accuracy (%)", title="accuracy vs CPU time")
    axes[1][0].set(xlabel="training steps", ylabel="full − classification (points)", title="paired gain vs steps")
    axes[1][1].set(xlabel="CPU minutes of the full run", ylabel="full − classification (points)",
                   title="paired gain vs CPU time")
    axes[0][0].legend(fontsize=7)
    axes[1][0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def selection_lines(dataset: str) -> list[str]:
    """The `budget_map.py --select` tunes of a data set (results/tune-<dataset>-<preset>-it<steps>.json)."""
    lines = []
    for path in sorted(common.RESULTS.glob(f"tune-{dataset}-*.json")):
        if re.match(rf"tune-{dataset}-n\d+-", path.name):  # the labels x budget study's own (labels_study.py)
            continue
        t = json.loads(path.read_text())
        ranking = [f"{' '.join(f'`{k}={v}`' for k, v in row['settings'].items())} {row[t['metric']]:.2f}"
                   for row in t["ranking"]]
        lines.append(f"- Selection of `{t['preset']}` (`{path.name}`): `hybridwrap tune` at {t['max_steps']} steps on "
                     f"{t['val_size']} validation images, {len(t['seeds'])} seeds per setting, {t['trials']} trials "
                     f"(the lower half stopped at step {t['early_stop_step']}); ranking of the finalists on "
                     f"{t['metric']}: " + "; ".join(ranking) + ". Chosen: the first.")
    return lines + ([""] if lines else [])


def budget_lines(out_dir: Path | None = None) -> list[str]:
    runs = load()
    if not runs:
        return []
    lines = ["## Where HybridNet pays: the budget map", "",
             "`python benchmarks/budget_map.py` (one JSON per run, `budget-<dataset>-<preset>-<steps>-s<seed>.json`): "
             "each shipped config as it is at several budgets, seed k on labeled subset k, mean ± std over seeds with "
             "the number of seeds in brackets; the paired columns are per-seed differences with the seeds ahead in "
             "brackets. A lead counts when it is beyond its spread (mean − std > 0, every seed ahead); the crossover "
             "is read on validation, never on test.", ""]
    grouped = by_dataset(runs)
    for dataset in [d for d in DATASETS if d in grouped] + sorted(set(grouped) - set(DATASETS)):
        lines += dataset_lines(dataset, grouped[dataset], runs)
        lines += selection_lines(dataset)
    if budget_plot(runs, (out_dir or common.RESULTS) / FIGURE):
        lines += [f"![accuracy and paired gain against steps and CPU minutes]({common.RESULTS.name}/{FIGURE.as_posix()})", ""]
    return lines
