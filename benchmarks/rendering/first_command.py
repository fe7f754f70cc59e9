"""The first command: its frontier (benchmarks/first_command.py) and its measurement (benchmarks/quickstart.py)."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import yaml

from . import common
from .common import table_header

FIGURE = Path("figures") / "first-command-frontier.png"
README = common.HERE.parent / "README.md"
MEASURED = "quickstart-mnist5k"  # results/quickstart-mnist5k[-avx2].json


def _frontier():
    sys.path.insert(0, str(common.HERE))
    import first_command

    return first_command


def _cell(p: dict) -> str:
    return f"{p['mean']:+.2f} ± {p['std']:.2f} ({p['ahead']}/{p['seeds']})"


def _acc(runs: list[dict]) -> str:
    values = [r["val_acc"] for r in runs]
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def frontier_plot(records: list[dict], path: Path) -> bool:
    """Paired gain on validation against the minutes of the whole command, one point per candidate and CPU."""
    if not records:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for tag, marker in (("avx2", "o"), ("native", "s")):
        rs = [r for r in records if r["tag"] == tag]
        if not rs:
            continue
        ax.errorbar([r["minutes"] for r in rs], [r["paired_val"]["mean"] for r in rs],
                    yerr=[r["paired_val"]["std"] for r in rs], fmt=marker, capsize=3,
                    label="fp32, AVX2 emulation" if tag == "avx2" else "this CPU as it is")
        for r in rs:
            ax.annotate(r["candidate"], (r["minutes"], r["paired_val"]["mean"]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
    fm = _frontier()
    ax.axhline(0, color="black", linewidth=0.8)
    ax.axhline(fm.LEAD, color="grey", linestyle=":", linewidth=0.8)
    ax.axvline(fm.MINUTES, color="grey", linestyle=":", linewidth=0.8)
    ax.set(xlabel="minutes for the whole command (3 seeds of both)", ylabel="full − classification, validation (points)",
           title="The first command's frontier")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return common.save_figure(fig, path, dpi=90)


def frontier_lines(out_dir: Path | None = None) -> list[str]:
    fm = _frontier()
    records = fm.load(common.RESULTS)
    if not records:
        return []
    chosen, why = fm.choose(records)
    lines = ["## The first command: its frontier", "",
             "`benchmarks/first_command.py`: `hybridwrap train --baseline --config configs/mnist5k.yaml` with the "
             "overrides of each candidate (real MNIST, 100 labels unless a candidate sets `data.num_labels`; each "
             "override cuts the work of a step or of a run or sets the label count, none changes a loss or a λ), 3 "
             "seeds of HybridNet (`full`) and of its labeled-only baseline, both students scored on the 500 "
             "validation images held out of the training set (the test split is never loaded), the whole command "
             "timed as a process. Paired: full − classification per seed, mean ± std (seeds ahead).", ""]
    for tag in ("avx2", "native"):
        rs = sorted((r for r in records if r["tag"] == tag), key=lambda r: r["minutes"])
        if not rs:
            continue
        caps = sorted({f"{r['machine']}, CPU capability {r['cpu_capability']}" + (", emulated" if r["cpu_emulation"]
                       else "") for r in rs})
        plans = sorted({r["plan"] for r in rs if r.get("plan")})
        lines += [f"### {'fp32 under the AVX2 emulation (benchmarks/no_native_bf16)' if tag == 'avx2' else 'This CPU as it is'}",
                  "", "Measured on: " + "; ".join(caps) + (f"; the runs: {'; '.join(plans)}" if plans else "") + ".",
                  "",
                  *table_header("| candidate | steps | overrides | minutes | precision | full val | classification "
                                "val | full − classification, val |")]
        for r in rs:
            precision = sorted({"fp32" if x["precision"] == "no" else x["precision"] for p in r["runs"].values()
                                for x in p})
            lines.append(f"| {r['candidate']} | {r['steps']} | {' '.join(f'`{o}`' for o in r['overrides'])} | "
                         f"{r['minutes']:.2f} | {'/'.join(precision)} | "
                         f"{_acc(r['runs']['full'])} | {_acc(r['runs']['classification'])} | {_cell(r['paired_val'])} |")
        lines.append("")
    lines.append(f"**Chosen: {chosen['candidate'] if chosen else 'none'}** ({why}; `python benchmarks/first_command.py "
                 "--choose`). It is `configs/quickstart.yaml`, the first command's config.")
    lines.append("")
    if frontier_plot(records, (out_dir or common.RESULTS) / FIGURE):
        lines += [f"![gain on validation against the minutes of the command]({common.RESULTS.name}/{FIGURE.as_posix()})",
                  ""]
    return lines


def measured(tag: str | None = None) -> dict | None:
    path = common.RESULTS / (f"{MEASURED}-{tag}.json" if tag else f"{MEASURED}.json")
    return json.loads(path.read_text()) if path.is_file() else None


def output_block(q: dict) -> list[str]:
    """What the command printed, as benchmarks/quickstart.py kept it."""
    return ["```", *q["output"].rstrip("\n").splitlines(), "```"]


def measured_lines() -> list[str]:
    lines = []
    for tag in ("avx2", None):
        q = measured(tag)
        if q is None:
            continue
        where = (f"{q['machine']}, emulated as {q['cpu_emulation']}" if q["cpu_emulation"]
                 else f"{q['machine']}, CPU capability {q['cpu_capability']}")
        lines += [f"`{q['command']}` measured by `benchmarks/quickstart.py`"
                  + (f" with `--tag {tag}`" if tag else "") + f": {q['seconds']:.0f} s for the whole command on "
                  f"{where}, precision {q['precision']}, {q['plan']} (commit `{q['commit']}`).", "",
                  *output_block(q), ""]
    if not lines:
        return []
    return ["## The README's first command", "",
            "`hybridwrap train --baseline` on the embedded real MNIST (`configs/quickstart.yaml`, the frontier's choice), "
            "scored on the test set once, after the choice.", "", *lines]


def readme_block() -> list[str]:
    """The README's first-command output: what the command printed in fp32 under the AVX2 emulation, and the time
    it took there and where bf16 is native."""
    emulated, native = measured("avx2"), measured()
    if emulated is None:
        return []
    lines = [*output_block(emulated), ""]
    times = [f"{emulated['seconds'] / 60:.1f} minutes in fp32 on 2 cores restricted to AVX2 without native bf16"]
    if native is not None:
        times.append(f"{native['seconds'] / 60:.1f} minutes on the same cores with native bf16 "
                     f"({native['cpu_capability']})")
    lines.append(f"It took {' and '.join(times)}.")
    return lines + few_label_lines(_frontier().load(common.RESULTS))


def few_label_lines(records: list[dict]) -> list[str]:
    """Why the first command is not where the labels x budget study found reconstruction paying: what the frontier
    measured the command costing at that label count and those passes, against the minutes it is held to."""
    fm = _frontier()
    few = sorted((r for r in records if r["tag"] == "avx2"
                  and any(o.startswith("data.num_labels=") for o in r["overrides"])), key=lambda r: r["minutes"])
    if not few or few[0]["minutes"] <= fm.MINUTES:
        return []
    r = few[0]
    labels = next(o.split("=", 1)[1] for o in r["overrides"] if o.startswith("data.num_labels="))
    shipped = yaml.safe_load((common.HERE.parent / "configs" / "quickstart.yaml").read_text())["data"]["num_labels"]
    return ["", f"Reconstruction paid on top of Mean Teacher with {labels} labels from {r['steps']} steps (the labels x "
            f"budget study, benchmarks/RESULTS.md). There the first command took {r['minutes']:.1f} minutes in fp32 on "
            f"the same AVX2 cores (full − classification {_cell(r['paired_val'])} on validation), over its "
            f"{fm.MINUTES:g}-minute limit: so it runs {shipped} labels, where the gain it shows is Mean Teacher's."]


def map_sentence(summary: dict, dataset: str = "mnist5k") -> list[str]:
    """One sentence on where the budget map found HybridNet paying on ``dataset`` and where the gain comes from,
    from hybridwrap/budget_map.json (what the library reads too)."""
    cross, rows = summary["crossovers"].get(dataset), summary["gain_sources"].get(dataset)
    if not cross or not rows:
        return [f"The budget map found no budget where HybridNet leads its baseline on {dataset}."]
    last = max(rows, key=lambda r: r["passes"])

    def cell(stat):
        return f"{stat['mean']:+.2f} ± {stat['std']:.2f} ({stat['ahead']}/{stat['seeds']} seeds ahead)"

    lines = [f"On real MNIST with {cross['labels']} labels HybridNet leads its labeled-only baseline beyond the spread "
             f"on validation from {cross['passes']:.1f} passes over the unlabeled images ({cross['steps']} steps). "
             f"Where the lead comes from, at {last['passes']:.1f} passes: the stability term (Mean Teacher) "
             f"{cell(last['stability'])}, reconstruction on top of it {cell(last['reconstruction'])}."]
    study = summary.get("reconstruction")
    if study:
        cost = study["cost"].get("full")
        lines += ["", "Does reconstruction add to Mean Teacher (`benchmarks/RESULTS.md`, the labels x budget study)? "
                  f"{study['conclusion']}" + (f" Full HybridNet costs {cost:.1f}x classification + stability per step."
                                              if cost else "")]
    return lines


# the README's generated blocks: name -> what stands between its markers
BLOCKS = {"first command output": lambda: readme_block(),
          "budget map": lambda: map_sentence(json.loads((common.HERE.parent / "hybridwrap" / "budget_map.json").read_text()))}


def markers(name: str) -> tuple[str, str]:
    return (f"<!-- {name}: generated by benchmarks/render_results.py from benchmarks/results -->",
            f"<!-- end of the {name} -->")


def update_readme(path: Path = README) -> None:
    """Replace what stands between each block's markers in the README with the block as rendered now."""
    text = path.read_text()
    for name, render in BLOCKS.items():
        begin, end = markers(name)
        start, stop = text.index(begin) + len(begin), text.index(end)
        text = text[:start] + "\n" + "\n".join(render()) + "\n" + text[stop:]
    path.write_text(text)
