"""One knob at a time: `study-*` runs against their references, and the stability study."""

from __future__ import annotations

from rendering.common import TABLE1, is_table_run, run_id, load, fmt, commands_block, signed, command_args, changed_args, table_header
from rendering.official_pairs import is_pair_tag


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
             *table_header("| study | changed | preset | budget | seed | student val acc | teacher val acc | labeled | reference | "
             "reference val acc | reference labeled | val difference |")]
    refs = {}
    for r in sorted(studies, key=lambda r: (r["tag"], TABLE1.index(r["preset"]), r["seed"])):
        mine = command_args(r["command"])
        # references of the same kind: a study of a shipped config against runs of a shipped config, a study of
        # hybridwrap 0.2's recipe against that recipe's main-table runs (issue 25's pairs are their own)
        kind = ((lambda x: "config" in x and not x["tag"].startswith("study-") and not is_pair_tag(x["tag"]))
                if "config" in r else is_table_run)
        same = [x for x in runs if kind(x) and all(x[k] == r[k] for k in ("preset", "width", "labels", "iterations", "seed"))]
        ref = refs[run_id(r)] = min(same, key=lambda x: len(changed_args(mine, command_args(x["command"]))), default=None)
        changed = changed_args(mine, command_args(ref["command"]) if ref else {})
        ref_val = ref.get("val_acc") if ref else None
        delta = None if ref_val is None or r.get("val_acc") is None else r["val_acc"] - ref_val
        lines.append(f"| {r['tag']} | {', '.join(changed) or '-'} | {r['preset']} | {r['labels']} labels, "
                     f"{r['iterations']} it. | {r['seed']} | {fmt(r.get('val_acc'))} | {fmt(r.get('teacher_val_acc'))} | "
                     f"{fmt(labeled(r))} | {ref['tag'] if ref else '-'} | {fmt(ref_val)} | {fmt(labeled(ref))} | {signed(delta)} |")
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
             *table_header("| setting | classification val | + stability val (student) | + stability val (teacher) | "
             "stability − classification (student) |")]
    diffs = {}

    def row(name, cls, cs):
        if cls is None or cs is None:
            return
        d = cs["val_acc"] - cls["val_acc"]
        diffs[name] = d
        lines.append(f"| {name} | {cls['val_acc']:.2f} | {cs['val_acc']:.2f} | {fmt(cs.get('teacher_val_acc'))} | "
                     f"{signed(d)} |")

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
                      f"({signed(a)} -> {signed(b)} points, one seed)."]
    knobs = {k: v for k, v in diffs.items() if k not in ("official (hybridwrap 0.1)", "faithful")}
    if knobs:
        positive = [k for k, v in knobs.items() if v > 0]
        lines += [f"Stability is ahead of classification in {len(positive)} of the {len(knobs)} one-knob settings"
                  + (f" ({'; '.join(positive)})" if positive else "") + ". One seed each: differences under about "
                  "1 point are within the seed noise measured in the main table."]
    return lines + ["", *commands_block(study), ""]
