"""Does reconstruction add to Mean Teacher? The labels x budget study of benchmarks/budget_map.py --labels."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from budget_map import is_current, ran_with  # the rule the study runs by: which cells ran their selection's choice

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
    """The study's cells that count: each ran its label count's choice (or, before that selection, the held
    settings)."""
    return split(common.load("labels-mnist5k-*.json"), selections())[0]


def choices(tunes: list[dict]) -> dict[tuple[int, str], dict]:
    """(labels, preset) -> the settings the study's selection chose."""
    return {(t["labels"], t["preset"]): t["best"] for t in tunes}


def split(runs: list[dict], tunes: list[dict]) -> tuple[list[dict], list[dict]]:
    """The runs that count, and those that ran settings other than their label count's selection chose (to be run
    again with the choice)."""
    chosen = choices(tunes)
    current, stale = [], []
    for r in runs:
        (current if is_current(r, chosen.get((r["labels"], r["preset"]))) else stale).append(r)
    return current, stale


def selected_labels(tunes: list[dict]) -> list[int]:
    """The label counts whose selection has run for every preset."""
    return sorted(n for n in {t["labels"] for t in tunes} if set(PRESETS) <= {t["preset"] for t in tunes
                                                                               if t["labels"] == n})


def cells(runs: list[dict]) -> dict[tuple[int, int], list[dict]]:
    """(labels, steps) -> its runs."""
    out = defaultdict(list)
    for r in runs:
        out[(r["labels"], r["steps"])].append(r)
    return out


def paired(rs: list[dict], a: str, b: str, key: str = "val_acc") -> list[float]:
    return common.paired_diffs(rs, a, b, key)


def ahead_in_every_seed(diffs: list[float]) -> bool:
    """Every seed of the full count ahead in a cell."""
    return len(diffs) == SEEDS and all(d > 0 for d in diffs)


def pays(diffs: list[float]) -> bool:
    """Reconstruction pays in a cell: every seed ahead, and the mean beyond its spread."""
    return ahead_in_every_seed(diffs) and statistics.fmean(diffs) - statistics.stdev(diffs) > 0


def cost_ratios(runs: list[dict]) -> dict[str, float]:
    """Each preset's training seconds over classification + stability's, the median over the cells with both."""
    ratios = defaultdict(list)
    for rs in cells(runs).values():
        base = {r["seed"]: r["seconds"] for r in rs if r["preset"] == "classification_stability"}
        for r in rs:
            if r["seed"] in base and "reused_from" not in r:  # reused cells were timed by another session
                ratios[r["preset"]].append(r["seconds"] / base[r["seed"]])
    return {p: statistics.median(v) for p, v in ratios.items() if v}


def coverage(runs: list[dict], tunes: list[dict], stale: list[dict]) -> tuple[int, list, list]:
    """How much of the study stands: the cells measured with every seed (full and classification + stability), the
    (labels, steps) cells to be run again with their selection's choice, and the label counts whose settings were
    held from the budget map's selection rather than chosen."""
    gains = [paired(rs, "full", "classification_stability") for rs in cells(runs).values()]
    measured = sum(1 for d in gains if len(d) == SEEDS)
    waiting = sorted({(r["labels"], r["steps"]) for r in stale})
    held = sorted({r["labels"] for r in runs} - set(selected_labels(tunes)))
    return measured, waiting, held


def complete(runs: list[dict], tunes: list[dict], stale: list[dict]) -> bool:
    """Every cell measured with every seed, each with its own selection's choices."""
    measured, waiting, held = coverage(runs, tunes, stale)
    return measured == len(LABELS) * len(BUDGETS) and not waiting and not held


def conclusion(runs: list[dict], tunes: list[dict] | None = None, stale: list[dict] | None = None) -> str:
    """One sentence: where the study found reconstruction paying on top of stability, or that it found none, with
    how much of the study stands behind it (``runs``: the runs that count; ``stale``: those to be made again with
    their selection's choice; both default to the committed results)."""
    tunes = selections() if tunes is None else tunes
    stale = split(common.load("labels-mnist5k-*.json"), tunes)[1] if stale is None else stale
    gains = {cell: paired(rs, "full", "classification_stability") for cell, rs in sorted(cells(runs).items())}
    found = [f"{labels} labels, {steps} steps" for (labels, steps), d in gains.items() if pays(d)]
    within = [f"{labels} labels, {steps} steps" for (labels, steps), d in gains.items()
              if ahead_in_every_seed(d) and not pays(d)]
    near = f"; it is ahead in every seed but within the spread at {'; '.join(within)}" if within else ""
    measured, waiting, held = coverage(runs, tunes, stale)
    extent = (f" ({measured} of {len(LABELS) * len(BUDGETS)} cells measured"
              + (f"; {common.count(len(waiting), 'cell')} at "
                 f"{common.listed(sorted({n for n, _ in waiting}))} labels to be run again with the choices "
                 "of their selection" if waiting else "")
              + (f"; at {common.listed(held)} labels with the settings held from the budget map's "
                 f"selection at {MAP_LABELS} labels, not re-chosen" if held else "") + ")")
    if found:
        return ("Full HybridNet leads classification + stability (validation, every seed ahead, beyond the spread) at "
                f"{'; '.join(found)}{extent}{near}; elsewhere the gain over the labeled-only baseline is Mean Teacher's.")
    return (f"{'None measured at CPU scale' if complete(runs, tunes, stale) else 'None found yet'}{extent}: full "
            f"HybridNet does not lead classification + stability beyond the spread{near}; the gain over the "
            "labeled-only baseline measured here is Mean Teacher's.")


def _stat(diffs: list[float]) -> dict | None:
    if not diffs:
        return None
    return {"mean": round(statistics.fmean(diffs), 2), "std": round(statistics.stdev(diffs), 2) if len(diffs) > 1 else 0.0,
            "ahead": sum(d > 0 for d in diffs), "seeds": len(diffs)}


def summary(runs: list[dict]) -> dict | None:
    """What the library says of the study (hybridwrap.budget.reconstruction_line, OWN_DATA_PASSES): per label count
    and budget, the passes over the unlabeled pool, the paired gains of reconstruction on top of stability and whether
    full HybridNet's reconstruction pays there (`pays`), the cost of each preset, and the conclusion."""
    if not runs:
        return None
    rows = []
    for (labels, steps), rs in sorted(cells(runs).items()):
        full = paired(rs, "full", "classification_stability")
        rows.append({"labels": labels, "steps": steps,
                     "passes": round(statistics.fmean(r["unlabeled_passes"] for r in rs), 3),
                     "full": _stat(full), "pays": pays(full),
                     "autoencoder": _stat(paired(rs, "autoencoder_stability", "classification_stability"))})
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


def settings_text(settings: dict) -> str:
    """The settings by their short names, e.g. ``lr=0.003, lambda_stability=30``."""
    return ", ".join(f"{k.split('.')[-1]}={v:g}" for k, v in settings.items())


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
        chosen = settings_text(t["best"])
        lines.append(f"| {t['labels']} | {t['preset']} | {t['max_steps']} | {settings} x {len(t['seeds'])} | "
                     f"{chosen} | {t['ranking'][0][t['metric']]:.1f} |")
    return lines + [""]


def settings_lines(runs: list[dict], stale: list[dict], tunes: list[dict]) -> list[str]:
    """Which settings each label count's cells ran: its own selection's choices, or those held from the budget
    map's; and the runs still to be made again with a choice."""
    selected = selected_labels(tunes)
    held = sorted({r["labels"] for r in runs + stale} - set(selected))
    held_by = sorted({r.get("selected_by") or "" for r in runs + stale if r["labels"] in held} - {""})
    text = []
    if selected:
        text.append(f"At {common.listed(selected)} labels the cells run the choices of that label count's "
                    "selection (below), the same trials for every preset.")
    if held:
        text.append(f"At {common.listed(held)} labels the selection has not run for every preset yet, and "
                    "its cells run the "
                    f"settings held from the budget map's selection at {MAP_LABELS} labels"
                    + (": " + " / ".join(held_by) if held_by else "") + ".")
    lines = ["Settings: " + " ".join(text), ""]
    if stale:
        pending = defaultdict(list)
        for r in stale:
            pending[(r["labels"], r["preset"])].append(r)
        lines += ["Runs that trained settings other than their selection's choice, left out of the tables above "
                  "until `python benchmarks/budget_map.py --labels N` runs them again with the choice: "
                  + "; ".join(f"{labels} labels, {preset} ({common.count(len(rs), 'run')}, "
                              f"{settings_text(ran_with(rs[0]))})" for (labels, preset), rs in sorted(pending.items()))
                  + ".", ""]
    return lines


def study_lines(results: Path) -> list[str]:
    tunes = selections()
    runs, stale = split(common.load("labels-mnist5k-*.json"), tunes)
    if not runs and not stale:
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
                         f"{common.count(len({r['preset'] for r in rs}), 'preset')})" for (labels, steps), rs in sorted(by_cell.items()))
    lines += [f"Cells with results: {measured}.", ""]
    ratios = cost_ratios(runs)
    if ratios:
        lines += ["Cost per step against classification + stability (median over the cells timed here): "
                  + ", ".join(f"{p} {ratios[p]:.2f}x" for p in PRESETS if p in ratios) + ".", ""]
    lines += settings_lines(runs, stale, tunes)
    if tunes:
        lines += selection_lines(tunes)
    heading = "Conclusion" if complete(runs, tunes, stale) else "Conclusion so far"
    lines += [f"**{heading}:** {conclusion(runs, tunes, stale)}", ""]
    if study_plot(runs, results / FIGURE):
        lines += [f"![paired gains of reconstruction on top of stability]({results.name}/{FIGURE.as_posix()})", ""]
    return lines
