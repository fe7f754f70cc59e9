"""Render benchmarks/results/*.json into benchmarks/RESULTS.md and a plot (never typed by hand).

    python benchmarks/render_results.py                       # RESULTS.md + results/curves.png
    python benchmarks/render_results.py --select TAG1 TAG2    # print the tag with the best validation accuracy
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from ablation import run_name  # this folder is on sys.path when the script runs

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TABLE1 = ["classification", "classification_stability", "autoencoder", "autoencoder_stability",
          "hybrid_architecture", "full"]
# Robert, Thome & Cord 2018, Table 1: ConvLarge, CIFAR-10 test accuracy, 600 epochs on a GPU.
PAPER_TABLE1 = {
    "classification": {1000: 63.4, 2000: 71.5, 4000: 79.0},
    "classification_stability": {1000: 65.6, 2000: 74.6, 4000: 81.3},
    "autoencoder": {1000: 65.0, 2000: 73.6, 4000: 79.8},
    "autoencoder_stability": {1000: 71.8, 2000: 80.4, 4000: 84.9},
    "hybrid_architecture": {1000: 63.2, 2000: 74.0, 4000: 80.3},
    "full": {1000: 74.1, 2000: 81.6, 4000: 86.6},
}


def is_table_run(r: dict) -> bool:
    """Runs of the main tables; `select-*` (choosing λ), `study-*` and `stability-*` (one-knob studies) and
    `decoder-*` (decoder options) runs are shown apart, and so are runs of a shipped config (`protocol_lines`)."""
    return not r["tag"].startswith(("select-", "study-", "stability-", "decoder-")) and "config" not in r


def run_id(r: dict) -> str:
    """The run directory name benchmarks/ablation.py gives this result."""
    return run_name(r["tag"], r["preset"], r["width"], r["labels"], r["iterations"], r["seed"])


def load(pattern: str = "ablation-*.json") -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob(pattern))]


def budgets(runs: list[dict]) -> dict[tuple, list[dict]]:
    """Main-table runs grouped by (tag, width, labels, iterations), in a stable order."""
    groups = defaultdict(list)
    for r in runs:
        if is_table_run(r):
            groups[(r["tag"], r["width"], r["labels"], r["iterations"])].append(r)
    return dict(sorted(groups.items()))


def set_results_dir(path: Path) -> None:
    global RESULTS
    RESULTS = Path(path)


def select(tags: list[str]) -> str:
    """The tag whose runs have the best mean *validation* accuracy (student), never the test accuracy."""
    runs = load()
    scores = {}
    for tag in tags:
        vals = [r["val_acc"] for r in runs if r["tag"] == tag and r.get("val_acc") is not None]
        if vals:
            scores[tag] = statistics.mean(vals)
    if not scores:
        sys.exit(f"no results with validation accuracy for tags {tags}")
    return max(scores, key=scores.get)


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def commands_block(rs: list[dict]) -> list[str]:
    """The commands that produced ``rs``, in a bash block; runs of hybridwrap 0.1-0.2's recipe (no `config` in
    their JSON) name the commit to check out first, since today's ablation.py runs a shipped config instead."""
    legacy = sorted({r.get("commit", "unknown").removesuffix("-dirty")[:12] for r in rs if "config" not in r})
    note = ([f"# recorded with hybridwrap 0.2's ablation.py recipe: check out {', '.join(legacy)} first "
             "(benchmarks/history/README.md)"] if legacy else [])
    return ["```bash", *note, *sorted({r["command"] for r in rs}), "```"]


def ablation_tables(runs: list[dict]) -> list[str]:
    lines = []
    for (tag, width, labels, iters), rs in budgets(runs).items():
        seeds = sorted({r["seed"] for r in rs})
        lines += [f"### ConvLarge width {width}, {labels} labels, {iters} iterations, weights `{tag}`", "",
                  f"Seeds {', '.join(map(str, seeds))}; mean ± std over seeds. Test set: CIFAR-10 test (JPEG copy). "
                  f"Validation: {rs[0].get('val_size')} images held out of the training set.", "",
                  f"| preset | student test acc | teacher test acc | student val acc | seconds/run | paper ({labels} labels, 600 epochs) |",
                  "|---|---|---|---|---|---|"]
        for preset in TABLE1:
            p = [r for r in rs if r["preset"] == preset]
            if not p:
                continue
            teacher = [r["teacher_test_acc"] for r in p if r.get("teacher_test_acc") is not None]
            val = [r["val_acc"] for r in p if r.get("val_acc") is not None]
            whole = [r["seconds"] for r in p if not r.get("resumed_from_step")]  # a resumed run timed only its tail
            secs = f"{statistics.mean(whole):.0f}" if whole else "- (resumed)"
            paper = PAPER_TABLE1[preset].get(labels, "-")
            lines.append(f"| {preset} | {_mean_std([r['test_acc'] for r in p])} | {_mean_std(teacher)} | "
                         f"{_mean_std(val)} | {secs} | {paper} |")
        full = [r for r in rs if r["preset"] == "full"]
        if full and full[0].get("branch"):
            shares = [r["branch"].get("energy_share_c") for r in full if r["branch"].get("energy_share_c") is not None]
            psnr = [r["branch"].get("psnr_x_hat") for r in full if r["branch"].get("psnr_x_hat") is not None]
            if shares:
                lines += ["", f"Branch contributions of `full` at the end: energy share of x̂_c "
                              f"{_mean_std([100 * s for s in shares])} %, PSNR of x̂ {_mean_std(psnr)} dB."]
        lines += ["", "Reproduce:", "", *commands_block(rs), ""]
    return lines


def selection_lines(runs: list[dict]) -> list[str]:
    sel = [r for r in runs if r["tag"].startswith("select-")]
    if not sel:
        return []
    lines = ["### Choosing the reconstruction weights on the validation split", "",
             "| candidate | overrides | iterations | student val acc | teacher val acc |", "|---|---|---|---|---|"]
    for r in sorted(sel, key=lambda r: r["tag"]):
        lines.append(f"| {r['tag']} | {' '.join(r['overrides']) or 'paper defaults (every λ = 1)'} | {r['iterations']} | "
                     f"{r['val_acc']:.2f} | {_fmt(r.get('teacher_val_acc'))} |")
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
        lines += ["| iteration | full (student) | classif.+stability (student) | difference | full (teacher) | "
                  "classif.+stability (teacher) | difference |", "|---|---|---|---|---|---|---|"]
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
                      "the weighted total):", "", "| term | λ × value | share |", "|---|---|---|"]
            for name, v in sorted(terms.items(), key=lambda kv: -statistics.mean(kv[1])):
                lines.append(f"| {name} | {statistics.mean(v):.4f} | {statistics.mean(v) / total:.1%} |")
            lines.append("")
    return lines


def picture_lines(runs: list[dict]) -> list[str]:
    """Where the Fig. 4 picture of the best run comes from (the picture itself is not committed)."""
    with_decoder = [r for r in runs if r["preset"] in ("hybrid_architecture", "full")  # both branches: x̂_c and x̂_u
                    and is_table_run(r) and r.get("val_acc") is not None]
    if not with_decoder:
        return []
    best = run_id(max(with_decoder, key=lambda r: r["val_acc"]))
    return ["### Reconstructions of the best CPU run", "",
            f"The best two-branch run by validation accuracy is `{best}`. Its Fig. 4-style picture (rows x, x̂_c, x̂_u, x̂) "
            "shows CIFAR-10 test images, so it is not committed (nothing derived from the data is); draw it with:",
            "", "```bash", f"hybridwrap visualize benchmarks/runs/{best} --output benchmarks/results/figures/{best}.png",
            "```", ""]


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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def _signed(v) -> str:
    return "-" if v is None else f"{v:+.2f}"


def regime_lines(runs: list[dict]) -> list[str]:
    """Per budget: how well the presets fit their labels (fit_gap.py) and what each addition changes on validation."""
    fits = {f["run"]: f for f in load("fitgap-*.json")}
    rows = []
    for (tag, width, labels, iters), rs in budgets(runs).items():
        by = {p: [r for r in rs if r["preset"] == p] for p in TABLE1}
        if not by["classification"] or not by["classification_stability"]:
            continue
        val = {p: _mean(r.get("val_acc") for r in v) for p, v in by.items()}
        teacher_val = {p: _mean(r.get("teacher_val_acc") for r in v) for p, v in by.items()}
        fit = {p: [fits[run_id(r)] for r in v if run_id(r) in fits] for p, v in by.items()}
        labeled = {p: _mean(f["student_labeled_acc"] for f in v) for p, v in fit.items()}

        def diff(a, b, table):
            return None if table[a] is None or table[b] is None else table[a] - table[b]

        rows.append({
            "name": f"w{width}, {labels} labels, {iters} it. (`{tag}`)", "seeds": len({r["seed"] for r in rs}),
            "labeled": labeled["classification"], "val": _mean(f.get("student_val_acc") for f in fit["classification"]),
            "gap": _mean(f.get("student_gap") for f in fit["classification"]),
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
             "| budget | seeds | classification: labeled acc | val acc | fit gap | stability − classification: val | "
             "labeled | full − classif.+stability: val | val (teacher) | labeled | full − classification: val |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['seeds']} | {_fmt(r['labeled'])} | {_fmt(r['val'])} | {_signed(r['gap'])} | "
                     f"{_signed(r['stab_val'])} | {_signed(r['stab_labeled'])} | {_signed(r['full_val'])} | "
                     f"{_signed(r['full_teacher_val'])} | {_signed(r['full_labeled'])} | {_signed(r['full_cls_val'])} |")
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
                                f"{_fmt(_mean(x['student_labeled_acc'] for x in f))} | "
                                f"{_fmt(_mean(x.get('student_val_acc') for x in f))} | {_signed(_mean(x.get('student_gap') for x in f))} |")
    if fit_rows:
        lines += ["", "How well every measured run fits its labeled images (student, mean over seeds):", "",
                  "| budget | preset | runs | labeled acc | val acc | fit gap |", "|---|---|---|---|---|---|", *fit_rows,
                  "", "```bash", "python benchmarks/fit_gap.py", "```"]
    return lines + [""]


def _args(command: str) -> dict[str, list[str]]:
    """`--flag value...` pairs of an ablation.py command line (repeated flags such as --set accumulate)."""
    out, flag = defaultdict(list), None
    for token in shlex.split(command)[2:]:
        if token.startswith("--"):
            flag = token
            out[flag]
        elif flag:
            out[flag].append(token)
    return out


def _changed(mine: dict, theirs: dict) -> list[str]:
    ignore = {"--tag", "--presets", "--seeds", "--eval-every", "--results-dir", "--runs-dir"}
    changed = []
    for flag in sorted(set(mine) | set(theirs)):
        if flag in ignore or mine.get(flag) == theirs.get(flag):
            continue
        extra = [v for v in mine.get(flag, []) if v not in theirs.get(flag, [])]
        changed.append(f"{flag} {' '.join(extra)}".strip())
    return changed


def study_lines(runs: list[dict]) -> list[str]:
    """`study-*` runs against the main-table run of the same preset, budget and seed that differs least (validation)."""
    studies = [r for r in runs if r["tag"].startswith("study-")]
    if not studies:
        return []
    fits = {f["run"]: f for f in load("fitgap-*.json")}

    def labeled(r):
        return fits.get(run_id(r), {}).get("student_labeled_acc") if r else None

    lines = ["### One knob at a time (validation only)", "",
             "Each row changes one setting of a main-table run with the same preset, budget and seed (the reference); "
             "`labeled` is the student's accuracy on its own labeled images (`fit_gap.py`).", "",
             "| study | changed | preset | budget | seed | student val acc | teacher val acc | labeled | reference | "
             "reference val acc | reference labeled | val difference |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    refs = {}
    for r in sorted(studies, key=lambda r: (r["tag"], TABLE1.index(r["preset"]), r["seed"])):
        mine = _args(r["command"])
        # references of the same kind: a study of a shipped config against runs of a shipped config, a study of
        # hybridwrap 0.2's recipe against that recipe's main-table runs
        kind = (lambda x: "config" in x and not x["tag"].startswith("study-")) if "config" in r else is_table_run
        same = [x for x in runs if kind(x) and all(x[k] == r[k] for k in ("preset", "width", "labels", "iterations", "seed"))]
        ref = refs[run_id(r)] = min(same, key=lambda x: len(_changed(mine, _args(x["command"]))), default=None)
        changed = _changed(mine, _args(ref["command"]) if ref else {})
        ref_val = ref.get("val_acc") if ref else None
        delta = None if ref_val is None or r.get("val_acc") is None else r["val_acc"] - ref_val
        lines.append(f"| {r['tag']} | {', '.join(changed) or '-'} | {r['preset']} | {r['labels']} labels, "
                     f"{r['iterations']} it. | {r['seed']} | {_fmt(r.get('val_acc'))} | {_fmt(r.get('teacher_val_acc'))} | "
                     f"{_fmt(labeled(r))} | {ref['tag'] if ref else '-'} | {_fmt(ref_val)} | {_fmt(labeled(ref))} | {_signed(delta)} |")
    pairs = [("classification_stability", "classification", "stability − classification"),
             ("full", "classification_stability", "full − classification + stability"),
             ("full", "classification", "full − classification")]
    notes = []
    for tag in sorted({r["tag"] for r in studies}):
        mine = {(r["preset"], r["seed"]): r for r in studies if r["tag"] == tag}
        for a, b, what in pairs:
            for seed in sorted(s for (p, s) in mine if p == a):
                ra, fa = mine[(a, seed)], refs.get(run_id(mine[(a, seed)]))
                # the other preset: from this study if it ran, else the reference setting's own run (marked)
                rb = mine.get((b, seed)) or next((x for x in runs if fa and x["tag"] == fa["tag"] and x["preset"] == b and all(
                    x[k] == ra[k] for k in ("width", "labels", "iterations", "seed"))), None)
                if rb is None or None in (ra.get("val_acc"), rb.get("val_acc")):
                    continue
                fb = refs.get(run_id(rb)) if rb["tag"] == tag else rb
                here = ra["val_acc"] - rb["val_acc"]
                there = (fa["val_acc"] - fb["val_acc"]) if fa and fb and None not in (fa.get("val_acc"), fb.get("val_acc")) else None
                against = "" if rb["tag"] == tag else f" (`{b}` from `{rb['tag']}`)"
                notes.append(f"`{tag}` (seed {seed}): {what}{against} on validation {here:+.2f}"
                             + (f"; reference setting: {there:+.2f}" if there is not None else "") + ".")
    if notes:
        lines += ["", "Within one study setting: " + " ".join(notes)]
    return lines + ["", *commands_block(studies), ""]


STABILITY_KNOBS = {  # tag -> (what changed against `stability-faithful`, does it change plain classification too)
    "stability-translate2": ("translation 2 px instead of 4", True),
    "stability-noise0": ("no Gaussian input noise (σ 0.15 -> 0)", True),
    "stability-ema0.99": ("EMA decay 0.99 instead of 0.97", False),
    "stability-ema0.999": ("EMA decay 0.999 instead of 0.97", False),
    "stability-rampup500": ("λ_s ramp-up 500 steps instead of 200", False),
    "stability-logitdist": ("Mean Teacher's two heads + logit distance 0.01", False),
}


def stability_study_lines(runs: list[dict]) -> list[str]:
    """benchmarks/history/stability_study.sh: stability − classification on validation, faithful protocol and one knob at a time."""
    study = [r for r in runs if r["tag"].startswith("stability-")]
    base = {r["preset"]: r for r in study if r["tag"] == "stability-faithful" and r["seed"] == 0}
    if not base:
        return []
    budget = (base[next(iter(base))]["labels"], base[next(iter(base))]["iterations"])
    old = {r["preset"]: r for r in runs if r["tag"] == "official" and r["seed"] == 0 and r["width"] == 0.25
           and (r["labels"], r["iterations"]) == budget}
    lines = ["## Stability under the faithful protocol", "",
             f"`benchmarks/history/stability_study.sh`: CIFAR-10, {budget[0]} labels, {budget[1]} iterations, quarter-width "
             "ConvLarge, official λ, seed 0, **validation accuracy** (5000 training images held out; test unused). "
             "`faithful` is hybridwrap 0.2's protocol (4 px translation at 32 px, EMA 0.97, mirrored decoders); "
             "`official` is the main table's run of hybridwrap 0.1 (2 px, EMA 0.99). Each other row changes one knob "
             "of `faithful`; where the knob does not touch plain classification, its classification column is the "
             "`faithful` run's.", "",
             "| setting | classification val | + stability val (student) | + stability val (teacher) | "
             "stability − classification (student) |", "|---|---|---|---|---|"]
    diffs = {}

    def row(name, cls, cs):
        if cls is None or cs is None:
            return
        d = cs["val_acc"] - cls["val_acc"]
        diffs[name] = d
        lines.append(f"| {name} | {cls['val_acc']:.2f} | {cs['val_acc']:.2f} | {_fmt(cs.get('teacher_val_acc'))} | "
                     f"{_signed(d)} |")

    row("official (hybridwrap 0.1)", old.get("classification"), old.get("classification_stability"))
    row("faithful", base.get("classification"), base.get("classification_stability"))
    for tag, (what, touches_cls) in STABILITY_KNOBS.items():
        mine = {r["preset"]: r for r in study if r["tag"] == tag and r["seed"] == 0}
        cls = mine.get("classification") if touches_cls else base.get("classification")
        row(f"{what}", cls, mine.get("classification_stability"))
    if "official (hybridwrap 0.1)" in diffs and "faithful" in diffs:
        a, b = diffs["official (hybridwrap 0.1)"], diffs["faithful"]
        verdict = ("changes the sign of" if (a < 0) != (b < 0) else "does not change the sign of")
        lines += ["", f"The faithful protocol {verdict} stability − classification on validation "
                      f"({_signed(a)} -> {_signed(b)} points, one seed)."]
    knobs = {k: v for k, v in diffs.items() if k not in ("official (hybridwrap 0.1)", "faithful")}
    if knobs:
        positive = [k for k, v in knobs.items() if v > 0]
        lines += [f"Stability is ahead of classification in {len(positive)} of the {len(knobs)} one-knob settings"
                  + (f" ({'; '.join(positive)})" if positive else "") + ". One seed each: differences under about "
                  "1 point are within the seed noise measured in the main table."]
    return lines + ["", *commands_block(study), ""]


STABILITY_PAIRS = [("classification_stability", "classification"), ("autoencoder_stability", "autoencoder"),
                   ("full", "hybrid_architecture")]


def _paired(rs: list[dict], a: str, b: str, key: str) -> list[float]:
    """Per-seed differences a − b of ``key`` over the seeds both presets have."""
    xa = {r["seed"]: r[key] for r in rs if r["preset"] == a and r.get(key) is not None}
    xb = {r["seed"]: r[key] for r in rs if r["preset"] == b and r.get(key) is not None}
    return [xa[s_] - xb[s_] for s_ in sorted(xa) if s_ in xb]


def _paired_cell(diffs: list[float]) -> str:
    return f"{_mean_std(diffs)} ({sum(d > 0 for d in diffs)}/{len(diffs)})" if diffs else "-"


def protocol_lines(runs: list[dict], tag: str = "protocol", literal: str = "literal") -> list[str]:
    """Table 1 with configs/cifar10_convlarge.yaml run as it is (hybridwrap >= 0.3's defaults), the §4.1 literal
    overlay beside it, and the stability effects paired by seed."""
    mine = [r for r in runs if r["tag"] == tag]
    if not mine:
        return []
    width, labels, iters = mine[0]["width"], mine[0]["labels"], mine[0]["iterations"]
    lit = [r for r in runs if r["tag"] == literal and (r["width"], r["labels"], r["iterations"]) == (width, labels, iters)]
    seeds = sorted({r["seed"] for r in mine})
    where = sorted({f"{r['device']}, CPU capability {r.get('cpu_capability', '?')}, {r['precision']}" for r in mine})
    lines = ["## Table 1 under the shipped protocol", "",
             f"`{' '.join(mine[0]['config'])}` run as it is (protocol: {mine[0]['protocol']}), at ConvLarge width "
             f"{width}, {labels} labels, {iters} iterations with every schedule scaled to that budget "
             "(`hybridwrap.config.scaled_to`), no `--set`. Seed k trains on labeled subset k. Validation: "
             f"{mine[0].get('val_size')} training images held out; test: CIFAR-10 test (JPEG copy). Seeds "
             f"{', '.join(map(str, seeds))}; mean ± std. Timed on {'; '.join(where)}.", "",
             f"| preset | student val acc | student test acc | teacher test acc | seconds/run | seeds | paper ({labels} labels) |",
             "|---|---|---|---|---|---|---|"]
    for name, rs, preset in [(p, mine, p) for p in TABLE1] + [("full, §4.1 literal (`paper_literal.yaml`)", lit, "full")]:
        p = [r for r in rs if r["preset"] == preset]
        if not p:
            continue
        whole = [r["seconds"] for r in p if not r.get("resumed_from_step")]
        secs = f"{statistics.mean(whole):.0f}" if whole else "- (resumed)"
        lines.append(f"| {name} | {_mean_std([r['val_acc'] for r in p if r.get('val_acc') is not None])} | "
                     f"{_mean_std([r['test_acc'] for r in p])} | "
                     f"{_mean_std([r['teacher_test_acc'] for r in p if r.get('teacher_test_acc') is not None])} | "
                     f"{secs} | {len(p)} | {PAPER_TABLE1[preset].get(labels, '-') if rs is mine else '-'} |")
    pairs = STABILITY_PAIRS + [("full", "classification"), ("full", "classification_stability")]
    lines += ["", "Paired by seed (mean ± std of the per-seed difference, and in how many seeds it is positive):", "",
              "| pair | validation | test |", "|---|---|---|"]
    effects = {}
    for a, b in pairs:
        val, test = _paired(mine, a, b, "val_acc"), _paired(mine, a, b, "test_acc")
        if val or test:
            effects[(a, b)] = val
            lines.append(f"| {a} − {b} | {_paired_cell(val)} | {_paired_cell(test)} |")
    lit_full = {r["seed"]: r for r in lit if r["preset"] == "full"}
    lit_diff = [lit_full[r["seed"]]["val_acc"] - r["val_acc"] for r in mine
                if r["preset"] == "full" and r["seed"] in lit_full]
    if lit_diff:
        lit_test = [lit_full[r["seed"]]["test_acc"] - r["test_acc"] for r in mine
                    if r["preset"] == "full" and r["seed"] in lit_full]
        lines.append(f"| full: §4.1 literal − shipped | {_paired_cell(lit_diff)} | {_paired_cell(lit_test)} |")
    val_means = {p: statistics.mean([r["val_acc"] for r in mine if r["preset"] == p]) for p in TABLE1
                 if any(r["preset"] == p for r in mine)}
    if len(val_means) == len(TABLE1):
        ranking = sorted(val_means, key=val_means.get, reverse=True)
        paper = sorted(TABLE1, key=lambda p: PAPER_TABLE1[p].get(labels, 0), reverse=True)
        lines += ["", f"Ranking on validation: {' > '.join(ranking)}.", f"Ranking in the paper: {' > '.join(paper)}."]

    def clear(d):  # the mean difference exceeds its seed-to-seed spread (needs >= 2 seeds)
        return len(d) > 1 and abs(statistics.mean(d)) > statistics.stdev(d)

    stab = [(a, b) for a, b in STABILITY_PAIRS if effects.get((a, b))]
    ahead = [a for a, b in stab if statistics.mean(effects[(a, b)]) > 0]
    established = [f"{a} − {b} ({'+' if statistics.mean(effects[(a, b)]) > 0 else '−'})" for a, b in stab
                   if clear(effects[(a, b)])]
    conclusion = (f"Conclusion, on validation: the stability term is ahead in {len(ahead)} of the {len(stab)} pairs "
                  f"({', '.join(ahead) or 'none'}); "
                  + (f"beyond the seed-to-seed spread: {', '.join(established)}." if established else
                     "no stability difference exceeds its seed-to-seed spread at this budget."))
    full_cls = effects.get(("full", "classification"))
    if full_cls:
        conclusion += (f" Full HybridNet − classification: {_mean_std(full_cls)} points, ahead in "
                       f"{sum(d > 0 for d in full_cls)} of {len(full_cls)} seeds"
                       + (", beyond the spread." if clear(full_cls) and statistics.mean(full_cls) > 0 else
                          ", not beyond the spread." if not clear(full_cls) else ", behind beyond the spread."))
    if lit_diff:
        conclusion += (f" The §4.1 literal setting against the shipped one (full): {_mean_std(lit_diff)} on validation"
                       f" ({sum(d > 0 for d in lit_diff)}/{len(lit_diff)} seeds ahead).")
    if any(r["preset"].endswith("stability") for r in mine) and mine[0].get("protocol", "").find("Temporal") >= 0:
        pool = 50000 - (mine[0].get("val_size") or 0) - labels  # CIFAR-10's unlabeled training images
        conclusion += (f" With Temporal Ensembling a target exists only from an image's second visit: at {iters} "
                       f"steps of 80 unlabeled images each of the {pool} unlabeled images is seen about "
                       f"{iters * 80 / pool:.1f} times, so the stability term acts on part of the run only.")
    lines += ["", conclusion, "", "Reproduce:", "", *commands_block(mine + lit), ""]
    return lines


def table3_lines(runs: list[dict], config: str = "configs/cifar10_shakeshake.yaml") -> list[str]:
    """Table 3's network (configs/cifar10_shakeshake.yaml run as it is) at a CPU budget: full against
    classification + Mean Teacher, paired by seed."""
    mine = [r for r in runs if r.get("config") == [config]]
    if not mine:
        return []
    r0 = mine[0]
    seeds = sorted({r["seed"] for r in mine})
    d = max(1, round(96 * (r0["width"] or 1.0)))
    where = sorted({f"{r['device']}, CPU capability {r.get('cpu_capability', '?')}, {r['precision']}" for r in mine})
    lines = ["## Table 3's network at a CPU budget", "",
             f"`{config}` run as it is (protocol: {r0['protocol']}) with a narrower network, shake-shake 26 "
             f"2x{d}d (`--width {r0['width']}` of 2x96d: the paper's is 2x96d), CIFAR-10, {r0['labels']} labels, "
             f"{r0['iterations']} iterations with every schedule scaled to that budget, no `--set`. Validation: "
             f"{r0.get('val_size')} training images held out; test: CIFAR-10 test (JPEG copy). Seeds "
             f"{', '.join(map(str, seeds))}. Timed on {'; '.join(where)}.", "",
             "| preset | student val acc | student test acc | teacher test acc | seconds/run | seeds |",
             "|---|---|---|---|---|---|"]
    for preset in ("classification", "classification_stability", "full"):
        p = [r for r in mine if r["preset"] == preset]
        if not p:
            continue
        whole = [r["seconds"] for r in p if not r.get("resumed_from_step")]
        lines.append(f"| {preset} | {_mean_std([r['val_acc'] for r in p if r.get('val_acc') is not None])} | "
                     f"{_mean_std([r['test_acc'] for r in p])} | "
                     f"{_mean_std([r['teacher_test_acc'] for r in p if r.get('teacher_test_acc') is not None])} | "
                     f"{f'{statistics.mean(whole):.0f}' if whole else '- (resumed)'} | {len(p)} |")
    val, test = (_paired(mine, "full", "classification_stability", k) for k in ("val_acc", "test_acc"))
    teacher = _paired(mine, "full", "classification_stability", "teacher_val_acc")
    if val:
        lines += ["", f"Full HybridNet − classification + Mean Teacher, paired by seed: validation {_paired_cell(val)}, "
                      f"teacher validation {_paired_cell(teacher)}, test {_paired_cell(test)} (in parentheses: seeds "
                      f"where HybridNet is ahead). "
                  + ("HybridNet is ahead beyond the seed-to-seed spread on validation."
                     if len(val) > 1 and statistics.mean(val) > statistics.stdev(val) else
                     "At this budget no advantage of HybridNet is established on validation.")
                  + f" The paper's Table 3 trains 2x96d for 300 epochs on a GPU ({r0['iterations']} iterations here are "
                    f"{r0['iterations'] / 754:.1f} epochs of its sampler), so this row checks that the network and "
                    "protocol run end to end and how they compare at this budget, not the paper's numbers."]
    return lines + ["", "Reproduce:", "", *commands_block(mine), ""]


def rerun_lines(runs: list[dict], new: str = "faithful", old: str = "official") -> list[str]:
    """Table 1 rerun under hybridwrap 0.2's defaults, beside hybridwrap 0.1's runs at the same budget and seeds."""
    mine = [r for r in runs if r["tag"] == new]
    if not mine:
        return []
    width, labels, iters = mine[0]["width"], mine[0]["labels"], mine[0]["iterations"]
    seeds = sorted({r["seed"] for r in mine})
    theirs = [r for r in runs if r["tag"] == old and (r["width"], r["labels"], r["iterations"]) == (width, labels, iters)
              and r["seed"] in seeds]

    def acc(rs, preset, key):
        return {r["seed"]: r[key] for r in rs if r["preset"] == preset and r.get(key) is not None}

    lines = ["## Table 1 under the new defaults", "",
             f"The main table's budget (width {width}, {labels} labels, {iters} iterations, official λ) trained again "
             f"with hybridwrap 0.2's defaults (`{new}`: 4 px translation at 32 px, EMA 0.97, true-mirror decoders, "
             f"stage pairs) beside hybridwrap 0.1's runs (`{old}`: 2 px, EMA 0.99), seeds {', '.join(map(str, seeds))}, "
             "mean ± std. Validation: 5000 training images held out; test: the JPEG copy.", "",
             f"| preset | val, 0.1 | val, 0.2 | test, 0.1 | test, 0.2 | teacher test, 0.2 | paper ({labels} labels) |",
             "|---|---|---|---|---|---|---|"]
    for preset in TABLE1:
        if not acc(mine, preset, "test_acc"):
            continue
        cells = [_mean_std(list(acc(rs, preset, key).values())) for key, rs in
                 (("val_acc", theirs), ("val_acc", mine), ("test_acc", theirs), ("test_acc", mine),
                  ("teacher_test_acc", mine))]
        lines.append(f"| {preset} | {' | '.join(cells)} | {PAPER_TABLE1[preset].get(labels, '-')} |")
    lines += ["", "What the stability term adds (paired by seed: mean ± std of the per-seed difference, and in how many "
                  "seeds it is positive):", "", "| pair | val, 0.1 | val, 0.2 | test, 0.1 | test, 0.2 |", "|---|---|---|---|---|"]
    verdicts = {}
    for a, b in STABILITY_PAIRS + [("full", "classification")]:
        cells = []
        for key, rs, version in (("val_acc", theirs, "0.1"), ("val_acc", mine, "0.2"), ("test_acc", theirs, "0.1"),
                                 ("test_acc", mine, "0.2")):
            xa, xb = acc(rs, a, key), acc(rs, b, key)
            diffs = [xa[s_] - xb[s_] for s_ in seeds if s_ in xa and s_ in xb]
            if not diffs:
                cells.append("-")
                continue
            cells.append(f"{_mean_std(diffs)} ({sum(d > 0 for d in diffs)}/{len(diffs)})")
            verdicts[(a, b, key, version)] = diffs
        if any(c != "-" for c in cells):
            lines.append(f"| {a} − {b} | {' | '.join(cells)} |")
    val_means = {p: statistics.mean(acc(mine, p, "val_acc").values()) for p in TABLE1 if acc(mine, p, "val_acc")}
    if len(val_means) == len(TABLE1):
        ranking = sorted(val_means, key=val_means.get, reverse=True)
        paper = sorted(TABLE1, key=lambda p: PAPER_TABLE1[p].get(labels, 0), reverse=True)
        lines += ["", f"Ranking on validation under 0.2: {' > '.join(ranking)}.",
                  f"Ranking in the paper: {' > '.join(paper)}."]
    def mean(pair, version):
        d = verdicts.get((*pair, "val_acc", version))
        return statistics.mean(d) if d else None

    def clear(pair, version):  # the mean difference exceeds its seed-to-seed spread (needs >= 2 seeds)
        d = verdicts.get((*pair, "val_acc", version)) or []
        return len(d) > 1 and abs(statistics.mean(d)) > statistics.stdev(d)

    helps = [a for a, b in STABILITY_PAIRS if (mean((a, b), "0.2") or 0) > 0]
    before = [a for a, b in STABILITY_PAIRS if (mean((a, b), "0.1") or 0) > 0]
    established = [a for a, b in STABILITY_PAIRS if clear((a, b), "0.2")]
    lines += ["", f"Conclusion, on validation: the stability term is ahead in {len(helps)} of the {len(STABILITY_PAIRS)} "
                  f"pairs under hybridwrap 0.2's defaults ({', '.join(helps) or 'none'}), against {len(before)} of "
                  f"{len(STABILITY_PAIRS)} under 0.1 ({', '.join(before) or 'none'}). "
                  + (f"Only {', '.join(established)} exceeds its seed-to-seed spread under 0.2." if established else
                     f"No stability difference under 0.2 exceeds its seed-to-seed spread: at this CPU budget and "
                     f"{len(seeds)} seeds, no gain from stability is established.")
                  + (" Under 0.1 stability was behind in every pair and every seed." if all(
                      d < 0 for a, b in STABILITY_PAIRS for d in verdicts.get((a, b, "val_acc", "0.1"), [0])) else "")]
    full_vs_cls = verdicts.get(("full", "classification", "val_acc", "0.2"))
    if full_vs_cls:
        lines += [f"HybridNet (full) is ahead of classification on validation by {_mean_std(full_vs_cls)} points, in "
                  f"{sum(d > 0 for d in full_vs_cls)} of {len(full_vs_cls)} seeds."]
    return lines + ["", *commands_block(mine), ""]


def decoder_lines(runs: list[dict]) -> list[str]:
    """benchmarks/history/decoder_ablation.sh: `light` against `mirror` in accuracy, beside their FLOPs from cost.py."""
    mine = [r for r in runs if r["tag"].startswith("decoder-")]
    if not mine:
        return []
    r0 = mine[0]
    lines = ["## Decoder options: what `light` costs in accuracy", "",
             f"`benchmarks/history/decoder_ablation.sh`: CIFAR-10, {r0['backbone']} at 32 px, {r0['labels']} labels, "
             f"{r0['iterations']} iterations, official λ, seed(s) {', '.join(sorted({str(r['seed']) for r in mine}))}. "
             "Validation: 5000 training images held out; test: the JPEG copy.", "",
             "| run | decoder | seed | val acc | test acc | teacher test acc |", "|---|---|---|---|---|---|"]
    for r in sorted(mine, key=lambda r: (r["preset"] != "classification", r["tag"], r["seed"])):
        decoder = "-" if r["preset"] == "classification" else r["tag"][len("decoder-"):]
        lines.append(f"| {r['preset']} | {decoder} | {r['seed']} | {_fmt(r.get('val_acc'))} | {_fmt(r['test_acc'])} | "
                     f"{_fmt(r.get('teacher_test_acc'))} |")
    by = {(r["preset"], "-" if r["preset"] == "classification" else r["tag"][len("decoder-"):], r["seed"]): r
          for r in mine if r.get("val_acc") is not None}

    def paired(a: tuple, b: tuple, split: str) -> tuple[list[float], str]:
        seeds = sorted({k[2] for k in by if k[:2] == a} & {k[2] for k in by if k[:2] == b})
        d = [by[a + (s,)][split] - by[b + (s,)][split] for s in seeds]
        spread = f" ± {statistics.stdev(d):.2f}" if len(d) > 1 else ""
        return d, (f"{statistics.mean(d):+.2f}{spread} over {len(d)} seed{'s' if len(d) > 1 else ''}, the first ahead in "
                   f"{sum(v > 0 for v in d)} of {len(d)}" if d else "")

    lines += [""]
    for a, b, name in ((("full", "light"), ("full", "mirror"), "`light` − `mirror`"),
                       (("full", "mirror"), ("classification", "-"), "full (`mirror`) − classification"),
                       (("full", "light"), ("classification", "-"), "full (`light`) − classification")):
        for split, label in (("val_acc", "validation"), ("test_acc", "test")):
            d, text = paired(a, b, split)
            if d:
                lines.append(f"- {name}, {label}: {text}.")
    lines += ["", "Differences under about 1 point are within the seed noise of the main table."]
    costs = [b for res in load("cost-*.json") for b in res["backbones"] if b["name"] == "resnet50"]
    if costs:
        setups = costs[0]["setups"]
        base = setups["backbone"]["gflops"]
        ratios = [f"{k[len('hybridnet-'):]} {v['gflops'] / base:.2f}×" for k, v in setups.items() if k.startswith("hybridnet-")]
        lines += [f"Training-step FLOPs against the backbone's, resnet50 at 224 px (the Cost section): {', '.join(ratios)}."]
    return lines + ["", *commands_block(mine), ""]


def _setting(settings: dict) -> str:
    return " ".join(f"`{k}={v}`" for k, v in settings.items())


def quickstart_lines() -> list[str]:
    """benchmarks/quickstart_selection.sh (tune on validation) and benchmarks/quickstart.py (the command, on test)."""
    tunes = {p.stem[len("tune-quickstart-"):]: json.loads(p.read_text())
             for p in sorted(RESULTS.glob("tune-quickstart-*.json"))}
    final = RESULTS / "quickstart-digits.json"
    if not tunes and not final.is_file():
        return []
    lines = ["## The README's first command (embedded digits)", ""]
    if tunes:
        lines += ["How its settings were chosen (`benchmarks/quickstart_selection.sh`): `hybridwrap tune` on "
                  "validation images held out of the digits training set, never the test set. Scores are the "
                  "student's validation accuracy, mean over the seeds of each setting.", ""]
        gaps = {}
        candidates = sorted({k.split("-", 1)[1] for k in tunes})  # "n100-it200": label count and steps
        for cand in candidates:
            labels, steps = cand[1:].split("-it")
            for who in ("full", "baseline"):
                t = tunes.get(f"{who}-{cand}")
                if t is None:
                    continue
                lines += [f"### {'HybridNet (full)' if who == 'full' else 'Labeled-only baseline'}, {labels} labels, "
                          f"{steps} steps", "", f"{t['trials']} trials ({len(t['seeds'])} seeds per setting), "
                          f"{t['val_size']} validation images"
                          + (f", settings below the median stopped at step {t['early_stop_step']}" if t.get("early_stop_step") else "")
                          + (f", {t['precision']} autocast" if t.get("precision") not in (None, "no") else "")
                          + (", channels-last" if t.get("channels_last") else "") + ".", "",
                          "| setting | val acc | |", "|---|---|---|"]
                for i, row in enumerate(t["ranking"]):
                    lines.append(f"| {_setting(row['settings'])} | {row[t['metric']]:.2f} | {'chosen' if i == 0 else ''} |")
                for row in t["stopped_early"]:
                    lines.append(f"| {_setting(row['settings'])} | {row[t['metric']]:.2f} | stopped at step {t['early_stop_step']} |")
                lines.append("")
            full, base = tunes.get(f"full-{cand}"), tunes.get(f"baseline-{cand}")
            if full and base:
                gaps[f"{labels} labels, {steps} steps"] = full["ranking"][0]["val_acc"] - base["ranking"][0]["val_acc"]
        if gaps:
            best = max(gaps, key=gaps.get)
            lines += ["Best HybridNet minus best baseline, on validation: "
                      + "; ".join(f"{_signed(g)} points at {c}" for c, g in gaps.items())
                      + f". The quickstart uses the budget where HybridNet's lead is largest ({best})"
                      + (": HybridNet leads the baseline there." if gaps[best] > 0 else
                         ": **HybridNet does not lead the baseline on validation at any budget tried.**"), ""]
    if final.is_file():
        q = json.loads(final.read_text())
        lines += [f"`{q['command']}` ({q['config']}), measured by `benchmarks/quickstart.py`: "
                  f"{q['seconds']:.0f} s for the whole command on {q['machine']} (commit `{q['commit'][:12]}`).",
                  "", "```", q["table"], "```", ""]
    return lines


def cost_lines() -> list[str]:
    files = load("cost-*.json")
    if not files:
        return []
    lines = ["## Cost", ""]
    for res in files:
        lines += [f"Measured side by side in one process on {res['device']} ({res['threads']} threads), "
                  f"batch {res['batch']}, {res['precision']}; median of {res['rounds']} rounds. FLOPs from "
                  "`torch.utils.flop_counter` (the whole training step: forward, backward, teacher). The time ratio "
                  "divided by the FLOP ratio says how far the measured cost is from the FLOP-ideal multiple "
                  "(1.00 = exactly as predicted by FLOPs).", "",
                  "| backbone | setup | train step (s) | × backbone time | GFLOPs/step | × backbone FLOPs | "
                  "time ratio / FLOP ratio | trained parameters (M) | step memory above weights (MiB) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for b in res["backbones"]:
            base = b["setups"]["backbone"]
            for name, s in b["setups"].items():
                t_ratio = s["step_s"] / base["step_s"]
                f_ratio = s["gflops"] / base["gflops"]
                lines.append(f"| {b['name']} ({b['input']}) | {name} | {s['step_s']:.3f} | {t_ratio:.2f} | "
                             f"{s['gflops']:.2f} | {f_ratio:.2f} | {t_ratio / f_ratio:.2f} | {s['parameters_m']:.2f} | "
                             f"{s['peak_mib']:.0f} |")
        lines += ["", "| backbone | deployed classifier vs bare backbone: inference time ratio | parameters equal |",
                  "|---|---|---|"]
        for b in res["backbones"]:
            inf = b["inference"]
            lines.append(f"| {b['name']} | {inf['ratio']:.3f} (classifier {inf['classifier_s'] * 1e3:.1f} ms, "
                         f"bare {inf['bare_s'] * 1e3:.1f} ms) | {inf['same_parameters']} |")
        lines += ["", "```bash", res["command"], "```", ""]
    return lines


def streaming_lines() -> list[str]:
    """benchmarks/streaming.py: peak memory against the unlabeled pool's size, and loader against step rate."""
    files = load("streaming-*.json")
    if not files:
        return []
    lines = ["## Memory and loader speed with an on-disk unlabeled pool", ""]
    for res in files:
        lines += [f"`hybridwrap train` on an ImageFolder at {res['size']} px (CIFAR-10 PNGs upscaled when read), "
                  f"{res['backbone']} with the `{res['decoder']}` decoder, full HybridNet + Mean Teacher, batches of "
                  f"{res['batch'][0]} labeled + {res['batch'][1]} unlabeled, {res['steps']} steps, default loader "
                  f"workers; {res['device']}, {res['cpus']} CPUs. Peak memory is the largest sum over the training "
                  "process and its loader workers, sampled every 0.1 s (PSS counts shared pages once; the RSS sum "
                  "counts them in every process).", "",
                  "| unlabeled images on disk | peak PSS (MiB) | peak RSS sum (MiB) | processes | s/step | "
                  "images/s the step consumes |", "|---|---|---|---|---|---|"]
        for pool in res["pools"]:
            t = pool["train"]
            consumed = pool["training_consumes_images_per_s"]
            lines.append(f"| {pool['unlabeled_images']} | {t['peak_pss_mib']:.0f} | {t['peak_rss_sum_mib']:.0f} | "
                         f"{t['processes_at_peak']} | {t['step_s']:.2f} | {consumed:.1f} |")
        first, last = res["pools"][0], res["pools"][-1]
        lines += ["", f"Peak PSS grows by **{res['pss_growth_mib']:.0f} MiB** from {first['unlabeled_images']} to "
                      f"{last['unlabeled_images']} unlabeled images.", "",
                  "The loader alone: the same batches with no model, each image decoded and upscaled once and augmented "
                  "twice (the student's and the teacher's view), measured after the training runs, so not while a "
                  "training step competes for the same cores:", "",
                  "| unlabeled images | workers | images/s | × what the training step consumes |", "|---|---|---|---|"]
        for pool in res["pools"]:
            for r in pool["loader"]:
                ratio = r["images_per_s"] / pool["training_consumes_images_per_s"]
                lines.append(f"| {pool['unlabeled_images']} | {r['workers']} | {r['images_per_s']:.0f} | {ratio:.0f}× |")
        lines += ["", "```bash", res["command"], "```", ""]
    return lines


def step_option_lines() -> list[str]:
    files = load("step-options-*.json")
    if not files:
        return []
    lines = ["## CPU speed options (measured before adopting)", ""]
    for res in files:
        lines += [f"Full HybridNet + Mean Teacher training step, ConvLarge width {res['width']}, batch {res['batch']}, "
                  f"{res['threads']} threads; options interleaved in one process, median of rounds.", "",
                  "| option | s/step | speed-up vs fp32 |", "|---|---|---|"]
        for name, o in res["options"].items():
            lines.append(f"| {name} | {o['median_step_s']:.3f} | {o['speedup_vs_fp32']:.2f}× |")
        for name, err in res.get("errors", {}).items():
            lines.append(f"| {name} | failed: {err} | - |")
        lines += [""]
    return lines


def render(out: Path | None = None) -> Path:
    runs = load()
    lines = ["# Benchmark results", "",
             "Generated by `python benchmarks/render_results.py` from the JSON files in `benchmarks/results/`; "
             "do not edit by hand.", "",
             "## Table 1 ablation on CIFAR-10", "",
             "The paper's numbers (Robert et al. 2018, Table 1) come from full-width ConvLarge trained 600 epochs "
             "(300k iterations) on a GPU with the original test set; ours from the budget stated in each heading, "
             "on the JPEG copy of the test set (`../shared/data/README.md` gives the one measured comparison with "
             "the original files). Compare our rows with each other, not with the paper's column.", ""]
    lines += selection_lines(runs)
    lines += protocol_lines(runs)
    lines += table3_lines(runs)
    lines += ablation_tables(runs)
    if curve_plot(runs, RESULTS / "curves.png"):
        lines += [f"![accuracy vs iterations]({RESULTS.name}/curves.png)", ""]
    lines += diagnosis_lines(runs)
    lines += regime_lines(runs)
    lines += study_lines(runs)
    lines += stability_study_lines(runs)
    lines += rerun_lines(runs)
    lines += decoder_lines(runs)
    lines += quickstart_lines()
    lines += picture_lines(runs)
    lines += cost_lines()
    lines += streaming_lines()
    lines += step_option_lines()
    out = out or HERE / "RESULTS.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--select", nargs="+", help="print the tag with the best validation accuracy and exit")
    p.add_argument("--print", dest="print_tag", help="print a short table of the runs with this tag and exit")
    p.add_argument("--results-dir", default=str(RESULTS))
    p.add_argument("--output", help="markdown file (default: benchmarks/RESULTS.md)")
    args = p.parse_args()
    set_results_dir(Path(args.results_dir))
    if args.select:
        print(select(args.select))
        return
    if args.print_tag:
        for r in sorted(load(), key=lambda r: (r["preset"], r["seed"])):
            if r["tag"] == args.print_tag:
                print(f"{r['preset']:<26} seed {r['seed']} it {r['iterations']:>6}  test {r['test_acc']:6.2f}  "
                      f"teacher {r.get('teacher_test_acc') or float('nan'):6.2f}  val {r.get('val_acc') or float('nan'):6.2f}  "
                      f"{r['seconds']:.0f}s  {r['device']}")
        return
    print(f"wrote {render(Path(args.output) if args.output else None)}")


if __name__ == "__main__":
    main()
