"""`hybridwrap train`: its arguments, how they become a TrainConfig, and the command itself.

    hybridwrap train --baseline                                       # the embedded default: real MNIST, offline
    accelerate launch -m hybridwrap.train --config configs/cifar10_convlarge.yaml   # 1..N GPUs
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from . import budget, logs
from .command import process_rank, run_user_command
from .config import TrainConfig, apply_dict, apply_overrides, scaled_to
from .dataset_configs import DEMO_DATASETS, dataset_config, has_own_config
from .errors import CheckpointError, ConfigError, Interrupted
from .presets import check_overrides


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", action="extend", nargs="+",
                   help="YAML config (see configs/); repeat to layer overlays such as configs/official_code.yaml; "
                        "defaults to the embedded quickstart (configs/quickstart.yaml: real MNIST, offline)")
    p.add_argument("--preset", help="Table 1/2 preset, e.g. full, classification_stability, table2_e")
    p.add_argument("--dataset", help="mnist5k | digits | mnist | cifar10 | svhn | stl10 | npz | imagefolder | disk "
                                     "(default: the quickstart's mnist5k)")
    p.add_argument("--backbone", help="any registered backbone or timm CNN, e.g. resnet18 (model.backbone)")
    p.add_argument("--pretrained", action="store_true", help="start E_c and E_u from the backbone's pretrained "
                                                             "weights (model.pretrained)")
    p.add_argument("--checkpoint-path", help="start E_c and E_u from this local weights file (model.checkpoint_path)")
    p.add_argument("--data-path", help="local file/folder for the dataset (npz, ImageFolder root, save_to_disk dir)")
    p.add_argument("--output-dir", help="run directory (checkpoints, metrics, model)")
    p.add_argument("--max-steps", type=int, help="training steps (batches of labeled + unlabeled images); every "
                                                 "ramp-up and ramp-down of the config is scaled to keep its share of "
                                                 "the run. Own data (imagefolder, npz, disk) otherwise trains a "
                                                 "number of passes over its unlabeled pool (budget_passes)")
    p.add_argument("--seed", type=int, help="random seed of the first run (weights, batches, labeled subset)")
    p.add_argument("--seeds", type=int, help="train this many seeds (seed, seed+1, ...) and report mean ± std")
    p.add_argument("--resume", action="store_true", help="continue the run in --output-dir from its last checkpoint")
    p.add_argument("--baseline", action="store_true", help="also train the labeled-only classification baseline")
    p.add_argument("--skip-bad-images", action="store_true", help="train without the image files that cannot be read "
                                                                  "(listed in RUN/skipped_images.txt) instead of "
                                                                  "stopping (data.skip_bad_images)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (evaluations are still printed)")
    p.add_argument("--sync-bn", action="store_true", help="multi-GPU: BatchNorm statistics over all processes "
                                                            "(model.sync_bn)")
    level = p.add_mutually_exclusive_group()
    level.add_argument("--quiet", action="store_true", help="print only warnings, errors and the results table "
                                                            "(RUN/train.log still gets everything)")
    level.add_argument("--verbose", action="store_true", help="also print the training losses every log_every steps")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override any config field, e.g. --set loss.lambda_rec=0.25 (repeatable)")


def config_from_args(args) -> TrainConfig:
    if getattr(args, "resume", False) and not args.config and args.output_dir:
        from .train.rundir import saved_run_config

        run_dir = Path(args.output_dir)
        saved = saved_run_config(run_dir)  # `--resume --output-dir RUN`: the run's own config
        if saved is not None:
            refuse_other_run(saved, args, run_dir)
            cfg = load_config_overrides(saved, args, saved_run=True)
            if one_run_of_several(saved, run_dir):  # that run alone: never new runs nested inside it
                cfg.seeds, cfg.compare_baseline, cfg.output_dir = 1, False, str(run_dir)
            return cfg
    cfg = dataset_config(args.dataset, args.config)
    backbone = getattr(args, "backbone", None)
    if backbone and backbone != cfg.model.backbone:
        cfg.model.backbone, cfg.model.backbone_kwargs = backbone, {}  # the config's kwargs were its backbone's
    if not args.config and not args.output_dir and ((args.dataset and not has_own_config(args.dataset)) or backbone):
        source = Path(args.data_path).name if args.data_path else cfg.data.dataset
        cfg.output_dir = f"runs/{source}-{cfg.model.backbone}"  # not the demo's own run directory
    cfg = load_config_overrides(cfg, args)
    if getattr(args, "resume", False):
        require_run(Path(cfg.output_dir))
    return cfg


# what a flag of `hybridwrap train` sets in the run's config: on --resume each flag given must agree with the run
RESUME_FLAGS = {"dataset": "data.dataset", "backbone": "model.backbone", "data_path": "data.path", "preset": "preset",
                "seed": "seed", "seeds": "seeds", "baseline": "compare_baseline", "pretrained": "model.pretrained",
                "checkpoint_path": "model.checkpoint_path", "sync_bn": "model.sync_bn"}


def _value(cfg: TrainConfig, key: str):
    section, _, name = key.rpartition(".")
    return getattr(getattr(cfg, section) if section else cfg, name)


def refuse_other_run(saved: TrainConfig, args, run_dir: Path) -> None:
    """``--resume`` with a flag that asks for another run than the one in ``run_dir`` is refused with the list of
    differences, before anything is written (--max-steps extends a run: not a difference)."""
    diffs = []
    for flag, key in RESUME_FLAGS.items():
        asked = getattr(args, flag, None)
        if asked is None or asked is False:
            continue
        held = _value(saved, key)
        if key == "data.path" and held is not None and Path(held).resolve() == Path(asked).resolve():
            continue
        if key in ("seeds", "compare_baseline") and one_run_of_several(saved, run_dir):
            parent = run_dir.parent.parent if run_dir.parent.name == "baseline" else run_dir.parent
            diffs.append(f"--{flag}: {run_dir} is one run of the command in {parent}, resumed alone; for the whole "
                         f"command: hybridwrap train --resume --output-dir {parent}")
            continue
        if asked != held:
            diffs.append(f"--{flag.replace('_', '-')}: the run has {held!r}, the command asks {asked!r}")
    if diffs:
        raise CheckpointError(f"Cannot resume {run_dir}: the command asks for another run than the one it holds "
                              f"({'; '.join(diffs)}). Resume it as it is (hybridwrap train --resume --output-dir "
                              f"{run_dir}), or start a new run in another --output-dir.")


def one_run_of_several(saved: TrainConfig, run_dir: Path) -> bool:
    """Whether ``run_dir`` is one run of a several-run command (RUN/seed-K, RUN/baseline, RUN/baseline/seed-K)
    rather than the command's own directory."""
    from .train.rundir import has_config
    if not has_config(run_dir):
        return False  # the directory of a several-seed command holds its runs, not a config of its own
    return saved.seeds > 1 or (saved.compare_baseline and saved.preset == "classification" and run_dir.name == "baseline")


def require_run(run_dir: Path) -> None:
    """--resume continues a run that exists; anything else is refused before a file is written."""
    from .train.rundir import saved_run_config

    if saved_run_config(run_dir) is None:
        what = "does not exist" if not run_dir.exists() else "holds no run"
        raise ConfigError(f"--resume continues a run, but {run_dir} {what} (looked for {run_dir}/train_config.json and "
                          f"{run_dir}/seed-*/train_config.json). Drop --resume to start a new run, or pass the run's "
                          "directory as --output-dir.")


def load_config_overrides(cfg: TrainConfig, args, saved_run: bool = False) -> TrainConfig:
    simple = {"preset": args.preset, "output_dir": args.output_dir, "seed": args.seed, "seeds": getattr(args, "seeds", None)}
    apply_dict(cfg, {k: v for k, v in simple.items() if v is not None}, source="command line")
    if args.max_steps is not None or any(item.split("=")[0].strip() == "max_steps" for item in args.set):
        cfg.budget_passes = None  # a budget in steps replaces one in passes over the pool
    if args.max_steps is not None:
        if saved_run or args.max_steps < 1:  # < 1: refused by the checks with the usual message
            cfg.max_steps = args.max_steps  # the run's own config keeps the schedule it started with
        else:  # a budget run of the config: its ramps keep their share of the run (benchmarks/budget_map.py)
            scaled_to(cfg, args.max_steps)
    if args.data_path:
        cfg.data.path = args.data_path
    if args.baseline:
        cfg.compare_baseline = True
    if args.no_progress:
        cfg.progress_bar = False
    if getattr(args, "skip_bad_images", False):
        cfg.data.skip_bad_images = True
    if getattr(args, "sync_bn", False):
        cfg.model.sync_bn = True
    if getattr(args, "pretrained", False):
        cfg.model.pretrained = True
    if getattr(args, "checkpoint_path", None):
        cfg.model.checkpoint_path = args.checkpoint_path
    if getattr(args, "quiet", False) or getattr(args, "verbose", False):
        cfg.log_level = "quiet" if args.quiet else "verbose"
    presets = [item.split("=", 1)[1].strip() for item in args.set if item.split("=", 1)[0].strip() == "preset"]
    check_overrides(presets[-1] if presets else cfg.preset, args.set)
    return apply_overrides(cfg, args.set)


def interrupted(cfg: TrainConfig) -> Interrupted:
    """Ctrl-C: where the last checkpoint is, and the command that continues from it."""
    from .train.rundir import checkpoint_dirs

    root = Path(cfg.output_dir)
    found = [p for run in [root, *sorted(root.glob("seed-*")), *sorted(root.glob("baseline/seed-*")), root / "baseline"]
             for p in checkpoint_dirs(run)]
    if not found:
        return Interrupted(f"interrupted before the first checkpoint of {root}: nothing was kept (the run directory "
                           "it created is removed); run the same command again to start over.")
    last = max(found, key=lambda p: p.stat().st_mtime)
    return Interrupted(f"interrupted. The last checkpoint is {last}; continue with: hybridwrap train --resume "
                       f"--output-dir {root}")


def closing_lines(cfg: TrainConfig, results: list[dict], seconds: float) -> list[str]:
    """What the command says after its results table: where the budget map found the gain to come from (a demo
    data set with a baseline), the time it took, and, after a demo, the next command."""
    lines = []
    if cfg.compare_baseline and cfg.preset != "classification":
        sources = budget.gain_sources(cfg.data.dataset, cfg.max_steps, cfg.data.unlabeled_batch_size)
        if sources:
            lines.append(sources)
    from .train.concurrent import plan  # here: `hybridwrap train --help` needs no torch
    from .train.estimate import describe

    runs = f"{len(results)} run{'s' if len(results) != 1 else ''}"
    lines.append(f"took {describe(seconds)} on this machine: {runs}, "
                 f"{plan(cfg, len(results)).describe()}")
    if cfg.data.dataset in DEMO_DATASETS:
        lines.append("next, your own images (train/<class>/, test/<class>/, optionally unlabeled/): hybridwrap train "
                     "--dataset imagefolder --data-path my_images --backbone resnet18")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hybridwrap train", description="Train a HybridNet semi-supervised.")
    add_train_arguments(parser)
    args = parser.parse_args(argv)

    def go():
        from .train import format_results, train_with_baseline  # here: `hybridwrap train --help` needs no torch
        from .train.estimate import process_started

        cfg = config_from_args(args)
        if process_rank() == 0:  # set by `accelerate launch`: one console, the main process's
            logs.attach_console(cfg.log_level)
        t0 = time.perf_counter()
        try:
            results = train_with_baseline(cfg, resume=args.resume, started=process_started())
        except KeyboardInterrupt:
            raise interrupted(cfg) from None
        if process_rank() == 0:  # one table, not one per process
            print(format_results(results, cfg.selected_by))
            print(f"run directory: {cfg.output_dir}")
            print("\n".join(closing_lines(cfg, results, time.perf_counter() - t0)))
        return 0

    return run_user_command(go)
