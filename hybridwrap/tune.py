"""``hybridwrap tune``: choose hyperparameters on a validation split held out of the training images.

The paper chose its reconstruction weights on a validation set (§4.2: λ_rec and λ_rec-inter in
{0.25, 0.5, 1.0}); this is that procedure for any config. Every trial is a normal training run in
``TUNE_DIR/trials/<name>`` on the same split: ``data.val_size`` training images are held out (never
labeled, never in the unlabeled pool) and scored, and the **test set plays no part** (trials never load a
test loader). The result:

* ``TUNE_DIR/trials.jsonl``: one line per evaluation of a trial (its settings, step, validation scores);
* ``TUNE_DIR/tune.json``: the grid, the ranking and the chosen setting;
* ``TUNE_DIR/best.yaml``: the chosen config, which ``hybridwrap train --config`` takes as it is.

Cost on 2 CPU cores: trials are shortened by successive halving (``early_stop``). Each trial first trains
to ``early_stop * max_steps`` on its *full* schedule (same learning-rate ramp-down as an uninterrupted
run), then only the better half continues to ``max_steps`` from its checkpoint, so a finished trial is
bit-identical to one trained straight through. Trials resume: re-running the same command skips finished
trials and continues interrupted ones from their last checkpoint.
"""

from __future__ import annotations

import copy
import datetime
import itertools
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import TrainConfig, apply_overrides, replaced, to_dict
from .data import load_data
from .errors import ConfigError
from .presets import PRESETS
from .resolution import apply_preset, resolve_budget
from .serialization import atomic_write_text
from .train import train

PAPER_GRID = {"loss.lambda_rec": [0.25, 0.5, 1.0], "loss.lambda_rec_inter": [0.25, 0.5, 1.0]}  # §4.2
METRICS = ("val_acc", "teacher_val_acc")
# what each grid key needs from the preset to have any effect
NEEDS = {"loss.lambda_rec": "reconstruction", "loss.lambda_rec_inter": "intermediate",
         "loss.lambda_stability": "stability", "loss.ema_decay": "stability",
         "loss.stability_rampup_steps": "stability"}


@dataclass
class Trial:
    name: str
    settings: dict  # "section.field" -> value
    seed: int


def parse_grid(items: list[str] | None, preset: str) -> dict[str, list]:
    """``["loss.lambda_rec=0.25,0.5", ...]`` -> {key: [values]}; the paper's grid when ``items`` is empty."""
    if not items:
        if preset not in PRESETS or not PRESETS[preset].reconstruction:
            raise ConfigError(f"The default grid (the paper's λ_rec x λ_rec_inter) has no effect under preset "
                              f"{preset!r}, which has no reconstruction. Pass --grid, e.g. --grid optim.lr=0.001,0.003.")
        return {k: list(v) for k, v in PAPER_GRID.items()}
    grid: dict[str, list] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--grid {item!r} must look like section.field=v1,v2,... "
                              "(e.g. --grid loss.lambda_rec=0.25,0.5,1.0).")
        key, values = item.split("=", 1)
        key = key.strip()
        parsed = [yaml.safe_load(v) for v in values.split(",") if v.strip()]
        if not parsed:
            raise ConfigError(f"--grid {key}= lists no values; give at least one (e.g. {key}=0.25,0.5,1.0).")
        if len(set(map(repr, parsed))) != len(parsed):
            raise ConfigError(f"--grid {key} repeats a value ({values}); list each value once.")
        if key in grid:
            raise ConfigError(f"--grid {key} is given twice; list all its values in one --grid.")
        need = NEEDS.get(key)
        if need and preset in PRESETS and not getattr(PRESETS[preset], need):
            raise ConfigError(f"--grid {key} has no effect under preset {preset!r} (it has no {need} term). "
                              "Tune another knob, or choose a preset that uses it.")
        grid[key] = parsed
    return grid


def _trial_name(settings: dict, seed: int) -> str:
    parts = [f"{k.split('.')[-1]}={v}" for k, v in settings.items()]
    return "_".join(parts + [f"seed={seed}"]).replace("/", "-")


def make_trials(grid: dict[str, list], seeds: list[int]) -> list[Trial]:
    keys = list(grid)
    trials = []
    for values in itertools.product(*(grid[k] for k in keys)):
        settings = dict(zip(keys, values))
        for seed in seeds:
            trials.append(Trial(_trial_name(settings, seed), settings, seed))
    return trials


def trial_config(base: TrainConfig, trial: Trial, tune_dir: Path) -> TrainConfig:
    cfg = apply_overrides(copy.deepcopy(base), [f"{k}={v}" for k, v in trial.settings.items()])
    # selection never sees the test set; progress within a trial, unless --no-progress
    return replaced(cfg, {"seed": trial.seed, "data.labels_seed": trial.seed, "evaluate_test": False,
                          "output_dir": str(tune_dir / "trials" / trial.name), "compare_baseline": False,
                          "progress_bar": base.progress_bar})


def default_val_size(num_train: int) -> int:
    """A fifth of the training images, at most 5000 (CIFAR-10's usual 45k/5k split)."""
    return max(1, min(5000, num_train // 5))


class Tuner:
    def __init__(self, base: TrainConfig, grid: dict[str, list], tune_dir: Path, seeds: list[int],
                 metric: str = "val_acc", early_stop: float = 0.5, log=print, train_val_size: int = 0):
        if metric not in METRICS:
            raise ConfigError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}.")
        if metric == "teacher_val_acc" and base.loss.stability != "mean_teacher":
            raise ConfigError("--metric teacher_val_acc needs a Mean Teacher (loss.stability=mean_teacher).")
        if not 0 <= early_stop < 1:
            raise ConfigError(f"--early-stop must be in [0, 1) (0: no early stopping), got {early_stop}.")
        if not seeds:
            raise ConfigError("--seeds needs at least one seed.")
        self.base, self.grid, self.dir, self.seeds = base, grid, Path(tune_dir), seeds
        self.metric, self.early_stop, self.log = metric, early_stop, log
        self.trials = make_trials(grid, seeds)
        for t in self.trials:  # every setting must be a valid override before anything trains
            trial_config(base, t, self.dir)
        self.results: dict[tuple[str, int], dict] = {}  # (trial name, step) -> metrics
        self.train_val_size = train_val_size  # val_size of the config best.yaml writes (the user's own)

    # -- results on disk: trials.jsonl is append-only, so an interrupted tune loses nothing ---------
    def _load(self) -> None:
        path = self.dir / "trials.jsonl"
        if path.is_file():
            for line in path.read_text().splitlines():
                if line.strip():
                    r = json.loads(line)
                    self.results[(r["trial"], r["step"])] = r

    def _record(self, trial: Trial, result: dict) -> dict:
        r = {"trial": trial.name, "settings": trial.settings, "seed": trial.seed, "step": result["steps"],
             **{k: result[k] for k in METRICS if k in result}}
        with open(self.dir / "trials.jsonl", "a") as f:
            f.write(json.dumps(r) + "\n")
        self.results[(trial.name, r["step"])] = r
        return r

    def _run(self, trial: Trial, stop_at: int | None, k: int, n: int) -> dict:
        cfg = trial_config(self.base, trial, self.dir)
        step = stop_at or cfg.max_steps
        if (trial.name, step) in self.results:
            return self.results[(trial.name, step)]
        resume = Path(cfg.output_dir).exists()
        self.log(f"tune: trial {k}/{n} {_describe(trial)} to step {step}" + (" (resumed)" if resume else ""))
        r = self._record(trial, train(cfg, resume=resume, stop_at=stop_at))
        self.log(f"tune: trial {k}/{n} {_describe(trial)} step {step}: {self.metric} {r[self.metric]:.2f}")
        return r

    def _score(self, settings_key: str, step: int) -> float:
        values = [self.results[(t.name, step)][self.metric] for t in self.trials
                  if _key(t.settings) == settings_key and (t.name, step) in self.results]
        return statistics.fmean(values)

    def run(self) -> dict:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._load()
        full = self.base.max_steps
        settings = list(dict.fromkeys(_key(t.settings) for t in self.trials))
        survivors = settings
        rung = int(full * self.early_stop) if self.early_stop else 0
        n = len(self.trials)
        if 0 < rung < full:
            for k, t in enumerate(self.trials, 1):
                self._run(t, rung, k, n)
            ranked = sorted(settings, key=lambda s: -self._score(s, rung))
            survivors = ranked[: max(1, math.ceil(len(ranked) / 2))]
            self.log(f"tune: early stop at step {rung}: {len(survivors)} of {len(settings)} settings continue")
        finalists = [t for t in self.trials if _key(t.settings) in survivors]
        for k, t in enumerate(finalists, 1):
            self._run(t, None, k, len(finalists))
        ranking = sorted(survivors, key=lambda s: -self._score(s, full))
        best = json.loads(ranking[0])
        summary = {
            "grid": self.grid, "seeds": self.seeds, "metric": self.metric, "max_steps": full,
            "early_stop_step": rung if 0 < rung < full else None, "val_size": self.base.data.val_size,
            "dataset": self.base.data.dataset, "preset": self.base.preset, "trials": len(self.trials),
            "train_val_size": self.train_val_size, "labels": self.base.data.num_labels,
            "precision": self.base.mixed_precision, "channels_last": self.base.channels_last,
            "ranking": [{"settings": json.loads(s), self.metric: self._score(s, full)} for s in ranking],
            "stopped_early": [{"settings": json.loads(s), self.metric: self._score(s, rung)}
                              for s in settings if s not in survivors],
            "best": best,
        }
        atomic_write_text(self.dir / "tune.json", json.dumps(summary, indent=2))
        atomic_write_text(self.dir / "best.yaml", best_yaml(self.base, best, summary))
        return summary


def _key(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True)


def _describe(trial: Trial) -> str:
    return " ".join(f"{k}={v}" for k, v in trial.settings.items()) + f" seed={trial.seed}"


def best_yaml(base: TrainConfig, best: dict, summary: dict) -> str:
    """The chosen config as YAML for ``hybridwrap train --config``: the base config with the best setting."""
    cfg = apply_overrides(copy.deepcopy(base), [f"{k}={v}" for k, v in best.items()])
    cfg = replaced(cfg, {"data.val_size": summary["train_val_size"]})  # the final run trains on every image again
    d = to_dict(cfg)
    for key in ("output_dir", "compare_baseline", "progress_bar", "evaluate_test"):
        d.pop(key, None)
    for key in ("input_size", "mean", "std"):  # resolved again from the data and the backbone
        d["model"][key] = None if d["model"][key] is None else list(d["model"][key])
    chosen = ", ".join(f"{k}={v}" for k, v in best.items())
    d["selected_by"] = (f"hybridwrap tune on {summary['val_size']} validation images held out of the {summary['dataset']} "
                        f"training set ({summary['metric']}, {len(summary['seeds'])} seed(s), {summary['trials']} "
                        f"trials, test set unused): {chosen}")
    header = (f"# Written on {datetime.date.today().isoformat()} by {d['selected_by']}.\n"
              "# Train with: hybridwrap train --config THIS_FILE\n")
    return header + yaml.safe_dump(d, sort_keys=False)


def tune(base: TrainConfig, grid: dict[str, list], tune_dir: str | Path, seeds: list[int] | None = None,
         metric: str = "val_acc", early_stop: float = 0.5, log=print) -> dict:
    """Run the grid on a validation split of the training images; write trials, tune.json and best.yaml."""
    base = apply_preset(copy.deepcopy(base))
    train_val_size = base.data.val_size
    if base.data.val_size <= 0:
        base = replaced(base, {"data.val_size": default_val_size(len(load_data(base.data).train_y))})
    resolve_budget(base)  # a budget in passes over the pool (own data) in steps, before the halving point is set from it
    return Tuner(base, grid, Path(tune_dir), seeds if seeds is not None else [base.seed], metric, early_stop, log,
                 train_val_size).run()
