"""The README's first command: its selection on validation and its measured run."""

from __future__ import annotations

import json

from . import common
from .common import _signed, table_header, capability


def _setting(settings: dict) -> str:
    return " ".join(f"`{k}={v}`" for k, v in settings.items())


def quickstart_lines() -> list[str]:
    """benchmarks/quickstart_selection.sh (tune on validation) and benchmarks/quickstart.py (the command, on test)."""
    tunes = {p.stem[len("tune-quickstart-"):]: json.loads(p.read_text())
             for p in sorted(common.RESULTS.glob("tune-quickstart-*.json"))}
    final = common.RESULTS / "quickstart-digits.json"
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
                          *table_header("| setting | val acc | |")]
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
                  f"{q['seconds']:.0f} s for the whole command on {q['machine']}, {capability(q)} (commit `{q['commit'][:12]}`).",
                  "", "```", q["table"], "```", ""]
    return lines
