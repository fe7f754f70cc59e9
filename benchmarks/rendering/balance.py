"""Issue 25: Eq. 6 as the paper writes it (`loss.balance_rule: paper`) against the official code's step as it ran
(`official_code`), each pair on the same config, budget and seed, on the same machine."""

from __future__ import annotations

import statistics

from .common import _mean_std, _paired_cell, capability, commands_block, table_header

# (title, config of the runs, paper-side tag, official-side tag): the two measurements the issue asks for
PAIRS = (
    ("Table 1's config (full)", "configs/cifar10_convlarge.yaml", "paper-balance", "official-balance"),
    ("Table 3's network (full)", "configs/cifar10_shakeshake.yaml", "table3-paper-balance", "table3-official-balance"),
)
RULES = ("paper", "official_code")
KEYS = (("val_acc", "student validation"), ("teacher_val_acc", "teacher validation"), ("test_acc", "student test"))


def _by_seed(rs: list[dict], key: str) -> dict[int, float]:
    return {r["seed"]: r[key] for r in rs if r.get(key) is not None}


def paired(paper: list[dict], official: list[dict], key: str) -> list[float]:
    """official_code − paper of ``key``, per seed both sides have."""
    a, b = _by_seed(official, key), _by_seed(paper, key)
    return [a[s] - b[s] for s in sorted(a) if s in b]


def verdict(diffs: list[float]) -> str:
    if len(diffs) < 2:
        return "one seed: no conclusion"
    mean, std = statistics.mean(diffs), statistics.stdev(diffs)
    if abs(mean) <= std:
        return "no difference beyond the seed-to-seed spread"
    return f"official_code {'ahead of' if mean > 0 else 'behind'} paper beyond the seed-to-seed spread"


def pair_lines(title: str, paper: list[dict], official: list[dict]) -> list[str]:
    r0 = (paper or official)[0]
    width, iters = r0["width"], r0["iterations"]
    where = sorted({f"{r['device']}, {capability(r)}, {r['precision']}" for r in paper + official})
    lines = [f"### {title}", "",
             f"`{r0['config'][0]}` as it is at width {width}, {r0['labels']} labels, {iters} iterations (every schedule "
             f"scaled to that budget), {r0.get('val_size')} validation images held out of the training set; the one "
             f"difference between the two sides is `loss.balance_rule` (`configs/paper_balance.yaml` / "
             f"`configs/official_balance.yaml`, or the config's own). Seed k on labeled subset k on both sides. Timed on "
             f"{'; '.join(where)}.", "",
             *table_header("| loss.balance_rule | student val acc | teacher val acc | student test acc | "
                           "teacher test acc | seconds/run | seeds |")]
    for rule, rs in zip(RULES, (paper, official)):
        if not rs:
            lines.append(f"| {rule} | - | - | - | - | - | 0 |")
            continue
        cell = {k: _mean_std([r[k] for r in rs if r.get(k) is not None]) for k in
                ("val_acc", "teacher_val_acc", "test_acc", "teacher_test_acc")}
        lines.append(f"| {rule} | {cell['val_acc']} | {cell['teacher_val_acc']} | {cell['test_acc']} | "
                     f"{cell['teacher_test_acc']} | {statistics.mean(r['seconds'] for r in rs):.0f} | {len(rs)} |")
    diffs = {k: paired(paper, official, k) for k, _ in KEYS}
    if diffs["val_acc"]:
        cells = ", ".join(f"{name} {_paired_cell(diffs[k])}" for k, name in KEYS)
        lines += ["", f"official_code − paper, paired by seed: {cells} (in parentheses: seeds where official_code is "
                      f"ahead). On validation: {verdict(diffs['val_acc'])} at this budget."]
    return lines + ["", "Reproduce:", "", *commands_block(paper + official), ""]


def balance_lines(runs: list[dict]) -> list[str]:
    body = []
    for title, config, paper_tag, official_tag in PAIRS:
        paper = [r for r in runs if r["tag"] == paper_tag and r.get("config", [None])[0] == config]
        official = [r for r in runs if r["tag"] == official_tag and r.get("config", [None])[0] == config]
        assert all(r.get("balance_rule") == "paper" for r in paper), f"{paper_tag}: a run that is not `paper`"
        assert all(r.get("balance_rule") == "official_code" for r in official), f"{official_tag}: not official_code"
        if paper or official:
            body += pair_lines(title, paper, official)
    if not body:
        return []
    return ["## Eq. 6 as the paper writes it and as the official code ran it", "",
            "The official code stores one tensor as both x̂ and x̂_c and adds x̂_u into it in place, so its balancing "
            "compares ‖x̂ − x‖² with ‖x̂_u − x‖², takes ‖x̂_c + 2x̂_u − x‖² and sends the gradient to both branches "
            "where the full error is larger (docs/paper_mapping.md, balancing row). `loss.balance_rule` offers both; "
            "each pair below differs in that alone.", "", *body]
