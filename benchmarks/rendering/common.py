"""What every section shares: loading results, grouping runs, formatting numbers, tables and commands."""

from __future__ import annotations

import json
import re
import shlex
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from ablation import run_name  # benchmarks/ is on sys.path when render_results.py runs


HERE = Path(__file__).resolve().parent.parent  # benchmarks/


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


def fmt(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def repository_relative(command: str) -> str:
    """A recorded command as anyone runs it from the repository: the shared data as ../shared/..., and the
    default results and runs folders left out (older results recorded one machine's absolute paths)."""
    command = re.sub(r"(?<!\S)(?:/[^\s/]+)+/shared/(\S+)", r"../shared/\1", command)
    command = re.sub(r" --results-dir \S*/benchmarks/results(?=\s|$)", "", command)
    return re.sub(r" --runs-dir \S*/benchmarks/runs(?=\s|$)", "", command)


def commands_block(rs: list[dict]) -> list[str]:
    """The commands that produced ``rs``, in a bash block; runs of hybridwrap 0.1-0.2's recipe (no `config` in
    their JSON) name the commit to check out first, since today's ablation.py runs a shipped config instead."""
    legacy = sorted({r.get("commit", "unknown").removesuffix("-dirty")[:12] for r in rs if "config" not in r})
    note = ([f"# recorded with hybridwrap 0.2's ablation.py recipe: check out {', '.join(legacy)} first "
             "(benchmarks/history/README.md)"] if legacy else [])
    return ["```bash", *note, *sorted({repository_relative(r["command"]) for r in rs}), "```"]


def mean_or_none(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def signed(v) -> str:
    return "-" if v is None else f"{v:+.2f}"


def command_args(command: str) -> dict[str, list[str]]:
    """`--flag value...` pairs of an ablation.py command line (repeated flags such as --set accumulate)."""
    out, flag = defaultdict(list), None
    for token in shlex.split(command)[2:]:
        if token.startswith("--"):
            flag = token
            out[flag]
        elif flag:
            out[flag].append(token)
    return out


def changed_args(mine: dict, theirs: dict) -> list[str]:
    ignore = {"--tag", "--presets", "--seeds", "--eval-every", "--results-dir", "--runs-dir"}
    changed = []
    for flag in sorted(set(mine) | set(theirs)):
        if flag in ignore or mine.get(flag) == theirs.get(flag):
            continue
        extra = [v for v in mine.get(flag, []) if v not in theirs.get(flag, [])]
        changed.append(f"{flag} {' '.join(extra)}".strip())
    return changed


STABILITY_PAIRS = [("classification_stability", "classification"), ("autoencoder_stability", "autoencoder"),
                   ("full", "hybrid_architecture")]


def paired_diffs(rs: list[dict], a: str, b: str, key: str) -> list[float]:
    """Per-seed differences a − b of ``key`` over the seeds both presets have."""
    xa = {r["seed"]: r[key] for r in rs if r["preset"] == a and r.get(key) is not None}
    xb = {r["seed"]: r[key] for r in rs if r["preset"] == b and r.get(key) is not None}
    return [xa[s_] - xb[s_] for s_ in sorted(xa) if s_ in xb]


def paired_cell(diffs: list[float]) -> str:
    return f"{mean_std(diffs)} ({sum(d > 0 for d in diffs)}/{len(diffs)})" if diffs else "-"


def listed(items) -> str:
    """Items in prose: "20", "20 and 50", "20, 50 and 100"."""
    items = [str(i) for i in items]
    return " and ".join(items) if len(items) < 3 else f"{', '.join(items[:-1])} and {items[-1]}"


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless one: "1 seed", "3 seeds"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def table_header(line: str) -> list[str]:
    """A markdown table's header line and its separator (one ``---`` per column): the one table helper of every
    section, so all of RESULTS.md's tables share their form."""
    return [line, "|" + "---|" * (line.count("|") - 1)]


def json_section(pattern: str, title: str) -> tuple[list[dict], list[str]]:
    """The results files of a section and its heading lines (no heading when there is no file)."""
    files = load(pattern)
    return files, ([f"## {title}", ""] if files else [])


def capability(res: dict) -> str:
    """The CPU capability a timing was taken on, as its JSON recorded it (older results did not)."""
    return f"CPU capability {res.get('cpu_capability') or 'not recorded'}"


def save_figure(fig, path: Path, dpi: int) -> bool:
    """Lay out, write and close a matplotlib figure (its folder made as needed); True, for the renderers' returns."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return True
