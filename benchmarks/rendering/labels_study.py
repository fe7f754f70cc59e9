"""Does reconstruction add to Mean Teacher? The labels x budget study of benchmarks/budget_map.py --labels."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from . import common
from .common import table_header

PRESETS = ("classification", "classification_stability", "autoencoder_stability", "full")
LABELS = (20, 50, 100)
BUDGETS = (1000, 2000, 4000)
SEEDS = 3
MAP_LABELS = 100  # the label count of configs/mnist5k.yaml, where the budget map chose the settings
FIGURE = Path("figures") / "labels-study.png"
# the paper's two comparisons (Table 1): reconstruction on top of stability, with and without the hybrid architecture
PAIRS = (("full", "classification_stability", "full − (classification + stability)"),
         ("autoencoder_stability", "classification_stability",
          "(autoencoder + stability) − (classification + stability)"))


def load() -> list[dict]:
    return common.load("labels-mnist5k-*.json")


def cells(runs: list[dict]) -> dict[tuple[int, int], list[dict]]:
    """(labels, steps) -> its runs."""
    out = defaultdict(list)
    for r in runs:
        out[(r["labels"], r["steps"])].append(r)
    return out


def paired(rs: list[dict], a: str, b: str, key: str = "val_acc") -> list[float]:
    return common.paired_diffs(rs, a, b, key)


def pays(diffs: list[float]) -> bool:
    """Reconstruction pays in a cell: every seed of the full count ahead, and the mean beyond its spread."""
    return (len(diffs) == SEEDS and all(d > 0 for d in diffs)
            and statistics.fmean(diffs) - statistics.stdev(diffs) > 0)


def cost_ratios(runs: list[dict]) -> dict[str, float]:
    """Each preset's training seconds over classification + stability's, the median over the cells with both."""
    ratios = defaultdict(list)
    for rs in cells(runs).values():
        base = {r["seed"]: r["seconds"] for r in rs if r["preset"] == "classification_stability"}
        for r in rs:
            if r["seed"] in base and "reused_from" not in r:  # reused cells were timed by another session
                ratios[r["preset"]].append(r["seconds"] / base[r["seed"]])
    return {p: statistics.median(v) for p, v in ratios.items() if v}


def conclusion(runs: list[dict]) -> str:
    """One sentence: where the study found reconstruction paying on top of stability, or that it found none, with
    how much of the study stands behind it."""
    found = [f"{labels} labels, {steps} steps" for (labels, steps), rs in sorted(cells(runs).items())
             if pays(paired(rs, "full", "classification_stability"))]
    measured = sum(1 for rs in cells(runs).values() if len(paired(rs, "full", "classification_stability")) == SEEDS)
    held = sorted({r["labels"] for r in runs} - {MAP_LABELS})
    extent = (f" ({measured} of {len(LABELS) * len(BUDGETS)} cells measured"
              + (f"; at {' and '.join(map(str, held))} labels with the settings chosen at {MAP_LABELS}, not re-chosen"
                 if held else "") + ")")
    if found:
        return ("Full HybridNet leads classification + stability (validation, every seed ahead, beyond the spread) at "
                f"{'; '.join(found)}{extent}; elsewhere the gain over the labeled-only baseline is Mean Teacher's.")
    return (f"None measured at CPU scale{extent}: full HybridNet does not lead classification + stability beyond the "
            "spread; the gain over the labeled-only baseline measured here is Mean Teacher's.")


def _stat(diffs: list[float]) -> dict | None:
    if not diffs:
        return None
    return {"mean": round(statistics.fmean(diffs), 2), "std": round(statistics.stdev(diffs), 2) if len(diffs) > 1 else 0.0,
            "ahead": sum(d > 0 for d in diffs), "seeds": len(diffs)}


def summary(runs: list[dict]) -> dict | None:
    """What the library says of the study (hybridwrap.budget.reconstruction_line): per label count and budget, the
    paired gains of reconstruction on top of stability, the cost of each preset, and the conclusion."""
    if not runs:
        return None
    rows = [{"labels": labels, "steps": steps,
             "full": _stat(paired(rs, "full", "classification_stability")),
             "autoencoder": _stat(paired(rs, "autoencoder_stability", "classification_stability"))}
            for (labels, steps), rs in sorted(cells(runs).items())]
    return {"dataset": "mnist5k", "rows": [r for r in rows if r["full"] or r["autoencoder"]],
            "cost": {p: round(v, 2) for p, v in cost_ratios(runs).items()}, "conclusion": conclusion(runs)}


def study_plot(runs: list[dict], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PAIRS), figsize=(10, 3.6), sharey=True)
    for ax, (a, b, title) in zip(axes, PAIRS):
        for labels in LABELS:
            points = [(steps, paired(rs, a, b)) for (n, steps), rs in sorted(cells(runs).items()) if n == labels]
            points = [(s, d) for s, d in points if d]
            if points:
                ax.errorbar([s for s, _ in points], [statistics.fmean(d) for _, d in points],
                            yerr=[statistics.stdev(d) if len(d) > 1 else 0 for _, d in points],
                            marker="o", capsize=3, label=f"{labels} labels")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_xticks(BUDGETS, [str(b) for b in BUDGETS])
        ax.minorticks_off()
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("steps")
    axes[0].set_ylabel("paired gain, validation (points)")
    axes[0].legend(fontsize=8)
    return common.save_figure(fig, path, dpi=110)


def selections() -> list[dict]:
    """The study's selections (`budget_map.py --select --labels N`): one tune.json per label count and preset."""
    return common.load("tune-mnist5k-n*-*-it*.json")


def selection_lines(tunes: list[dict]) -> list[str]:
    """Per label count, each preset's chosen setting and its validation score at the selection's budget: the
    same trials for every preset, so the scores compare the presets each at its best."""
    lines = ["**Selection on validation** (hybridwrap tune, the test set unused; trials = settings x seeds, the "
             "lower half of the settings stopped at half the budget; the score is the chosen setting's student "
             "validation accuracy averaged over its seeds, at the selection's budget):", ""]
    lines += table_header("| labels | preset | steps | trials | chosen | validation |")
    order = {p: i for i, p in enumerate(PRESETS)}
    for t in sorted(tunes, key=lambda t: (t["labels"], order.get(t["preset"], len(order)))):
        settings = len(t["ranking"]) + len(t.get("stopped_early") or [])
        chosen = ", ".join(f"{k.split('.')[-1]}={v:g}" for k, v in t["best"].items())
        lines.append(f"| {t['labels']} | {t['preset']} | {t['max_steps']} | {settings} x {len(t['seeds'])} | "
                     f"{chosen} | {t['ranking'][0][t['metric']]:.1f} |")
    return lines + [""]


def study_lines(results: Path) -> list[str]:
    runs = load()
    if not runs:
        return []
    lines = ["## Does reconstruction add to Mean Teacher?", "",
             "HybridNet's claim is that reconstruction cooperates with classification (Table 1: classification + "
             "stability 81.3, autoencoder + stability 84.9, full 86.6 on CIFAR-10). The labels x budget study "
             "(`python benchmarks/budget_map.py --labels 20 50 100`) runs configs/mnist5k.yaml with 20, 50 and 100 "
             "labels (2, 5 and 10 per class) at 1000, 2000 and 4000 steps, Table 1's four presets, seed k on labeled "
             "subset k; the 100-label cells the budget map ran with the same config are reused from it. Each cell "
             "is the paired difference on the 500 validation images (mean ± std over seeds, seeds ahead); a `-` is a "
             "cell not measured yet.", ""]
    by_cell = cells(runs)
    for a, b, title in PAIRS:
        lines += [f"**{title}**", ""]
        lines += table_header("| labels | " + " | ".join(f"{s} steps" for s in BUDGETS) + " |")
        for labels in LABELS:
            row = [common.paired_cell(paired(by_cell.get((labels, steps), []), a, b)) for steps in BUDGETS]
            lines.append(f"| {labels} | " + " | ".join(row) + " |")
        lines.append("")
    measured = ", ".join(f"{labels} labels at {steps} steps ({common.count(len({r['seed'] for r in rs}), 'seed')}, "
                         f"{len({r['preset'] for r in rs})} presets)" for (labels, steps), rs in sorted(by_cell.items()))
    lines += [f"Cells with results: {measured}.", ""]
    ratios = cost_ratios(runs)
    if ratios:
        lines += ["Cost per step against classification + stability (median over the cells timed here): "
                  + ", ".join(f"{p} {ratios[p]:.2f}x" for p in PRESETS if p in ratios) + ".", ""]
    settings = sorted({r.get("selected_by") or "" for r in runs} - {""})
    held = sorted({r["labels"] for r in runs} - {MAP_LABELS})
    tunes = selections()
    selected = sorted({t["labels"] for t in tunes if {u["preset"] for u in tunes if u["labels"] == t["labels"]}
                       >= set(PRESETS)})
    lines += [("Settings: " + " / ".join(settings) + "." if settings else "Settings: the config's.")
              + (f" At {' and '.join(map(str, held))} labels the cells run the settings held from that "
                 f"{MAP_LABELS}-label selection." if held else "")
              + (f" The selection with the same trials for every preset has been run at "
                 f"{' and '.join(map(str, selected))} labels (below); the cells still run the settings above, not "
                 "its choices." if selected else
                 " The selection at each label count, with the same trials for every preset, has not been run yet."),
              ""]
    if tunes:
        lines += selection_lines(tunes)
    lines += [f"**Conclusion so far:** {conclusion(runs)}", ""]
    if study_plot(runs, results / FIGURE):
        lines += [f"![paired gains of reconstruction on top of stability]({results.name}/{FIGURE.as_posix()})", ""]
    return lines
