"""Table 1 as hybridwrap 0.1-0.2 ran it: the weights chosen on validation, the tables of its runs, their curves and the
diagnosis of full against classification + stability."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from rendering.common import (PAPER_TABLE1, TABLE1, budgets, capability, commands_block, fmt, mean_std, save_figure,
                              select, table_header)


def ablation_tables(runs: list[dict]) -> list[str]:
    lines = []
    for (tag, width, labels, iters), rs in budgets(runs).items():
        seeds = sorted({r["seed"] for r in rs})
        lines += [f"### ConvLarge width {width}, {labels} labels, {iters} iterations, weights `{tag}`", "",
                  f"Seeds {', '.join(map(str, seeds))}; mean ± std over seeds. Test set: CIFAR-10 test (JPEG copy). "
                  f"Validation: {rs[0].get('val_size')} images held out of the training set. Timed on "
                  f"{'; '.join(sorted({r['device'] + ', ' + capability(r) for r in rs}))}.", "",
                  *table_header(f"| preset | student test acc | teacher test acc | student val acc | seconds/run | paper ({labels} labels, 600 epochs) |")]
        for preset in TABLE1:
            p = [r for r in rs if r["preset"] == preset]
            if not p:
                continue
            teacher = [r["teacher_test_acc"] for r in p if r.get("teacher_test_acc") is not None]
            val = [r["val_acc"] for r in p if r.get("val_acc") is not None]
            whole = [r["seconds"] for r in p if not r.get("resumed_from_step")]  # a resumed run timed only its tail
            secs = f"{statistics.mean(whole):.0f}" if whole else "- (resumed)"
            paper = PAPER_TABLE1[preset].get(labels, "-")
            lines.append(f"| {preset} | {mean_std([r['test_acc'] for r in p])} | {mean_std(teacher)} | "
                         f"{mean_std(val)} | {secs} | {paper} |")
        full = [r for r in rs if r["preset"] == "full"]
        if full and full[0].get("branch"):
            shares = [r["branch"].get("energy_share_c") for r in full if r["branch"].get("energy_share_c") is not None]
            psnr = [r["branch"].get("psnr_x_hat") for r in full if r["branch"].get("psnr_x_hat") is not None]
            if shares:
                lines += ["", f"Branch contributions of `full` at the end: energy share of x̂_c "
                              f"{mean_std([100 * s for s in shares])} %, PSNR of x̂ {mean_std(psnr)} dB."]
        lines += ["", "Reproduce:", "", *commands_block(rs), ""]
    return lines


def selection_lines(runs: list[dict]) -> list[str]:
    sel = [r for r in runs if r["tag"].startswith("select-")]
    if not sel:
        return []
    lines = ["### Choosing the reconstruction weights on the validation split", "",
             *table_header("| candidate | overrides | iterations | student val acc | teacher val acc |")]
    for r in sorted(sel, key=lambda r: r["tag"]):
        lines.append(f"| {r['tag']} | {' '.join(r['overrides']) or 'paper defaults (every λ = 1)'} | {r['iterations']} | "
                     f"{r['val_acc']:.2f} | {fmt(r.get('teacher_val_acc'))} |")
    tags = sorted({r["tag"] for r in sel})
    lines += ["", f"Chosen (best student validation accuracy): `{select(tags)}`. Test accuracy played no part.", "",
              *commands_block(sel), ""]
    return lines


def diagnosis_lines(runs: list[dict]) -> list[str]:
    """Full HybridNet against classification + stability: who leads, how it evolves, and the loss scales."""
    lines = []
    for key, rs in budgets(runs).items():
        full = [r for r in rs if r["preset"] == "full"]
        stab = [r for r in rs if r["preset"] == "classification_stability"]
        if not full or not stab:
            continue
        tag, width, labels, iters = key
        lines += [f"### Does full HybridNet beat classification + Mean Teacher? (`{tag}`, width {width}, {labels} labels, "
                  f"{iters} iterations)",
                  ""]
        steps = sorted({c["step"] for r in full + stab for c in r["curve"]})
        lines += [*table_header("| iteration | full (student) | classif.+stability (student) | difference | full (teacher) | "
                  "classif.+stability (teacher) | difference |")]
        last = None
        for step in steps:
            def at(rs_, k):
                v = [c[k] for r in rs_ for c in r["curve"] if c["step"] == step and c.get(k) is not None]
                return statistics.mean(v) if v else None
            fs, ss, ft, st = at(full, "test_acc"), at(stab, "test_acc"), at(full, "teacher_test_acc"), at(stab, "teacher_test_acc")
            if fs is None or ss is None:
                continue
            d1 = fs - ss
            d2 = (ft - st) if ft is not None and st is not None else None
            last = (step, d1, d2)
            lines.append(f"| {step} | {fs:.2f} | {ss:.2f} | {d1:+.2f} | {ft if ft is None else f'{ft:.2f}'} | "
                         f"{st if st is None else f'{st:.2f}'} | {'-' if d2 is None else f'{d2:+.2f}'} |")
        if last:
            step, d1, d2 = last
            verdict = "leads" if d1 > 0 else "trails"
            lines += ["", f"At iteration {step}, full HybridNet {verdict} classification + stability by {abs(d1):.2f} "
                          f"points on the student" + (f" and by {d2:+.2f} on the teacher." if d2 is not None else ".")
                      + (" At this budget the paper's ordering does not appear yet." if d1 <= 0 else ""), ""]
        mean = {p: statistics.mean(r["test_acc"] for r in rs if r["preset"] == p) for p in TABLE1
                if any(r["preset"] == p for r in rs)}
        pairs = [("classification_stability", "classification"), ("autoencoder_stability", "autoencoder"),
                 ("full", "hybrid_architecture")]
        effects = [f"{a} − {b}: {mean[a] - mean[b]:+.2f}" for a, b in pairs if a in mean and b in mean]
        if effects:
            lines += ["What the stability term adds at this budget (student test accuracy, mean over seeds): "
                      + "; ".join(effects) + ".", ""]
        ours = sorted(mean, key=mean.get, reverse=True)
        if labels in PAPER_TABLE1["full"]:
            paper = sorted(mean, key=lambda p: PAPER_TABLE1[p][labels], reverse=True)
            lines += [f"Ranking here: {' > '.join(ours)}.", f"Ranking in the paper ({labels} labels): {' > '.join(paper)}.", ""]
        logs = [r["last_train_log"] for r in full if r.get("last_train_log")]
        if logs:
            terms = defaultdict(list)
            for log in logs:
                for k, v in log.items():
                    if k.startswith("loss/") and k != "loss/total":
                        name = k[len("loss/"):]
                        w = log.get(f"lambda/{'rec_inter' if name.startswith('rec_inter') else name}", 1.0)
                        terms[name].append(w * v)
            total = sum(statistics.mean(v) for v in terms.values())
            lines += ["Loss scales of `full` at the last logged step (λ × term, mean over seeds; the share is of "
                      "the weighted total):", "", *table_header("| term | λ × value | share |")]
            for name, v in sorted(terms.items(), key=lambda kv: -statistics.mean(kv[1])):
                lines.append(f"| {name} | {statistics.mean(v):.4f} | {statistics.mean(v) / total:.1%} |")
            lines.append("")
    return lines


def curve_plot(runs: list[dict], path: Path) -> bool:
    """Student test accuracy against iterations: one panel per budget, full vs classification (+ stability)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    shown = ("full", "classification_stability", "classification")
    groups = {k: [r for r in rs if r["preset"] in shown] for k, rs in budgets(runs).items()}
    groups = {k: rs for k, rs in groups.items() if rs}
    if not groups:
        return False
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    colors = {"full": "tab:red", "classification_stability": "tab:blue", "classification": "tab:gray"}
    for ax, ((tag, width, labels, iters), rs) in zip(axes[0], groups.items()):
        for r in sorted(rs, key=lambda r: (shown.index(r["preset"]), r["seed"])):
            steps = [c["step"] for c in r["curve"] if "test_acc" in c]
            acc = [c["test_acc"] for c in r["curve"] if "test_acc" in c]
            ax.plot(steps, acc, color=colors[r["preset"]], alpha=0.8, marker="o", ms=3,
                    label=f"{r['preset']} (seed {r['seed']})")
        ax.set_xlabel("iteration")
        ax.set_ylabel("student test accuracy (%)")
        ax.set_title(f"ConvLarge w{width}, {labels} labels, {iters} it. ({tag})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=110)
