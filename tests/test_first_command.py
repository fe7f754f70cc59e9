"""The README's first command: the frontier's choice is the shipped config, its output is generated, its claims hold."""

import statistics
import sys

import pytest

from conftest import REPO
from hybridwrap import budget
from hybridwrap.config import load_config, scaled_to
from hybridwrap.train_cli import closing_lines

BENCH = REPO / "benchmarks"
RESULTS = BENCH / "results"
sys.path.insert(0, str(BENCH))

import first_command  # noqa: E402  (benchmarks/first_command.py)
from rendering import budget as map_render  # noqa: E402
from rendering import first_command as render  # noqa: E402


def _record(name, minutes, diffs, tag="avx2"):
    runs = {"full": [{"val_acc": 90 + d} for d in diffs], "classification": [{"val_acc": 90.0} for _ in diffs]}
    r = {"candidate": name, "tag": tag, "minutes": minutes, "runs": runs}
    r["paired_val"] = first_command.paired(r)
    return r


def test_the_choice_is_the_cheapest_lead_beyond_the_spread_within_the_time():
    records = [_record("slow-big", 6.0, [5, 5, 5]),  # over five minutes
               _record("cheap-small", 2.0, [1, 1.5, 2]),  # leads, but by less than 3 points
               _record("good", 4.0, [3.5, 4, 4.5]),
               _record("good-dearer", 4.5, [4, 5, 6]),
               _record("spread", 3.0, [-1, 4, 9]),  # mean 4, but a seed behind
               _record("wide", 3.5, [0.5, 0.5, 8.5]),  # mean 3.17, every seed ahead, but std 4.62: not beyond it
               _record("native-cheaper", 1.0, [9, 9, 9], tag="native")]  # never chosen on another CPU's time
    chosen, why = first_command.choose(records)
    assert chosen["candidate"] == "good" and "at least 3 points on average" in why
    fallback, why = first_command.choose([r for r in records if r["candidate"] not in ("good", "good-dearer")])
    assert fallback["candidate"] == "cheap-small" and "no candidate leads by 3 points" in why
    none, why = first_command.choose([_record("behind", 2.0, [-1, 1, 2])])
    assert none is None and "no candidate leads" in why


def test_the_shipped_quickstart_is_the_frontiers_choice():
    """configs/quickstart.yaml is configs/mnist5k.yaml with the chosen candidate's overrides at its steps, every
    schedule scaled as --max-steps scales it, and its selected_by line names the choice."""
    chosen, _ = first_command.choose(first_command.load())
    assert chosen is not None
    steps, overrides = first_command.CANDIDATES[chosen["candidate"]]
    assert (steps, overrides) == (chosen["steps"], chosen["overrides"])
    expected = scaled_to(load_config(REPO / first_command.BASE, overrides), steps)
    shipped = load_config(REPO / "configs" / "quickstart.yaml")
    for section in ("model", "data", "loss", "optim"):
        assert getattr(shipped, section) == getattr(expected, section), section
    for key in ("preset", "max_steps", "seeds", "baseline_overrides", "mixed_precision", "channels_last",
                "run_processes", "seed"):
        assert getattr(shipped, key) == getattr(expected, key), key
    assert chosen["candidate"] in shipped.selected_by and "validation" in shipped.selected_by


def test_the_measured_first_command_holds_what_the_readme_says():
    """Five minutes in fp32 under the AVX2 emulation, faster natively, and the README's words and output are the
    generated ones."""
    emulated, native = render.measured("avx2"), render.measured()
    cfg = load_config(REPO / "configs" / "quickstart.yaml")
    assert emulated["cpu_emulation"] and emulated["precision"] == "no" and emulated["seeds"] == cfg.seeds >= 3
    assert (emulated["max_steps"], emulated["image_size"], emulated["batch"][1]) == (
        cfg.max_steps, cfg.data.image_size, cfg.data.unlabeled_batch_size)
    assert emulated["seconds"] <= 300
    assert native["seconds"] < emulated["seconds"] and not native["cpu_emulation"]
    readme = (REPO / "README.md").read_text()
    for name, block in render.BLOCKS.items():  # every generated block is what the committed results render
        begin, end = render.markers(name)
        start, stop = readme.index(begin) + len(begin), readme.index(end)
        assert readme[start:stop].strip("\n") == "\n".join(block()).strip("\n"), name
    full = {r["seed"]: r["test_acc"] for r in emulated["runs"] if r["preset"] == "full"}
    base = {r["seed"]: r["test_acc"] for r in emulated["runs"] if r["preset"] == "classification"}
    diffs = [full[s] - base[s] for s in full]
    ahead = all(d > 0 for d in diffs) and statistics.fmean(diffs) > 0
    assert ("is ahead of its labeled-only baseline" in emulated["output"]) == (statistics.fmean(diffs) > 0)
    assert ("gain over its baseline is not established" in readme) == (not ahead)


def test_the_readme_says_what_the_first_command_costs_where_reconstruction_paid_only_when_over_its_limit():
    def few(minutes):
        r = _record("16px-few", minutes, [8.0, 9.0, 10.0])
        return dict(r, steps=2000, overrides=["data.num_labels=20"])

    cheap = dict(_record("cheap", 1.0, [1, 2, 3]), steps=1000, overrides=[])
    over = render.few_label_lines([few(first_command.MINUTES + 3.5), cheap])
    assert "with 20 labels from 2000 steps" in over[1] and f"took {first_command.MINUTES + 3.5:.1f} minutes" in over[1]
    assert "+9.00 ± 1.00 (3/3)" in over[1] and "so it runs 100 labels" in over[1]
    assert render.few_label_lines([few(first_command.MINUTES - 0.5)]) == []  # within the limit: the choice decides
    assert render.few_label_lines([cheap]) == []


def test_the_library_reads_what_the_committed_budget_map_renders():
    """hybridwrap/budget_map.json is written by render_results.py from the committed JSON, never by hand: the map's
    crossovers and gain sources, and the labels x budget study's summary."""
    from rendering import labels_study

    study = labels_study.summary(labels_study.load())
    assert budget.MAP == {**map_render.summary(map_render.load()), **({"reconstruction": study} if study else {})}


def test_a_run_says_at_start_up_what_the_study_found_for_its_label_count(tmp_path):
    from conftest import write_config
    from hybridwrap.train import train

    cfg = load_config(write_config(tmp_path / "c.yaml", max_steps=2), [f"output_dir={tmp_path / 'run'}"])
    train(cfg)
    line = budget.reconstruction_line(cfg.data.num_labels)
    assert line and line in (tmp_path / "run" / "train.log").read_text()


def test_the_reconstruction_line_says_what_the_study_found_at_the_nearest_label_count(monkeypatch):
    stat = lambda mean, ahead: {"mean": mean, "std": 0.5, "ahead": ahead, "seeds": 3}  # noqa: E731
    study = {"dataset": "mnist5k", "cost": {"full": 2.7}, "conclusion": "The conclusion.",
             "rows": [{"labels": 20, "steps": 1000, "passes": 23.0, "full": stat(1.5, 3), "pays": True,
                       "autoencoder": None},
                      {"labels": 20, "steps": 4000, "passes": 92.0, "full": {"mean": 4.2, "std": 0.0, "ahead": 1,
                                                                             "seeds": 1}, "pays": False,
                       "autoencoder": None},
                      {"labels": 100, "steps": 1000, "passes": 23.5, "full": stat(-0.3, 1), "pays": False,
                       "autoencoder": stat(0.1, 2)}]}
    monkeypatch.setattr(budget, "STUDY", study)
    line = budget.reconstruction_line(25)
    assert "mnist5k, 20 labels, validation" in line and "1000 steps +1.50 ± 0.50 (3/3 seeds ahead)" in line
    assert "4000 steps +4.20 (1 seed so far)" in line  # a cell of one seed states no spread
    assert "full costs 2.7x classification + stability per step" in line
    # it paid at 1000 steps but not (yet) at the larger budget: not "from 1000 steps on"
    assert line.endswith("At 20 labels full did not lead beyond the spread from any budget measured (1000, 4000 "
                         "steps): there, --preset classification_stability trains at 1/2.7 of full's cost per step.")
    study["rows"][1]["pays"] = True
    assert budget.reconstruction_line(25).endswith(
        "At 20 labels full pays for its cost from 1000 steps on (23 passes over the unlabeled pool): keep --preset "
        "full, with at least as many passes.")
    assert "100 labels" in budget.reconstruction_line(80) and "The conclusion." not in budget.reconstruction_line(80)
    assert budget.reconstruction_line(None) is None  # every image labeled: no label count to match


def test_reconstruction_pays_from_the_first_budget_it_leads_at_and_at_every_larger_one():
    rows = [{"labels": 20, "steps": s, "passes": s / 40, "pays": p} for s, p in ((1000, True), (2000, False),
                                                                                 (4000, True), (8000, True))]
    assert budget.reconstruction_pays_from(rows, 20)["steps"] == 4000
    assert budget.reconstruction_pays_from(rows, 50) is None
    assert budget.reconstruction_pays_from(rows[:2], 20) is None  # behind at the largest budget measured


def test_the_first_command_ends_with_where_the_gain_comes_from_its_time_and_the_next_command():
    cfg = load_config(REPO / "configs" / "quickstart.yaml")
    cfg.compare_baseline = True
    lines = closing_lines(cfg, [{}] * 6, 263.4)
    made = cfg.max_steps * cfg.data.unlabeled_batch_size / 3400  # the map's pool: 4,000 - 500 validation - 100 labeled
    row = min(budget.MAP["gain_sources"]["mnist5k"], key=lambda r: abs(r["passes"] / made - 1))
    s = row["stability"]
    assert lines[0].startswith(f"where the gain comes from (budget map, mnist5k, 100 labels, {row['passes']:.1f} "
                               "passes over the unlabeled pool")
    assert f"stability (Mean Teacher) {s['mean']:+.2f} ± {s['std']:.2f} ({s['ahead']}/{s['seeds']} seeds ahead)" in lines[0]
    assert lines[1].startswith("took 4 min 23 s on this machine: 6 runs, ")
    assert lines[2].startswith("next, your own images") and "--dataset imagefolder" in lines[2]
    own = load_config(REPO / "configs" / "digits.yaml", ["data.dataset=imagefolder"])
    from hybridwrap.train.concurrent import plan

    assert closing_lines(own, [{}], 5.2) == [f"took 5 s on this machine: 1 run, {plan(own, 1).describe()}"]


@pytest.mark.parametrize("name", list(first_command.CANDIDATES))
def test_every_candidate_changes_cost_and_never_the_method(name):
    steps, overrides = first_command.CANDIDATES[name]
    touched = {o.split("=", 1)[0] for o in overrides}
    assert touched <= {"data.image_size", "model.input_size", "model.backbone_kwargs", "data.unlabeled_batch_size",
                       "data.num_labels"}
    assert steps >= 1


def test_the_few_label_candidate_makes_the_passes_from_which_the_study_found_reconstruction_paying():
    """The 20-label candidate measures what the command costs where reconstruction paid: the same label count and
    the same passes over the unlabeled pool as the study's paying row."""
    few = {name: c for name, c in first_command.CANDIDATES.items() if any(o.startswith("data.num_labels=") for o in c[1])}
    assert len(few) == 1
    (steps, overrides), = few.values()
    cfg, study = load_config(REPO / first_command.BASE, overrides), load_config(REPO / first_command.BASE)
    pays = budget.RECONSTRUCTION_PAYS  # a study run: configs/mnist5k.yaml at its label count and steps
    assert (cfg.data.num_labels, steps) == (pays["labels"], pays["steps"])
    assert cfg.data.unlabeled_batch_size == study.data.unlabeled_batch_size  # so the same passes over the same pool


def test_the_frontier_refuses_a_tag_that_does_not_match_the_cpu(tmp_path):
    """--tag avx2 outside the emulation would record native times as AVX2 ones: refused, nothing written."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("HYBRIDWRAP_CPU_EMULATION", "PYTHONPATH")}
    done = subprocess.run([sys.executable, str(BENCH / "first_command.py"), "--tag", "avx2", "--results-dir",
                           str(tmp_path)], capture_output=True, text=True, env=env)
    assert done.returncode != 0 and "--tag avx2 runs under the emulation" in done.stderr
    assert not list(tmp_path.iterdir())
