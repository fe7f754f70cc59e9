"""Time estimates (hybridwrap.train.estimate): what a run adds to its steps, how the command lays out its runs.

Whether the estimates hold on this machine is measured by benchmarks/estimates.py, not here."""

import pytest

from conftest import write_config
from hybridwrap.config import load_config
from hybridwrap.train import seed_configs
from hybridwrap.train.concurrent import queue_order
from hybridwrap.train.estimate import CommandClock, RunPace, describe, run_kind, steps_between
from hybridwrap.train.seeds import baseline_config


def _clock(kinds, processes, lines):
    return CommandClock(kinds, list(range(len(kinds))), processes, started=0.0, log=lines.append)


def test_the_command_lays_out_the_runs_to_come_on_its_processes():
    """3 runs of kind F (100 s each) and 3 of kind B (20 s), 2 at a time, the first of each kind first: F and B
    start at 0; B ends at 20 and the next F starts; then F at 100, B at 120 and 140; the last F ends at 200."""
    lines = []
    clock = _clock(["F", "B", "F", "F", "B", "B"], 2, lines)
    clock.begin(0, 0.0)
    clock.begin(1, 0.0)
    clock.paced(0, RunPace(at=10.0, remaining=90.0))
    assert lines == []  # kind B has not measured its pace yet: no estimate
    clock.paced(1, RunPace(at=5.0, remaining=15.0))
    assert clock.finish_time(5.0) == pytest.approx(200.0)
    assert lines == ["the command: about 3 min 20 s in all, 3 min 15 s to go (6 runs, 2 at a time; each kind of "
                     "run timed over its first steps)"]
    clock.paced(1, RunPace(at=6.0, remaining=15.0))
    assert len(lines) == 1  # said once


def test_a_run_too_short_to_measure_its_pace_gives_its_kind_duration_when_it_ends():
    lines = []
    clock = _clock(["F", "B", "B"], 1, lines)
    clock.begin(0, 0.0)
    clock.paced(0, RunPace(at=10.0, remaining=40.0))
    clock.end(0, 50.0)
    clock.begin(1, 50.0)
    clock.end(1, 53.0)  # no pace: its 3 s stand for its kind
    assert clock.finish_time(53.0) == pytest.approx(56.0)
    assert lines and lines[0].startswith("the command: about 56 s in all, 3 s to go (3 runs;")


def test_a_run_past_its_estimate_is_still_running_now():
    clock = _clock(["F", "F"], 1, [])
    clock.begin(0, 0.0)
    clock.paced(0, RunPace(at=1.0, remaining=9.0))  # expected to end at 10
    assert clock.finish_time(30.0) == pytest.approx(40.0)  # at 30 it runs still: it ends now at best, then 10 more


def test_steps_between_counts_the_multiples_in_the_half_open_range():
    assert steps_between(11, 1499, 500) == 2  # evaluations at 500 and 1000 before the final one
    assert steps_between(0, 100, 100) == 1
    assert steps_between(100, 150, 100) == 0


def test_describe_reads_to_the_second():
    assert describe(58.4) == "58 s"
    assert describe(252.0) == "4 min 12 s"


def test_the_first_run_of_each_kind_starts_first_then_the_costliest(tmp_path):
    cfg = load_config(write_config(tmp_path / "c.yaml", seeds=3), [f"output_dir={tmp_path / 'run'}"])
    runs = seed_configs(cfg) + seed_configs(baseline_config(cfg))
    assert len({run_kind(r) for r in runs}) == 2  # seeds differ in seed, subset and directory only
    assert queue_order(runs) == [0, 3, 1, 2, 4, 5]


def test_the_commands_own_run_starts_first_even_where_its_baseline_costs_more(tmp_path):
    """``--resume`` of the command reads run 0's config: no other run may be ahead of it."""
    cfg = load_config(write_config(tmp_path / "c.yaml", seeds=2, baseline_overrides=["max_steps=1000"]),
                      [f"output_dir={tmp_path / 'run'}", "preset=table2_a"])
    runs = seed_configs(cfg) + seed_configs(baseline_config(cfg))
    assert queue_order(runs)[0] == 0


def test_a_run_reports_its_estimate_once_with_what_it_has_left(tmp_path, monkeypatch):
    from hybridwrap.train import estimate, train

    monkeypatch.setattr(estimate, "PACE_SECONDS", 0.0)
    cfg = load_config(write_config(tmp_path / "c.yaml", max_steps=15, eval_every=5, checkpoint_every=5),
                      [f"output_dir={tmp_path / 'run'}"])
    reports = []
    train(cfg, report=reports.append)
    assert len(reports) == 1 and reports[0].remaining > 0
    log = (tmp_path / "run" / "train.log").read_text()
    # paced at step 11: evaluations at 15 (the final one), checkpoints at 15, and the saved model
    assert "step 11/15:" in log and "4 steps, 1 evaluation, 1 checkpoint, the saved model)" in log
