"""The official code's differences that are options, each measured as pairs of runs that differ in that
option alone (same config, budget and seed, on the same machine): Eq. 6's balancing and the teacher's start."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from .common import mean_std, paired_cell, capability, commands_block, table_header


@dataclass(frozen=True)
class Pair:
    title: str
    config: str  # the shipped config both sides run as it is
    tags: tuple[str, str]  # (the paper's / hybridwrap's side, the official code's side)


@dataclass(frozen=True)
class Option:
    key: str  # the loss field, as the result JSON records it
    values: tuple[str, str]  # (the paper's / hybridwrap's value, the official code's)
    recorded_before: str  # what a run recorded before the option existed ran
    overlays: str  # the overlays that set either side
    heading: str
    intro: str
    pairs: tuple[Pair, ...]


BALANCE = Option(
    "balance_rule", ("paper", "official_code"), "paper",
    "`configs/paper_balance.yaml` / `configs/official_balance.yaml`, or the config's own",
    "Eq. 6 as the paper writes it and as the official code ran it",
    "The official code stores one tensor as both x̂ and x̂_c and adds x̂_u into it in place, so its balancing compares "
    "‖x̂ − x‖² with ‖x̂_u − x‖², takes ‖x̂_c + 2x̂_u − x‖² and sends the gradient to both branches where the full "
    "error is larger (docs/paper_mapping.md, balancing row). `loss.balance_rule` offers both; each pair below differs "
    "in that alone.",
    (Pair("Table 1's config (full)", "configs/cifar10_convlarge.yaml", ("paper-balance", "official-balance")),
     Pair("Table 3's network (full)", "configs/cifar10_shakeshake.yaml",
          ("table3-paper-balance", "table3-official-balance"))))
TEACHER_INIT = Option(
    "teacher_init", ("student", "own"), "student",
    "the config's own / `configs/teacher_own.yaml`",
    "The teacher's start: a copy of the student or its own initialisation",
    "The official code, like Mean Teacher's, builds its teacher with its own random initialisation; hybridwrap's "
    "shipped configs start it as a copy of the student. With the Mean Teacher decay min(1 − 1/(t+1), α) the "
    "initial weights' share is 1/(t+1) until α caps it, so on the full protocol it is below 0.1 % by the time the "
    "stability ramp reaches 1 % of λ (docs/paper_mapping.md, Protocols). At a CPU budget every ramp is scaled to "
    "the run, so there the share is still large when the ramp is full: this pair overstates the effect of the "
    "full protocol, if anything.",
    (Pair("Table 3's network (full)", "configs/cifar10_shakeshake.yaml",
          ("table3-teacher-student", "table3-teacher-own")),))
OPTIONS = (BALANCE, TEACHER_INIT)
KEYS = (("val_acc", "student validation"), ("teacher_val_acc", "teacher validation"), ("test_acc", "student test"))


def is_pair_tag(tag: str) -> bool:
    """A run of one of these pairs: shown here, never the reference of another section's study."""
    return any(tag in p.tags for o in OPTIONS for p in o.pairs)


def _by_seed(rs: list[dict], key: str) -> dict[int, float]:
    return {r["seed"]: r[key] for r in rs if r.get(key) is not None}


def paired(ours: list[dict], official: list[dict], key: str) -> list[float]:
    """official − ours of ``key``, per seed both sides have."""
    a, b = _by_seed(official, key), _by_seed(ours, key)
    return [a[s] - b[s] for s in sorted(a) if s in b]


def verdict(diffs: list[float], values: tuple[str, str]) -> str:
    if len(diffs) < 2:
        return "one seed: no conclusion"
    mean, std = statistics.mean(diffs), statistics.stdev(diffs)
    if abs(mean) <= std:
        return "no difference beyond the seed-to-seed spread"
    return f"{values[1]} {'ahead of' if mean > 0 else 'behind'} {values[0]} beyond the seed-to-seed spread"


def pair_lines(option: Option, title: str, ours: list[dict], official: list[dict]) -> list[str]:
    r0 = (ours or official)[0]
    mine, theirs = option.values
    where = sorted({f"{r['device']}, {capability(r)}, {r['precision']}" for r in ours + official})
    lines = [f"### {title}", "",
             f"`{r0['config'][0]}` as it is at width {r0['width']}, {r0['labels']} labels, {r0['iterations']} "
             f"iterations (every schedule scaled to that budget), {r0.get('val_size')} validation images held out of "
             f"the training set; the one difference between the two sides is `loss.{option.key}` ({option.overlays})."
             f" Seed k on labeled subset k on both sides. Timed on {'; '.join(where)}.", "",
             *table_header(f"| loss.{option.key} | student val acc | teacher val acc | student test acc | "
                           "teacher test acc | seconds/run | seeds |")]
    for value, rs in zip(option.values, (ours, official)):
        if not rs:
            lines.append(f"| {value} | - | - | - | - | - | 0 |")
            continue
        cell = {k: mean_std([r[k] for r in rs if r.get(k) is not None]) for k in
                ("val_acc", "teacher_val_acc", "test_acc", "teacher_test_acc")}
        lines.append(f"| {value} | {cell['val_acc']} | {cell['teacher_val_acc']} | {cell['test_acc']} | "
                     f"{cell['teacher_test_acc']} | {statistics.mean(r['seconds'] for r in rs):.0f} | {len(rs)} |")
    diffs = {k: paired(ours, official, k) for k, _ in KEYS}
    if diffs["val_acc"]:
        cells = ", ".join(f"{name} {paired_cell(diffs[k])}" for k, name in KEYS)
        lines += ["", f"{theirs} − {mine}, paired by seed: {cells} (in parentheses: seeds where {theirs} is ahead). "
                      f"On validation: {verdict(diffs['val_acc'], option.values)} at this budget."]
    return lines + ["", "Reproduce:", "", *commands_block(ours + official), ""]


def option_lines(option: Option, runs: list[dict]) -> list[str]:
    body = []
    for pair in option.pairs:
        sides = [[r for r in runs if r["tag"] == tag and r.get("config", [None])[0] == pair.config] for tag in pair.tags]
        for value, rs, tag in zip(option.values, sides, pair.tags):
            assert all(r.get(option.key, option.recorded_before) == value for r in rs), \
                f"{tag}: a run whose loss.{option.key} is not {value!r}"
        if any(sides):
            body += pair_lines(option, pair.title, *sides)
    return [f"## {option.heading}", "", option.intro, "", *body] if body else []


def official_pair_lines(runs: list[dict]) -> list[str]:
    return [line for option in OPTIONS for line in option_lines(option, runs)]
