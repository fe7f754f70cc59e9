"""One training run: ``Run`` sets it up from a config, ``fit()`` is the loop.

One step: draw n_s labeled + n_u unlabeled images (a pure function of seed and step, so a resumed run
draws what an uninterrupted one would), augment, run the two-branch forward pass, add the terms of
Eq. 2, step the optimiser, update the stability target (Mean Teacher EMA or Temporal Ensembling).
With N processes the global batch is split evenly across them and DDP averages the gradients.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import torch
import torch.nn as nn
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration
from tqdm.auto import tqdm

from .. import hardware, logs, losses, resolution
from ..builder import build_from_config
from ..command import process_rank
from ..config import TrainConfig, to_dict
from ..data import augment as aug
from ..data import load_data
from ..data.images import take
from ..data.loader import default_workers, eval_loader, step_batches, step_loader
from ..data.semisup import Split, fold_split, make_split
from ..errors import DataError, TrainingError
from ..serialization import atomic_write_text, save_model
from .checks import check_data_fits_model, validate
from .estimate import Pace
from .evaluation import branch_statistics, describe_scores, evaluate
from .process import allow_new_precision, has_tensorboard, stop_when_launcher_dies, sync_batchnorm
from .rundir import (TrainState, check_run_dir, checkpoint_dirs, clean_partial_checkpoints, first_missing,
                     keep_metrics_until, lock_run, save_checkpoint, unlock_run, write_train_config)
from .schedule import make_optimizer, optimizer_schedule
from .stability import stability_targets
from .startup import log_start

logger = logs.get_logger("hybridwrap.train")


class Run:
    """Everything one training run holds; ``fit()`` is the loop."""

    def __init__(self, cfg: TrainConfig, resume: bool = False):
        # `accelerate launch --multi_gpu` on a machine without GPUs: run the processes on CPU with gloo
        # (Accelerate only does so when told cpu=True).
        cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
        on_cuda = torch.cuda.is_available() and not cpu
        # the caller's config is left as it is: the run resolves its own copy (`resolution`), then only reads it
        self.cfg, self.precision_reason = resolution.before_data(cfg, on_cuda)
        cfg = self.cfg
        self.run_dir = Path(cfg.output_dir)
        # Checks come first and run on every process: each process reaches the same verdict and exits with
        # the same error, instead of one waiting at a barrier for a process that has already stopped.
        validate(cfg, int(os.environ.get("WORLD_SIZE", "1")))
        check_run_dir(cfg, self.run_dir, resume)
        trackers = ["tensorboard"] if has_tensorboard() else None
        if hardware.emulated_bf16(cfg.mixed_precision, on_cuda) and process_rank() == 0:
            logger.warning(f"mixed_precision=bf16 {self.precision_reason}.")
        allow_new_precision(cfg.mixed_precision)
        self.accelerator = Accelerator(
            cpu=cpu, mixed_precision=cfg.mixed_precision, log_with=trackers,
            project_config=ProjectConfiguration(project_dir=str(self.run_dir), logging_dir=str(self.run_dir / "tensorboard")),
        )
        acc = self.accelerator
        self.world, self.rank = acc.num_processes, acc.process_index
        acc.wait_for_everyone()  # every process has checked the run directory before the main one writes to it
        stop_when_launcher_dies()
        self._created_dir = first_missing(self.run_dir) if acc.is_main_process else None
        self._log_file = self._lock = None
        self._holds_dir = False  # this process locked the run directory (main process only)
        try:
            self._setup(resume, trackers)
        except BaseException:
            self.close(failed=True)
            raise

    def _setup(self, resume: bool, trackers) -> None:
        """Each step builds one thing. The config is resolved once its data is loaded (`resolution.resolve`), before
        anything is built from it, and read only from then on."""
        self._open_run_dir()
        self._load_data(resume)
        model = self._build_model()
        self.teacher, self.ensemble = stability_targets(self.cfg, model, len(self.steps.labels))
        optimizer = make_optimizer(self.cfg, model)
        self._build_eval_loaders()
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        latest = self._restore(resume)
        self._start_records(trackers)
        log_start(self, latest)

    def _open_run_dir(self) -> None:
        acc = self.accelerator
        if acc.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._lock = lock_run(self.run_dir)
            self._holds_dir = True
            clean_partial_checkpoints(self.run_dir)
            self._log_file = logs.attach_file(self.run_dir)
        acc.wait_for_everyone()

    def _load_data(self, resume: bool) -> None:
        """The data, the split (saved with the run and reused on resume), the batches of every step, and the config
        resolved from them."""
        cfg = self.cfg
        self.data = load_data(cfg.data)
        skipped = self.data.meta.get("skipped_images")
        if skipped and self.accelerator.is_main_process:  # --skip-bad-images: which files this run trains without
            atomic_write_text(self.run_dir / "skipped_images.txt", "".join(f"{p}\t{why}\n" for p, why in skipped))
            logger.warning(f"  skipped {len(skipped)} unreadable image file(s) (--skip-bad-images); listed in "
                           f"{self.run_dir / 'skipped_images.txt'}")
        split_path = self.run_dir / "labels.json"
        if resume and split_path.exists():
            self.split = Split.load(split_path)
        elif cfg.data.fold is not None:  # STL-10's predefined labeled folds
            self.split = fold_split(self.data.meta.get("folds"), cfg.data.fold, len(self.data.train_y),
                                    cfg.data.labels_seed, cfg.data.val_size)
            if cfg.data.num_labels != len(self.split.labeled):
                raise DataError(f"data.num_labels={cfg.data.num_labels} but fold {cfg.data.fold} holds "
                                f"{len(self.split.labeled)} labeled images: set data.num_labels={len(self.split.labeled)}.")
        else:
            self.split = make_split(self.data.train_y, resolution.num_classes(cfg, self.data), cfg.data.num_labels,
                                    cfg.data.labels_seed, cfg.data.val_size)
        self.steps = step_batches(self.data, self.split, cfg.data, cfg.seed, cfg.loss.stability == "mean_teacher",
                                  self.rank, self.world)
        self.cfg = resolution.resolve(cfg, self.data, len(self.steps.batches.unlabeled), resume)
        self.workers = (cfg.data.num_workers if cfg.data.num_workers is not None
                        else default_workers(self.data.in_memory, self.world))

    def _build_model(self) -> nn.Module:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        model = build_from_config(cfg.model, pretrained=cfg.model.pretrained, checkpoint_path=cfg.model.checkpoint_path)
        check_data_fits_model(cfg, self.data)  # any image size: the decoders follow the sizes of each pass
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        model = model.to(memory_format=self.memory_format)
        if cfg.model.sync_bn:  # before the teacher copies the backbone: both share statistics across processes
            model = sync_batchnorm(model)
        return model

    def _build_eval_loaders(self) -> None:
        """The test split (never for `hybridwrap tune`'s trials) and the validation hold-out."""
        cfg, acc = self.cfg, self.accelerator
        self.eval_loader = self.val_loader = None
        if cfg.evaluate_test:
            self.eval_loader = acc.prepare(eval_loader(self.data.test_x, self.data.test_y, cfg.data.eval_batch_size,
                                                       self.workers))
        if self.split.val:
            idx = torch.tensor(self.split.val)
            self.val_loader = acc.prepare(eval_loader(take(self.data.train_x, idx), self.data.train_y[idx],
                                                      cfg.data.eval_batch_size, self.workers))

    def _restore(self, resume: bool) -> Path | None:
        """The step counter and the stability targets checkpointed with the model; the last checkpoint on resume."""
        acc = self.accelerator
        self.state = TrainState()
        acc.register_for_checkpointing(self.state)
        for extra in (self.teacher, self.ensemble):
            if extra is not None:
                extra.to(acc.device)
                acc.register_for_checkpointing(extra)
        latest = checkpoint_dirs(self.run_dir)[-1] if resume and checkpoint_dirs(self.run_dir) else None
        if latest is not None:
            acc.load_state(str(latest))
        return latest

    def _start_records(self, trackers) -> None:
        """metrics.jsonl kept up to the step resumed at, the resolved config and the split written, the trackers."""
        cfg, acc = self.cfg, self.accelerator
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self._logged = keep_metrics_until(self.metrics_path, self.state.step) if acc.is_main_process else set()
        if acc.is_main_process:
            write_train_config(self.run_dir, cfg)
            if not (self.run_dir / "labels.json").exists():
                self.split.save(self.run_dir / "labels.json")
        if trackers:
            flat = {f"{s}.{k}": v for s, sec in to_dict(cfg).items() if isinstance(sec, dict)
                    for k, v in sec.items() if isinstance(v, (int, float, str, bool))}
            acc.init_trackers("hybridwrap", config=flat)

    # -- pieces of a step ----------------------------------------------------------------------
    def _batches(self, start: int, end: int):
        """This process's share of each step's batch from ``start`` to ``end``, on the device, made by
        DataLoader workers (a pure function of seed and step: see data/loader.py)."""
        self.steps.start, self.steps.end = start, end
        dev, fmt = self.accelerator.device, self.memory_format
        batches = iter(step_loader(self.steps, self.workers))
        for step in range(start, end):
            b = next(batches)
            if b.step != step:  # the loader's order is what makes resume exact: never train on another step
                raise TrainingError(f"The data loader gave step {b.step}'s batch at step {step}. Set data.num_workers=0 "
                                    "and report this.")
            x = self.normalize(b.images.to(dev)).contiguous(memory_format=fmt)
            x_teacher = (self.normalize(b.teacher_images.to(dev)).contiguous(memory_format=fmt)
                         if b.teacher_images is not None else None)
            yield b.index.to(dev), x, b.labels.to(dev), x_teacher

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        return aug.normalize(x_uint8, self.cfg.model.mean, self.cfg.model.std)

    def _check_replicas(self) -> None:
        """Every process must hold the same weights (DDP keeps them in sync; this proves it)."""
        model = self.accelerator.unwrap_model(self.model)
        checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).to(self.accelerator.device)
        gathered = self.accelerator.gather(checksum.unsqueeze(0))
        if not torch.equal(gathered.min(0).values, gathered.max(0).values):
            raise TrainingError(f"Step {self.state.step}: the {self.world} processes hold different weights. "
                                "Report this with your accelerate config; DDP should keep replicas identical.")

    def _terms(self, out, x, labels, idx, x_teacher):
        z = z_mask = None
        if self.teacher is not None:
            self.teacher.model.train(True)
            with self.accelerator.autocast():
                z = self.teacher.targets(x_teacher)
        elif self.ensemble is not None:
            z, z_mask = self.ensemble.targets(idx)
        return losses.objective_terms(out, x, labels, self.cfg.loss, z, z_mask)

    def _after_step(self, step: int, out, idx) -> None:
        if self.teacher is not None:
            self.teacher.update(self.accelerator.unwrap_model(self.model).backbone, step + 1)
        if self.ensemble is not None:
            probs = torch.softmax(out.logits.detach().float(), 1)
            all_idx, all_probs = self.accelerator.gather((idx, probs))
            self.ensemble.update(all_idx, all_probs)

    def _schedule(self, step: int) -> float:
        """Set this step's learning rate (and Adam β1, for Temporal Ensembling's ramp-down); return the lr."""
        lr, beta1 = optimizer_schedule(self.cfg, step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
            if "betas" in group:
                group["betas"] = (beta1, group["betas"][1])
        return lr

    def _check_finite(self, step: int, terms: dict, loss: torch.Tensor) -> dict[str, torch.Tensor]:
        """The detached terms; a non-finite one stops training and keeps the last good checkpoint."""
        values = {k: v.detach().float() for k, v in terms.items()}
        bad = [k for k, v in values.items() if not torch.isfinite(v)]
        if bad or not torch.isfinite(loss.detach()):
            kept = checkpoint_dirs(self.run_dir)
            raise TrainingError(
                f"Non-finite loss at step {step}: term(s) {bad or ['total']} = "
                f"{[float(values[k]) for k in bad] if bad else float(loss)}. Training stopped; the last good "
                f"checkpoint ({kept[-1] if kept else 'none yet'}) is kept. Lower optim.lr or the λ of that term, "
                "or enable optim.grad_clip.")
        return values

    def _log_train(self, values: dict, loss: torch.Tensor, lr: float, weights: dict, out, x: torch.Tensor) -> None:
        """The step's loss terms, total, learning rate, λ and branch statistics, to metrics.jsonl and trackers."""
        self._log("train", {**{f"loss/{k}": float(v) for k, v in values.items()}, "loss/total": float(loss.detach()),
                            "lr": lr, **{f"lambda/{k}": w for k, w in weights.items()},
                            **{f"branch/{k}": v for k, v in branch_statistics(out, x).items()}})

    def _step(self, idx, x, labels, x_teacher):
        """One optimiser step on this step's batch: forward, the terms of Eq. 2, backward, update, targets."""
        cfg, acc, step = self.cfg, self.accelerator, self.state.step
        torch.manual_seed(cfg.seed * 1_000_003 + step * 31 + self.rank)  # dropout/noise: a function of the step
        lr = self._schedule(step)
        weights = losses.loss_weights(cfg.loss, step, cfg.max_steps)
        with acc.autocast():
            out = self.model(x)
        terms = self._terms(out, x, labels, idx, x_teacher)
        loss = losses.total_loss(terms, weights)
        values = self._check_finite(step, terms, loss)
        self.optimizer.zero_grad(set_to_none=True)
        acc.backward(loss)
        if cfg.optim.grad_clip:
            acc.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
        self.optimizer.step()
        self._after_step(step, out, idx)
        self.state.step = step + 1
        return values, loss, lr, weights, out

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, stop_at: int | None = None, report=None) -> dict:
        """Train to ``max_steps`` (or pause at ``stop_at`` with a checkpoint: the schedule stays that of
        the whole run, so resuming later is the uninterrupted run) and return the final metrics. ``report``, if
        given, receives the run's time estimate (`estimate.RunPace`) when it is measured."""
        cfg, acc = self.cfg, self.accelerator
        end = min(cfg.max_steps, stop_at) if stop_at else cfg.max_steps
        t0, seconds_before = time.time(), self.state.seconds
        pace = Pace(self, end, logger.info, report)
        self.model.train()
        # a context: the bar's line is ended also on Ctrl-C, so the message after it starts a line of its own
        with tqdm(total=cfg.max_steps, initial=self.state.step, desc=f"{cfg.preset}", dynamic_ncols=True,
                  disable=not (acc.is_local_main_process and cfg.progress_bar)) as bar:
            for idx, x, labels, x_teacher in self._batches(self.state.step, end):
                values, loss, lr, weights, out = self._step(idx, x, labels, x_teacher)
                bar.update(1)
                step = self.state.step
                pace.tick(step)
                if cfg.check_replicas_every and step % cfg.check_replicas_every == 0:
                    self._check_replicas()
                if step % cfg.log_every == 0 or step == cfg.max_steps:
                    self._log_train(values, loss, lr, weights, out, x)
                    bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
                if step % cfg.eval_every == 0 and step < end:
                    self._log("eval", self.evaluate())
                    self.model.train()
                if step % cfg.checkpoint_every == 0 or step in (cfg.max_steps, end):
                    self.state.seconds = seconds_before + time.time() - t0
                    self.save_checkpoint()
        if end < cfg.max_steps:  # paused: scores so far, no final model
            paused = self.evaluate()
            self._log("eval", paused)
            return {"steps": self.state.step, **paused}
        final = self.evaluate()
        self._log("eval", final)
        result = self._finish(final, seconds_before + time.time() - t0, session=time.time() - t0)
        acc.end_training()
        return result

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self) -> dict:
        return evaluate(self)

    # -- files ---------------------------------------------------------------------------------
    def _log(self, split: str, values: dict) -> None:
        acc = self.accelerator
        if (self.state.step, split) in self._logged:  # a run resumed at its end evaluates its last step again
            return
        self._logged.add((self.state.step, split))
        numeric = {f"{split}/{k}": v for k, v in values.items() if isinstance(v, (int, float))}
        acc.log(numeric, step=self.state.step)
        if acc.is_main_process:
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps({"step": self.state.step, "split": split, **values}) + "\n")
        where = f"step {self.state.step}/{self.cfg.max_steps}"
        if split == "eval":
            logger.info(f"{where}: {describe_scores(values)}")
        else:
            terms = " ".join(f"{k[len('loss/'):]}={v:.4f}" for k, v in values.items() if k.startswith("loss/"))
            logger.debug(f"{where}: {terms} lr={values.get('lr', 0):.2e}")

    def close(self, failed: bool = False) -> None:
        """Detach train.log; after a failed start, remove the run directory that start created (nothing in it
        is worth keeping, and re-running the same command must not find a half-made run)."""
        logs.detach(self._log_file)
        self._log_file = None
        if not self._holds_dir:
            return  # not this process's to change: another process's run, or a rank other than the main one
        unlock_run(self.run_dir, self._lock)
        self._lock, self._holds_dir = None, False
        if failed and self._created_dir is not None and not checkpoint_dirs(self.run_dir):
            shutil.rmtree(self._created_dir, ignore_errors=True)

    def save_checkpoint(self) -> Path:
        return save_checkpoint(self.accelerator, self.run_dir, self.state, self.cfg)

    def _finish(self, final: dict, seconds: float, session: float) -> dict:
        acc = self.accelerator
        cfg = self.cfg
        result = {
            "preset": cfg.preset, "dataset": self.data.name, "backbone": cfg.model.backbone,
            "labels": len(self.split.labeled), "labels_seed": cfg.data.labels_seed, "seed": cfg.seed,
            "steps": self.state.step, "seconds": round(seconds, 2), "processes": self.world,
            **({"test_images": len(self.data.test_y)} if self.eval_loader is not None else {}),
            "device": str(acc.device), "precision": cfg.mixed_precision, "threads": torch.get_num_threads(), "unlabeled_pool": self.steps.pool_parts, **final,
        }
        if acc.is_main_process:
            model = acc.unwrap_model(self.model)
            save_model(model, self.run_dir / "model", extra_config={"train": {"preset": cfg.preset,
                                                                              "dataset": self.data.name}},
                       teacher=self.teacher.model if self.teacher is not None else None)
            atomic_write_text(self.run_dir / "metrics.json", json.dumps(result, indent=2))
        acc.wait_for_everyone()
        resumed = f", {session:.0f} s in this session" if session < seconds - 0.5 else ""
        logger.info(f"done: {self.state.step} steps in {seconds:.0f} s{resumed}; {describe_scores(final)}; model "
                    f"saved to {self.run_dir / 'model'}")
        return result
