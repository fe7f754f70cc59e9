"""Semi-supervised HybridNet training with Hugging Face Accelerate, one concern per module:

* ``loop``: :class:`Run` (setup from a config) and ``Run.fit``, the loop; a step's pieces as small methods;
* ``rundir``: run-directory rules, checkpoints and resume, metrics.jsonl, the saved config;
* ``evaluation``: accuracies, branch statistics (the §3.2 collapse check), how scores are printed;
* ``schedule``: the optimiser and the learning-rate / β1 schedule;
* ``checks``: a config against the world (processes, data), before anything is written;
* ``process``: Accelerate's precision state, the launcher watch;
* ``seeds``: several seeds and the labeled-only baseline, and their results table.

Argument parsing is the CLI's (:mod:`hybridwrap.train_cli`); ``python -m hybridwrap.train`` and
``accelerate launch -m hybridwrap.train`` run it (``__main__``). Nothing here imports the CLI.
"""

from __future__ import annotations

from .evaluation import COLLAPSE_SHARE, branch_statistics, collapsed_branch, describe_scores
from .loop import Run
from .rundir import CHECKPOINTS, TrainState, checkpoint_dirs, saved_run_config
from .schedule import optimizer_schedule
from .seeds import baseline_config, format_results, seed_configs, train, train_with_baseline

__all__ = ["Run", "train", "train_with_baseline", "seed_configs", "baseline_config", "format_results",
           "describe_scores", "checkpoint_dirs", "saved_run_config", "optimizer_schedule", "branch_statistics",
           "collapsed_branch", "TrainState", "CHECKPOINTS", "COLLAPSE_SHARE"]
