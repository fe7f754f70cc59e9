""""Finding the regime": fewer labels, longer training, and how far each run fits its labeled images."""

from __future__ import annotations

import statistics

from rendering.common import TABLE1, run_id, load, budgets, fmt, mean_or_none, signed, table_header


def regime_lines(runs: list[dict]) -> list[str]:
    """Per budget: how well the presets fit their labels (fit_gap.py) and what each addition changes on validation."""
    fits = {f["run"]: f for f in load("fitgap-*.json")}
    rows = []
    for (tag, width, labels, iters), rs in budgets(runs).items():
        by = {p: [r for r in rs if r["preset"] == p] for p in TABLE1}
        if not by["classification"] or not by["classification_stability"]:
            continue
        val = {p: mean_or_none(r.get("val_acc") for r in v) for p, v in by.items()}
        teacher_val = {p: mean_or_none(r.get("teacher_val_acc") for r in v) for p, v in by.items()}
        fit = {p: [fits[run_id(r)] for r in v if run_id(r) in fits] for p, v in by.items()}
        labeled = {p: mean_or_none(f["student_labeled_acc"] for f in v) for p, v in fit.items()}

        def diff(a, b, table):
            return None if table[a] is None or table[b] is None else table[a] - table[b]

        rows.append({
            "name": f"w{width}, {labels} labels, {iters} it. (`{tag}`)", "seeds": len({r["seed"] for r in rs}),
            "labeled": labeled["classification"], "val": mean_or_none(f.get("student_val_acc") for f in fit["classification"]),
            "gap": mean_or_none(f.get("student_gap") for f in fit["classification"]),
            "stab_val": diff("classification_stability", "classification", val),
            "stab_labeled": diff("classification_stability", "classification", labeled),
            "full_val": diff("full", "classification_stability", val),
            "full_teacher_val": diff("full", "classification_stability", teacher_val),
            "full_labeled": diff("full", "classification_stability", labeled),
            "full_cls_val": diff("full", "classification", val)})
    if not rows:
        return []
    lines = ["## Finding the regime: when do stability and reconstruction help?", "",
             "Stability (Eq. 7) and the reconstruction terms are regularisers. The hypothesis tested here: they can only "
             "raise validation accuracy once the classifier fits its labeled images better than it generalises. For each "
             "budget, `labeled acc` is the accuracy of the trained `classification` student on its own labeled images (no "
             "augmentation, `benchmarks/fit_gap.py`, over the runs it has measured) and `fit gap` is that minus the same "
             "runs' validation accuracy; the other columns say what each addition changes on the validation split and on "
             "the labeled images (student unless marked; mean over seeds; the test set plays no part here).", "",
             *table_header("| budget | seeds | classification: labeled acc | val acc | fit gap | stability − classification: val | "
             "labeled | full − classif.+stability: val | val (teacher) | labeled | full − classification: val |")]
    for r in rows:
        lines.append(f"| {r['name']} | {r['seeds']} | {fmt(r['labeled'])} | {fmt(r['val'])} | {signed(r['gap'])} | "
                     f"{signed(r['stab_val'])} | {signed(r['stab_labeled'])} | {signed(r['full_val'])} | "
                     f"{signed(r['full_teacher_val'])} | {signed(r['full_labeled'])} | {signed(r['full_cls_val'])} |")
    ordered = sorted((r for r in rows if r["gap"] is not None and r["stab_val"] is not None), key=lambda r: r["gap"])
    if len(ordered) > 1:
        lines += ["", "Budgets ordered by the fit gap of `classification` (gap → what stability adds on validation): "
                  + "; ".join(f"{r['name']}: {r['gap']:+.2f} → {r['stab_val']:+.2f}" for r in ordered) + "."]
        if ordered[-1]["stab_val"] <= 0:
            lines[-1] += (" Even the budget with the largest fit gap gains nothing from stability: the fit gap alone "
                          "does not explain the stability effect here.")
    helped = [r["name"] for r in rows if r["stab_val"] is not None and r["stab_val"] > 0]
    compared = [r for r in rows if r["full_val"] is not None]
    full_leads = [r for r in compared if r["full_val"] > 0]
    lines += ["", f"Stability raised the student's validation accuracy over `classification` in {len(helped)} of "
                  f"{len(rows)} budgets{': ' + ', '.join(helped) if helped else ''}. Full HybridNet led classification + "
                  f"stability on validation (student) in {len(full_leads)} of {len(compared)} budgets."]
    slowed = [r for r in rows if r["stab_val"] is not None and r["stab_labeled"] is not None]
    if slowed and all(r["stab_val"] < 0 and r["stab_labeled"] < 0 for r in slowed):
        lines[-1] += (f" In all {len(slowed)} budgets with fit measurements, stability lowered the accuracy on the labeled "
                      "images as well as on validation: it holds the student back without the better generalisation that should "
                      "pay for it.")
    sped = [r for r in rows if r["full_val"] is not None and r["full_labeled"] is not None]
    if sped and all(r["full_val"] > 0 and r["full_labeled"] > 0 for r in sped):
        lines[-1] += (f" The reconstruction terms of full HybridNet raised both, in all {len(sped)} such budgets: they "
                      "help the encoder learn faster, which is what pays at these short budgets.")
    before, after = [], []  # stability − classification on validation: before the lr ramp-down (last quarter), at the end
    for (tag, width, labels, iters), rs in budgets(runs).items():
        for seed in {r["seed"] for r in rs}:
            curves = {r["preset"]: {c["step"]: c.get("val_acc") for c in r["curve"]} for r in rs if r["seed"] == seed}
            cls, stab = curves.get("classification"), curves.get("classification_stability")
            if not cls or not stab:
                continue
            for step in sorted(set(cls) & set(stab)):
                if cls[step] is None or stab[step] is None:
                    continue
                if step <= 0.75 * iters:
                    before.append(stab[step] - cls[step])
                elif step == iters:
                    after.append(stab[step] - cls[step])
    if before and after:
        lines[-1] += (f" During training, before the learning-rate ramp-down of the last quarter, stability − classification "
                      f"on validation averages {statistics.mean(before):+.2f} over {len(before)} evaluations; at the end of training, "
                      f"{statistics.mean(after):+.2f} over {len(after)}")
        lines[-1] += (": stability steadies a student trained at a high learning rate, and the annealed classifier catches "
                      "up (see the curves and the learning-rate study)." if statistics.mean(before) > 0 > statistics.mean(after)
                      else ".")
    ahead = [r["teacher_val_acc"] - r["val_acc"] for rs in budgets(runs).values() for r in rs
             if r.get("teacher_val_acc") is not None and r.get("val_acc") is not None]
    if ahead:
        lines[-1] += (f" Over the {len(ahead)} runs with a Mean Teacher, the teacher's validation accuracy minus the "
                      f"student's is {statistics.mean(ahead):+.2f} on average (from {min(ahead):+.2f} to {max(ahead):+.2f}): "
                      "the stability targets carry little the student does not already know.")
    measured = [r for r in rows if r["labeled"] is not None]
    if measured:
        top = max(measured, key=lambda r: r["labeled"])
        lines[-1] += f" The best fit of `classification` to its own labeled images is {top['labeled']:.2f}% ({top['name']})"
        lines[-1] += ": every budget here is still learning to fit its labeled images." if top["labeled"] < 90 else "."
    fit_rows = []
    for (tag, width, labels, iters), rs in budgets(runs).items():
        for preset in TABLE1:
            f = [fits[run_id(r)] for r in rs if r["preset"] == preset and run_id(r) in fits]
            if f:
                fit_rows.append(f"| w{width}, {labels} labels, {iters} it. | {preset} | {len(f)} | "
                                f"{fmt(mean_or_none(x['student_labeled_acc'] for x in f))} | "
                                f"{fmt(mean_or_none(x.get('student_val_acc') for x in f))} | {signed(mean_or_none(x.get('student_gap') for x in f))} |")
    if fit_rows:
        lines += ["", "How well every measured run fits its labeled images (student, mean over seeds):", "",
                  *table_header("| budget | preset | runs | labeled acc | val acc | fit gap |"), *fit_rows,
                  "", "```bash", "python benchmarks/fit_gap.py", "```"]
    return lines + [""]
