"""What a run says when it starts: the model, the data, the budget (steps, passes over the unlabeled pool, and on own
data a warning below the budget map's crossover), precision and where it writes."""

from __future__ import annotations

from pathlib import Path

from .. import budget, logs
from ..config import OWN_DATA
from ..presets import PRESETS

logger = logs.get_logger("hybridwrap.train")


def log_start(run, resumed_from: Path | None) -> None:
    """The start-up lines of a run (``run``: a :class:`~hybridwrap.train.loop.Run` after its setup)."""
    cfg, data, split = run.cfg, run.data, run.split
    model = run.accelerator.unwrap_model(run.model)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    # the pool: every training image outside validation (labeled ones too) and the extra unlabeled ones
    unlabeled = (f"the unlabeled stream of {run.steps.stream.name}" if run.steps.stream is not None
                 else f"{len(run.steps.batches.unlabeled)} in the unlabeled pool")
    reading = (f"{run.workers} loader worker{'s' if run.workers != 1 else ''}" if run.workers
               else "no loader workers")
    where = "in memory" if data.in_memory else "read from disk on access"
    test = f", {len(data.test_y)} test" if run.eval_loader is not None else ", test split unused"
    start = (f"resumed at step {run.state.step} from {resumed_from}" if resumed_from is not None
             else "new run")
    logger.info(f"hybridwrap: training {cfg.preset} ({cfg.model.backbone}, {params:.2f} M parameters, "
                f"{cfg.model.input_size[0]}x{cfg.model.input_size[1]}) on {data.name}")
    if cfg.protocol:
        logger.info(f"  protocol: {cfg.protocol}")
    logger.info(f"  data: {len(split.labeled)} labeled, {unlabeled}, {len(split.val)} validation{test}; "
                f"batches of {cfg.data.labeled_batch_size} labeled + {cfg.data.unlabeled_batch_size} unlabeled; "
                f"images {where}, {run.steps.mode} augmentation, {reading}")
    logger.info(f"  {describe_budget(run)} on {run.accelerator.device} ({run.world} process"
                f"{'es' if run.world > 1 else ''}); evaluate every {min(cfg.eval_every, cfg.max_steps)}, "
                f"checkpoint every {min(cfg.checkpoint_every, cfg.max_steps)}"
                + ("; time estimate after its first steps" if run.state.step + 1 < cfg.max_steps else ""))
    warn_below_crossover(run)
    if cfg.preset != "classification":  # which preset pays for its cost, where the study measured it
        line = budget.reconstruction_line(len(split.labeled))
        if line:
            logger.info(f"  {line}")
    logger.info(f"  precision {'fp32' if cfg.mixed_precision == 'no' else cfg.mixed_precision} ({run.precision_reason})")
    logger.info(f"  run directory {run.run_dir} ({start}); log {run.run_dir / logs.LOG_FILE}")


def describe_budget(run) -> str:
    """The budget in steps and passes over the unlabeled pool."""
    cfg = run.cfg
    pool = len(run.steps.batches.unlabeled) if run.steps.stream is None else 0
    if not pool:
        return f"{cfg.max_steps} steps"
    made = budget.passes(cfg.max_steps, pool, cfg.data.unlabeled_batch_size)
    sized = f", sized by budget_passes={cfg.budget_passes:g}" if cfg.budget_passes is not None else ""
    return f"{cfg.max_steps} steps ({made:.1f} passes over the unlabeled pool{sized})"


def warn_below_crossover(run) -> None:
    """Own data whose budget stays below the budget map's crossovers, with a term that needs unlabeled images: say
    that HybridNet may not pay yet, and which --max-steps reaches them."""
    cfg, preset = run.cfg, PRESETS[run.cfg.preset]
    if (run.steps.stream is not None or cfg.data.dataset not in OWN_DATA or run.rank != 0
            or not (preset.stability or preset.reconstruction)):
        return
    note = budget.below_crossover(cfg.max_steps, len(run.steps.batches.unlabeled), cfg.data.unlabeled_batch_size)
    if note:
        logger.warning(note)
