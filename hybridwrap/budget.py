"""Training budgets in passes over the unlabeled pool, and what the budget map found about them.

A semi-supervised term pays only once the classifier has overfitted its few labels, which takes passes over the
data, not a fixed number of steps: an own-data run therefore sizes its default budget in passes over its own
unlabeled pool (``TrainConfig.budget_passes``), from the budget map's crossovers (benchmarks/budget_map.py,
RESULTS.md "Where HybridNet pays"), and says so when a budget stays below them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

# What the budget map found, as benchmarks/render_results.py writes it from the committed JSON (never by hand):
# per data set, the first budget from which full HybridNet leads its tuned baseline beyond the spread on validation
# (every seed ahead there and at every larger budget) with the passes over the unlabeled pool it made there, and
# where the gain comes from at each budget (stability, reconstruction on top of it; paired by seed on validation).
MAP = json.loads((Path(__file__).with_name("budget_map.json")).read_text())
CROSSOVERS: dict[str, dict] = MAP["crossovers"]
# The default budget of a run on the user's own images (dataset_configs.OWN_DATA_DEFAULTS): the passes from which HybridNet
# led on every data set where the map found it leading (the largest crossover), in whole passes: how many passes a
# data set needs varies (the digits needed the most), and a default below a data set's crossover would not pay there.
OWN_DATA_PASSES = math.ceil(max(c["passes"] for c in CROSSOVERS.values()))


def steps_for_passes(passes: float, pool: int, unlabeled_batch: int) -> int:
    """The steps that draw ``passes`` times the ``pool`` of unlabeled images, ``unlabeled_batch`` per step."""
    return max(1, math.ceil(passes * pool / unlabeled_batch))


def passes(steps: int, pool: int, unlabeled_batch: int) -> float:
    return steps * unlabeled_batch / pool


def below_crossover(steps: int, pool: int, unlabeled_batch: int) -> str | None:
    """The warning of a run on own data whose budget stays below the passes from which the budget map found HybridNet
    ahead on every data set it measured (the own-data default), with the budget that reaches them; None at or above."""
    made = passes(steps, pool, unlabeled_batch)
    if made >= OWN_DATA_PASSES:
        return None
    found = ", ".join(f"{c['passes']:.1f} passes on {name} ({c['steps']} steps, {c['labels']} labels)"
                      for name, c in CROSSOVERS.items())
    return (f"{steps} steps make {made:.1f} passes over the {pool} unlabeled images: HybridNet may not pay yet. The "
            f"budget map (benchmarks/RESULTS.md) found it ahead of its labeled-only baseline from {found}: on every "
            f"data set from {OWN_DATA_PASSES} passes, the own-data default. Give it --max-steps "
            f"{steps_for_passes(OWN_DATA_PASSES, pool, unlabeled_batch)}, or leave out --max-steps.")


def _paired(stat: dict) -> str:
    if stat["seeds"] == 1:  # a cell measured so far with one seed: no spread to state
        return f"{stat['mean']:+.2f} (1 seed so far)"
    return f"{stat['mean']:+.2f} ± {stat['std']:.2f} ({stat['ahead']}/{stat['seeds']} seeds ahead)"


def gain_sources(dataset: str, steps: int, unlabeled_batch: int) -> str | None:
    """One line: where the budget map, at its budget nearest in passes over the unlabeled pool to ``steps`` of
    ``unlabeled_batch`` images on ``dataset``, found HybridNet's gain over its baseline to come from (stability, and
    reconstruction on top of it); None where the map did not measure it."""
    rows = MAP["gain_sources"].get(dataset)
    if not rows:
        return None
    made = passes(steps, rows[0]["pool"], unlabeled_batch)
    row = min(rows, key=lambda r: (abs(math.log(r["passes"] / made)), r["passes"]))
    return (f"where the gain comes from (budget map, {dataset}, {row['labels']} labels, {row['passes']:.1f} passes over "
            f"the unlabeled pool, validation):"
            f" stability (Mean Teacher) {_paired(row['stability'])}, reconstruction on top of it "
            f"{_paired(row['reconstruction'])}; full HybridNet {_paired(row['full'])}")


def reconstruction_line(labels: int | None) -> str | None:
    """One line: what the labels x budget study (benchmarks/budget_map.py --labels) found of reconstruction on top of
    stability at the label count nearest ``labels``, what full HybridNet costs, and the study's conclusion; None before
    the study has results, or for a run whose label count is unknown (every training image labeled)."""
    study = MAP.get("reconstruction")
    if not study or not study["rows"] or not labels:
        return None
    nearest = min({r["labels"] for r in study["rows"]}, key=lambda n: (abs(math.log(n / labels)), n))
    cells = ", ".join(f"{r['steps']} steps {_paired(r['full'])}" for r in study["rows"]
                      if r["labels"] == nearest and r["full"])
    cost = study["cost"].get("full")
    return (f"reconstruction on top of Mean Teacher (labels x budget study, {study['dataset']}, {nearest} labels, "
            f"validation): full − (classification + stability) {cells or 'not measured'}"
            + (f"; full costs {cost:.1f}x classification + stability per step" if cost else "")
            + f". {study['conclusion']}")
