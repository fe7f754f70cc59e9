"""Decoder options: `light` against `mirror` in accuracy, beside their FLOPs."""

from __future__ import annotations

import statistics

from rendering.common import load, fmt, commands_block, table_header


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
             *table_header("| run | decoder | seed | val acc | test acc | teacher test acc |")]
    for r in sorted(mine, key=lambda r: (r["preset"] != "classification", r["tag"], r["seed"])):
        decoder = "-" if r["preset"] == "classification" else r["tag"][len("decoder-"):]
        lines.append(f"| {r['preset']} | {decoder} | {r['seed']} | {fmt(r.get('val_acc'))} | {fmt(r['test_acc'])} | "
                     f"{fmt(r.get('teacher_test_acc'))} |")
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
