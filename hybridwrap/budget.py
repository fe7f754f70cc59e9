"""Training budgets in passes over the unlabeled pool, and what the budget map found about them.

A semi-supervised term pays only once the classifier has overfitted its few labels, which takes passes over the
data, not a fixed number of steps: an own-data run therefore sizes its default budget in passes over its own
unlabeled pool (``TrainConfig.budget_passes``), from the budget map's crossovers (benchmarks/budget_map.py,
RESULTS.md "Where HybridNet pays") and the passes from which the labels x budget study found reconstruction adding to
Mean Teacher, and says so when a budget stays below them.
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
STUDY: dict | None = MAP.get("reconstruction")  # the labels x budget study (benchmarks/budget_map.py --labels)


def reconstruction_pays_from(rows: list[dict], labels: int) -> dict | None:
    """The study's row at ``labels`` from whose budget on full HybridNet led classification + stability beyond the
    spread (``pays``, every seed ahead) at every budget measured there; None where it does not lead at the largest.

    Args:
        rows: the study's rows (``budget_map.json``: labels, steps, passes, pays).
        labels: a label count the study ran.
    """
    found = None
    for row in sorted((r for r in rows if r["labels"] == labels), key=lambda r: r["steps"], reverse=True):
        if not row.get("pays"):
            break
        found = row
    return found


def _fewest_passes_where_reconstruction_pays() -> dict | None:
    rows = STUDY["rows"] if STUDY else []
    found = [r for n in sorted({r["labels"] for r in rows}) if (r := reconstruction_pays_from(rows, n))]
    return min(found, key=lambda r: r["passes"]) if found else None


# Where the study found reconstruction paying on top of Mean Teacher with the fewest passes over the unlabeled pool.
RECONSTRUCTION_PAYS: dict | None = _fewest_passes_where_reconstruction_pays()
# The default budget of a run on the user's own images (dataset_configs.OWN_DATA_DEFAULTS), in whole passes: the
# passes from which HybridNet led its baseline on every data set where the map found it leading (the largest
# crossover; the digits needed the most), and at least those from which the study found reconstruction adding to
# Mean Teacher, so that the default trains where full HybridNet's reconstruction can pay for its cost.
OWN_DATA_PASSES = math.ceil(max([c["passes"] for c in CROSSOVERS.values()]
                                + ([RECONSTRUCTION_PAYS["passes"]] if RECONSTRUCTION_PAYS else [])))


def steps_for_passes(passes: float, pool: int, unlabeled_batch: int) -> int:
    """The steps that draw ``passes`` times the ``pool`` of unlabeled images, ``unlabeled_batch`` per step."""
    return max(1, math.ceil(passes * pool / unlabeled_batch))


def passes(steps: int, pool: int, unlabeled_batch: int) -> float:
    return steps * unlabeled_batch / pool


def below_crossover(steps: int, pool: int, unlabeled_batch: int) -> str | None:
    """The warning of a run on own data whose budget stays below the own-data default (`OWN_DATA_PASSES`: the budget
    map's crossovers and the passes from which the study found reconstruction paying), with the budget that reaches
    it; None at or above."""
    made = passes(steps, pool, unlabeled_batch)
    if made >= OWN_DATA_PASSES:
        return None
    found = ", ".join(f"{c['passes']:.1f} passes on {name} ({c['steps']} steps, {c['labels']} labels)"
                      for name, c in CROSSOVERS.items())
    recon = RECONSTRUCTION_PAYS
    study = (f"; reconstruction added to Mean Teacher from {recon['passes']:.1f} passes ({STUDY['dataset']}, "
             f"{recon['labels']} labels, {recon['steps']} steps)" if recon else "")
    return (f"{steps} steps make {made:.1f} passes over the {pool} unlabeled images: HybridNet may not pay yet. The "
            f"budget map (benchmarks/RESULTS.md) found it ahead of its labeled-only baseline from {found}{study}. The "
            f"own-data default, {OWN_DATA_PASSES} passes, reaches them all: give it --max-steps "
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
    stability at the label count nearest ``labels``, what full HybridNet costs, and which preset pays for its cost
    there; None before the study has results, or for a run whose label count is unknown (every image labeled)."""
    if not STUDY or not STUDY["rows"] or not labels:
        return None
    nearest = min({r["labels"] for r in STUDY["rows"]}, key=lambda n: (abs(math.log(n / labels)), n))
    rows = [r for r in STUDY["rows"] if r["labels"] == nearest and r["full"]]
    cells = ", ".join(f"{r['steps']} steps {_paired(r['full'])}" for r in rows)
    cost = STUDY["cost"].get("full")
    return (f"reconstruction on top of Mean Teacher (labels x budget study, {STUDY['dataset']}, {nearest} labels, "
            f"validation): full − (classification + stability) {cells or 'not measured'}"
            + (f"; full costs {cost:.1f}x classification + stability per step" if cost else "")
            + (f". {_which_preset_pays(rows, nearest, cost)}" if rows else "."))


def _which_preset_pays(rows: list[dict], labels: int, cost: float | None) -> str:
    paying = reconstruction_pays_from(rows, labels)
    if paying:
        return (f"At {labels} labels full pays for its cost from {paying['steps']} steps on ({paying['passes']:.0f} "
                "passes over the unlabeled pool): keep --preset full, with at least as many passes.")
    cheaper = f" at 1/{cost:.1f} of full's cost per step" if cost else ""
    return (f"At {labels} labels full did not lead beyond the spread from any budget measured "
            f"({', '.join(str(r['steps']) for r in rows)} steps): there, --preset classification_stability trains"
            f"{cheaper or ' for less'}.")
