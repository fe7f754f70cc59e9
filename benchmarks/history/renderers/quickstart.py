"""The digits demo (`--dataset digits`, the first command until it moved to real MNIST): its selection on
validation and its measured run."""

from __future__ import annotations

import json
import re

from rendering import common
from rendering.common import signed, table_header, capability


def measured_runs() -> list:
    """0.3's measured digits command (0.2's, quickstart-digits-0.2.json, shares the folder and is not this section's)."""
    return sorted(p for p in common.RESULTS.glob("quickstart-digits*.json") if not p.name.endswith("-0.2.json"))



def avx2_reference() -> dict:
    """The one timing on record of a 2-core CPU with AVX2 and no native bf16 (avx2-cpu-reference.json): a HybridNet
    step of the first command as it then was, in fp32, to scale the AVX2 emulation's times by."""
    return json.loads((common.RESULTS / "avx2-cpu-reference.json").read_text())


def _setting(settings: dict) -> str:
    return " ".join(f"`{k}={v}`" for k, v in settings.items())


def describe_budget(key: str) -> str:
    """"n100-it300-px12-u40" -> "100 labels, 300 steps, 12 px, 20 + 40 per batch" (older keys: labels, steps)."""
    m = re.fullmatch(r"n(\d+)-it(\d+)(?:-px(\d+))?(?:-u(\d+))?", key)
    if m is None:
        return key
    labels, steps, px, unlabeled = m.groups()
    return (f"{labels} labels, {steps} steps" + (f", {px} px" if px else "")
            + (f", 20 + {unlabeled} per batch" if unlabeled else ""))


def quickstart_lines() -> list[str]:
    """benchmarks/quickstart_selection.sh (tune on validation) and benchmarks/quickstart.py (the command, on test)."""
    tunes = {p.stem[len("tune-quickstart-"):]: json.loads(p.read_text())
             for p in sorted(common.RESULTS.glob("tune-quickstart-*-px*.json"))}
    final = common.RESULTS / "quickstart-digits.json"
    if not tunes and not final.is_file():
        return []
    lines = ["## The digits demo (`--dataset digits`)", "",
             "Until the first command moved to real MNIST, it trained on the 8x8 digits: `configs/digits.yaml`, now "
             "`hybridwrap train --baseline --dataset digits`. Measured when it was the first command, with the "
             "command of that time.", ""]
    if tunes:
        lines += ["How its settings were chosen (`benchmarks/quickstart_selection.sh`): `hybridwrap tune` on "
                  "validation images held out of the digits training set, never the test set. Scores are the "
                  "student's validation accuracy, mean over the seeds of each setting.", ""]
        candidates = sorted({k.split("-", 1)[1] for k in tunes})  # e.g. "n100-it300-px12-u40"
        for cand in candidates:
            for who in ("full", "baseline"):
                t = tunes.get(f"{who}-{cand}")
                if t is None:
                    continue
                lines += [f"### {'HybridNet (full)' if who == 'full' else 'Labeled-only baseline'}, "
                          f"{describe_budget(cand)}", "", f"{t['trials']} trials ({len(t['seeds'])} seeds per setting), "
                          f"{t['val_size']} validation images"
                          + (f", settings below the median stopped at step {t['early_stop_step']}" if t.get("early_stop_step") else "")
                          + (f", {t['precision']} autocast" if t.get("precision") not in (None, "no") else ", fp32")
                          + (", channels-last" if t.get("channels_last") else "") + ".", "",
                          *table_header("| setting | val acc | |")]
                for i, row in enumerate(t["ranking"]):
                    lines.append(f"| {_setting(row['settings'])} | {row[t['metric']]:.2f} | {'chosen' if i == 0 else ''} |")
                for row in t["stopped_early"]:
                    lines.append(f"| {_setting(row['settings'])} | {row[t['metric']]:.2f} | stopped at step {t['early_stop_step']} |")
                lines.append("")
        gaps = budget_gaps(tunes)
        if gaps:
            best = chosen_budget(tunes)
            tied = [k for k in gaps if k != best and round(gaps[k], 9) == round(gaps[best], 9)]
            lines += ["Best HybridNet minus best baseline, on validation: "
                      + "; ".join(f"{signed(g)} points at {describe_budget(c)}" for c, g in gaps.items())
                      + f". The quickstart uses the budget where HybridNet's lead is largest ({describe_budget(best)}"
                      + (", tied with " + ", ".join(map(describe_budget, tied)) + " and chosen for its higher HybridNet "
                         "validation accuracy" if tied else "") + ")"
                      + (": HybridNet leads the baseline there." if gaps[best] > 0 else
                         ": **HybridNet does not lead the baseline on validation at any budget tried.**"), ""]
    for path in measured_runs():
        q = json.loads(path.read_text())
        where = (f"emulated as {q['cpu_emulation']}" if q.get("cpu_emulation") else capability(q))
        lines += [f"`{q['command']}` ({q['config']}), measured by `benchmarks/quickstart.py`"
                  + (" with `--tag " + path.stem[len("quickstart-digits-"):] + "`" if path.stem != "quickstart-digits" else "")
                  + f": {q['seconds']:.0f} s for the whole command on {q['machine']}, {where}, precision "
                  f"{q.get('precision', 'not recorded')} (commit `{q['commit'][:12]}`).", "", "```", q["table"], "```", ""]
    lines += cost_lines()
    return lines


def predicted_seconds(command_seconds: float, cost: dict) -> float | None:
    """The whole command's time on the AVX2 CPU of avx2-cpu-reference.json: ours under the AVX2 emulation, scaled by that CPU's full
    step of the issue's command over the emulation's (both the same model, batch and precision)."""
    avx2 = avx2_reference()
    ref = cost["candidates"].get(avx2["candidate"])
    return None if ref is None else command_seconds * avx2["full_s_per_step"] / ref["full_s_per_step"]


def budget_gaps(tunes: dict) -> dict[str, float]:
    """Best HybridNet minus best baseline validation accuracy per budget key (``tune-quickstart-<who>-<key>``)."""
    return {key: tunes[f"full-{key}"]["ranking"][0]["val_acc"] - tunes[f"baseline-{key}"]["ranking"][0]["val_acc"]
            for key in sorted({k.split("-", 1)[1] for k in tunes}) if f"full-{key}" in tunes and f"baseline-{key}" in tunes}


def chosen_budget(tunes: dict) -> str:
    """The selection's rule: the budget where HybridNet's validation lead is largest; equal leads (to 1e-9: one
    validation image moves 0.17 points) go to the higher HybridNet validation accuracy."""
    gaps = budget_gaps(tunes)
    return max(gaps, key=lambda k: (round(gaps[k], 9), tunes[f"full-{k}"]["ranking"][0]["val_acc"]))


def cost_lines() -> list[str]:
    """benchmarks/first_command_cost.py: fp32 seconds per step of candidate budgets, and the scaling to the AVX2 CPU on record."""
    files = sorted(common.RESULTS.glob("first-command-cost-*.json"))
    if not files:
        return []
    lines = ["### What a step of the first command costs in fp32", "",
             "`benchmarks/first_command_cost.py`: configs/digits.yaml with each candidate's overrides, a HybridNet "
             "and a baseline run per candidate and round, rounds alternating, median seconds per step (one evaluation and "
             "checkpoint included). Where a CPU without native bf16 runs the command, auto precision means fp32.", ""]
    for path in files:
        c = json.loads(path.read_text())
        where = f"emulated as {c['cpu_emulation']}" if c.get("cpu_emulation") else capability(c)
        lines += [f"{c['machine']}, {where}, {c['steps_per_run']} steps per run, {c['rounds']} rounds "
                  f"(commit `{c['commit'][:12]}`):", "",
                  *table_header("| candidate | overrides | HybridNet s/step | baseline s/step | "
                                f"{c['shipped']['seeds']} seeds x {c['shipped']['max_steps']} steps of both, s |")]
        for name, row in c["candidates"].items():
            lines.append(f"| {name} | {' '.join(f'`{o}`' for o in row['overrides']) or '(as shipped)'} | "
                         f"{row['full_s_per_step']:.3f} | {row['baseline_s_per_step']:.3f} | "
                         f"{row['predicted_command_s_at_shipped_steps']:.0f} |")
        lines.append("")
        avx2 = avx2_reference()
        ref = c["candidates"].get(avx2["candidate"])
        if c.get("cpu_emulation") and ref:
            lines += [f"The HybridNet step of `{avx2['candidate']}` (the first command as it was then) was measured "
                      f"at {avx2['full_s_per_step']} s in {avx2['precision']} on a {avx2['cpu']} CPU; the "
                      f"emulation takes {ref['full_s_per_step']:.3f} s for it, so that CPU is "
                      f"{avx2['full_s_per_step'] / ref['full_s_per_step']:.2f}x as long as this emulation.", ""]
            for q_path in measured_runs():
                q = json.loads(q_path.read_text())
                if q.get("cpu_emulation"):
                    lines += [f"The shipped first command took {q['seconds']:.0f} s under the emulation "
                              f"({q_path.name}); scaled so, about {predicted_seconds(q['seconds'], c):.0f} s on that AVX2 "
                              "CPU.", ""]
    return lines
