"""Semi-supervised HybridNet training with Hugging Face Accelerate.

    hybridwrap train --config configs/quickstart.yaml                 # laptop CPU
    accelerate launch -m hybridwrap.train --config configs/cifar10_convlarge_4000.yaml   # 1..N GPUs

One step: draw n_s labeled + n_u unlabeled images (a pure function of seed and step, so a resumed run
draws what an uninterrupted one would), augment, run the two-branch forward pass, add the terms of
Eq. 2, step the optimiser, update the stability target (Mean Teacher EMA or Temporal Ensembling).
With N processes the global batch is split evenly across them and DDP averages the gradients.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from . import logs, losses
from .config import TrainConfig, apply_overrides, fill_resolved, fingerprint, from_dict, load_config, to_dict
from .data import augment as aug
from .data import load_data
from .data.images import take
from .data.loader import default_workers, eval_loader, step_batches, step_loader
from .data.semisup import Split, fold_split, make_split
from .errors import (CheckpointError, ConfigError, DataError, Interrupted, TrainingError, process_rank,
                     run_user_command)
from .model import build_from_config
from .presets import apply_preset
from .serialization import atomic_write_text, save_model
from .teachers import MeanTeacher, TemporalEnsembling

CHECKPOINTS = "checkpoints"
COLLAPSE_SHARE = 0.02  # a branch producing < 2% of x̂'s energy has collapsed (§3.2)
logger = logs.get_logger(__name__)


@dataclass
class TrainState:
    step: int = 0
    seconds: float = 0.0  # training time of all sessions up to the checkpoint (a resumed run's total)

    def state_dict(self):
        return {"step": self.step, "seconds": self.seconds}

    def load_state_dict(self, state):
        self.step = int(state["step"])
        self.seconds = float(state.get("seconds", 0.0))  # checkpoints of hybridwrap <= 0.2.0 lack it


# ------------------------------------------------------------------------------------ run directory


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a checkpoint is complete once renamed from its .tmp name)."""
    root = run_dir / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-")), key=lambda p: p.name)


def _clean_partial_checkpoints(run_dir: Path) -> None:
    root = run_dir / CHECKPOINTS
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(".tmp-"):
                shutil.rmtree(p, ignore_errors=True)


def _check_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool) -> None:
    saved = run_dir / "train_config.json"
    if not resume:
        if saved.exists() or checkpoint_dirs(run_dir):
            raise ConfigError(f"{run_dir} already holds a run. Pass --resume to continue it, or choose another "
                              "--output-dir: hybridwrap never overwrites a run.")
        return
    if saved.exists():
        old = from_dict(json.loads(saved.read_text()))
        fill_resolved(cfg, old)  # input size, normalisation: resolved from the data, not differences
        if fingerprint(old) != fingerprint(cfg):
            a, b = to_dict(old), to_dict(cfg)
            diffs = [f"{s}.{k}: {a[s][k]!r} -> {b[s][k]!r}" for s in ("model", "data", "loss", "optim")
                     for k in a[s] if a[s][k] != b[s][k]]
            diffs += [f"{k}: {a[k]!r} -> {b[k]!r}" for k in ("preset", "seed") if a[k] != b[k]]
            raise CheckpointError(f"Cannot resume {run_dir}: it was trained with another config ({'; '.join(diffs)}). "
                                  "Resume with the run's own config, or start a new run in another --output-dir.")


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (what a failed start must remove), or None."""
    missing = None
    for p in [path, *path.parents]:
        if p.exists():
            break
        missing = p
    return missing


def _allow_new_precision(mixed_precision: str) -> None:
    """Accelerate keeps one mixed-precision setting per process and refuses another one; a process that trains
    one run after another (a notebook, a benchmark) may change it. Only the precision part of Accelerate's
    state is forgotten: the process group, if any, stays (this is what Accelerate's own tests do)."""
    from accelerate.state import AcceleratorState

    shared = AcceleratorState._shared_state
    if shared and shared.get("_mixed_precision") not in (None, mixed_precision):
        AcceleratorState._reset_state(reset_partial_state=False)


_watching_launcher = False


def _stop_when_launcher_dies() -> None:
    """Under `accelerate launch`, stop this worker when the launcher is killed (kill -9 leaves its workers
    running otherwise, as orphans holding the CPU or GPU). Checked every 2 s by a daemon thread."""
    global _watching_launcher
    if _watching_launcher or "TORCHELASTIC_RUN_ID" not in os.environ:
        return
    import threading

    launcher = os.getppid()

    def watch():
        while True:
            time.sleep(2.0)
            if os.getppid() != launcher:
                if process_rank() == 0:
                    print(f"hybridwrap: error: the launcher (pid {launcher}) is gone; this worker stops too. Continue "
                          "from the last checkpoint with --resume.", file=sys.stderr, flush=True)
                os._exit(1)

    threading.Thread(target=watch, name="hybridwrap-launcher-watch", daemon=True).start()
    _watching_launcher = True


# ------------------------------------------------------------------------------------ helpers


def _check_data_fits_model(cfg: TrainConfig, data) -> None:
    if data.channels != cfg.model.in_chans:
        raise DataError(f"The {data.name} images have {data.channels} channel(s) but model.in_chans="
                        f"{cfg.model.in_chans}. Set model.in_chans={data.channels}.")
    checked = [("training", data.train_y)] + ([("test", data.test_y)] if cfg.evaluate_test else [])
    for name, y in checked:
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= cfg.model.num_classes):
            raise DataError(f"{name} labels span {int(y.min())}..{int(y.max())}, outside 0..{cfg.model.num_classes - 1}. "
                            f"Set model.num_classes={int(y.max()) + 1}.")


def optimizer_schedule(cfg: TrainConfig, step: int) -> tuple[float, float]:
    """(learning rate, Adam β1) at ``step``: sigmoid ramp-up, then the ramp-down of the last N steps.

    Temporal Ensembling's protocol (``lr_rampdown_shape=gaussian``, ``beta1_rampdown=0.5``) anneals β1
    from its value to 0.5 with the same curve as the learning rate.
    """
    o = cfg.optim
    lr, down = o.lr * losses.sigmoid_rampup(step, o.lr_rampup_steps), 1.0
    if o.lr_rampdown_steps > 0:
        start = cfg.max_steps - o.lr_rampdown_steps
        if step >= start:
            curve = {"gaussian": losses.gaussian_rampdown, "linear": losses.linear_rampdown}.get(
                o.lr_rampdown_shape, losses.cosine_rampdown)
            down = curve(step - start, o.lr_rampdown_steps)
    beta1 = o.beta1 if o.beta1_rampdown is None else down * o.beta1 + (1.0 - down) * o.beta1_rampdown
    return lr * down, beta1


def _make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    o = cfg.optim
    params = [p for p in model.parameters() if p.requires_grad]
    if o.optimizer == "adam":
        return torch.optim.Adam(params, lr=o.lr, betas=(o.beta1, 0.999), weight_decay=o.weight_decay)
    if o.optimizer == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay)
    raise ConfigError(f"optim.optimizer must be 'adam' or 'sgd', got {o.optimizer!r}.")


def _validate(cfg: TrainConfig, world: int) -> None:
    d = cfg.data
    for name in ("labeled_batch_size", "unlabeled_batch_size"):
        v = getattr(d, name)
        if v < 1:
            raise DataError(f"data.{name}={v} must be at least 1 (the paper uses 20 labeled + 80 unlabeled).")
        if v % world:
            raise DataError(f"data.{name}={v} must be divisible by the {world} processes (each takes an equal share).")
    if cfg.loss.stability not in ("mean_teacher", "temporal_ensembling", "none"):
        raise ConfigError(f"loss.stability must be mean_teacher, temporal_ensembling or none, got {cfg.loss.stability!r}.")
    if cfg.loss.teacher_buffers not in ("own", "ema"):
        raise ConfigError(f"loss.teacher_buffers must be 'own' (Mean Teacher) or 'ema', got {cfg.loss.teacher_buffers!r}.")
    if cfg.loss.ce_average not in ("labeled", "batch"):
        raise ConfigError(f"loss.ce_average must be 'labeled' (paper) or 'batch' (official code), got {cfg.loss.ce_average!r}.")
    if cfg.loss.norm not in ("mean", "sum"):
        raise ConfigError(f"loss.norm must be 'mean' or 'sum', got {cfg.loss.norm!r}.")
    if d.normalize not in aug.NORMALIZE_MODES:
        raise ConfigError(f"data.normalize must be 'backbone' (the backbone's pretrained_cfg mean/std) or 'dataset' "
                          f"(statistics of the training images), got {d.normalize!r}.")
    if d.translate is not None and d.translate < 0:
        raise ConfigError(f"data.translate must be >= 0 pixels, or null for 1/8 of the image side; got {d.translate}.")
    if d.augment != "auto" and d.augment not in aug.MODES:
        raise ConfigError(f"data.augment must be auto, {', '.join(aug.MODES)}; got {d.augment!r}.")
    if d.num_workers is not None and d.num_workers < 0:
        raise ConfigError(f"data.num_workers must be >= 0 (0: batches made in the training process), or null for "
                          f"automatic; got {d.num_workers}.")
    if d.streaming and d.shuffle_buffer < 1:
        raise ConfigError(f"data.shuffle_buffer must be >= 1 image, got {d.shuffle_buffer}.")
    if d.streaming and cfg.loss.stability == "temporal_ensembling":
        raise ConfigError("Temporal Ensembling keeps one target per unlabeled image, which a stream (data.streaming) "
                          "does not index: use loss.stability=mean_teacher, or unset data.streaming.")
    if cfg.optim.lr_rampdown_shape not in ("cosine", "gaussian", "linear"):
        raise ConfigError(f"optim.lr_rampdown_shape must be 'cosine', 'gaussian' (Temporal Ensembling) or 'linear', got "
                          f"{cfg.optim.lr_rampdown_shape!r}.")
    if cfg.optim.beta1_rampdown is not None and not 0 <= cfg.optim.beta1_rampdown < 1:
        raise ConfigError(f"optim.beta1_rampdown must be in [0, 1) (Temporal Ensembling: 0.5), got "
                          f"{cfg.optim.beta1_rampdown}.")
    if cfg.max_steps < 1:
        raise ConfigError(f"max_steps must be >= 1, got {cfg.max_steps}.")
    logs.check_level(cfg.log_level)
    if cfg.mixed_precision not in ("no", "bf16", "fp16"):
        raise ConfigError(f"mixed_precision must be no, bf16 or fp16, got {cfg.mixed_precision!r}.")


def branch_statistics(out, x: torch.Tensor) -> dict[str, float]:
    """How much each branch contributes to x̂: energy share and PSNR (images in [-1, 1], peak-to-peak 2)."""
    stats = {}
    if out.x_hat is None:
        return stats

    def psnr(y):
        mse = (y.float() - x.float()).pow(2).mean().item()
        return 10 * math.log10(4.0 / max(mse, 1e-12))

    stats["psnr_x_hat"] = psnr(out.x_hat)
    if out.x_hat_u is not None:
        e_c = out.x_hat_c.float().pow(2).sum().item()
        e_u = out.x_hat_u.float().pow(2).sum().item()
        stats["energy_share_c"] = e_c / max(e_c + e_u, 1e-12)
        stats["energy_share_u"] = 1.0 - stats["energy_share_c"]
        stats["psnr_x_hat_c"] = psnr(out.x_hat_c)
        stats["psnr_x_hat_u"] = psnr(out.x_hat_u)
    return stats


def collapsed_branch(energy_share_c: float | None) -> str | None:
    """Which branch has collapsed to ~0 (under COLLAPSE_SHARE of x̂'s energy), if any."""
    if energy_share_c is None or min(energy_share_c, 1 - energy_share_c) >= COLLAPSE_SHARE:
        return None
    return "discriminative (x̂_c)" if energy_share_c < 0.5 else "unsupervised (x̂_u)"


# ------------------------------------------------------------------------------------ training


class Run:
    """Everything one training run holds; ``fit()`` is the loop."""

    def __init__(self, cfg: TrainConfig, resume: bool = False):
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration

        apply_preset(cfg)
        self.cfg = cfg
        self.run_dir = Path(cfg.output_dir)
        # Checks come first and run on every process: each process reaches the same verdict and exits with
        # the same error, instead of one waiting at a barrier for a process that has already stopped.
        _validate(cfg, int(os.environ.get("WORLD_SIZE", "1")))
        _check_run_dir(cfg, self.run_dir, resume)
        trackers = ["tensorboard"] if _has_tensorboard() else None
        # `accelerate launch --multi_gpu` on a machine without GPUs: run the processes on CPU with gloo
        # (Accelerate only does so when told cpu=True).
        cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
        _allow_new_precision(cfg.mixed_precision)
        self.accelerator = Accelerator(
            cpu=cpu, mixed_precision=cfg.mixed_precision, log_with=trackers,
            project_config=ProjectConfiguration(project_dir=str(self.run_dir), logging_dir=str(self.run_dir / "tensorboard")),
        )
        acc = self.accelerator
        self.world, self.rank = acc.num_processes, acc.process_index
        acc.wait_for_everyone()  # every process has checked the run directory before the main one writes to it
        _stop_when_launcher_dies()
        self._created_dir = _first_missing(self.run_dir) if acc.is_main_process else None
        self._log_file = None
        try:
            self._setup(resume, trackers)
        except BaseException:
            self.close(failed=True)
            raise

    def _setup(self, resume: bool, trackers) -> None:
        cfg, acc = self.cfg, self.accelerator
        if acc.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            _clean_partial_checkpoints(self.run_dir)
            self._log_file = logs.attach_file(self.run_dir)
        acc.wait_for_everyone()

        # data and split (the labeled subset is saved with the run and reused on resume)
        self.data = load_data(cfg.data)
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
            self.split = make_split(self.data.train_y, cfg.model.num_classes, cfg.data.num_labels,
                                    cfg.data.labels_seed, cfg.data.val_size)
        self.steps = step_batches(self.data, self.split, cfg.data, cfg.seed, cfg.loss.stability == "mean_teacher",
                                  self.rank, self.world)
        self.workers = (cfg.data.num_workers if cfg.data.num_workers is not None
                        else default_workers(self.data.in_memory, self.world))
        if cfg.data.normalize == "dataset" and cfg.model.mean is None:
            sample = self.data.train_x  # read on access: 10k evenly spaced images estimate the statistics
            if not self.data.in_memory and len(sample) > 10_000:
                sample = take(sample, torch.linspace(0, len(sample) - 1, 10_000).round().long())
            cfg.model.mean, cfg.model.std = aug.image_statistics(sample)

        # model, stability target, optimiser
        if cfg.model.input_size is None:  # unset: the size it trains at, recorded for eval, summary and export
            cfg.model.input_size = tuple(self.data.image_size)
        torch.manual_seed(cfg.seed)
        model = build_from_config(cfg.model)
        _check_data_fits_model(cfg, self.data)  # any image size: the decoders follow the sizes of each pass
        cfg.model.input_size = tuple(model.layout.input_size)
        cfg.model.mean, cfg.model.std = model.config.mean, model.config.std
        cfg.model.decoder = model.config.decoder
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        model = model.to(memory_format=self.memory_format)
        self.teacher = MeanTeacher(model.backbone, cfg.loss.ema_decay, cfg.loss.teacher_buffers) if cfg.loss.stability == "mean_teacher" else None
        self.ensemble = (TemporalEnsembling(len(self.steps.labels), cfg.model.num_classes, cfg.loss.te_alpha)
                         if cfg.loss.stability == "temporal_ensembling" else None)
        optimizer = _make_optimizer(cfg, model)
        test_loader = None
        if cfg.evaluate_test:  # hybridwrap tune's trials never touch the test split
            test_loader = eval_loader(self.data.test_x, self.data.test_y, cfg.data.eval_batch_size, self.workers)
        val_loader = None
        if self.split.val:
            idx = torch.tensor(self.split.val)
            val_loader = acc.prepare(eval_loader(take(self.data.train_x, idx), self.data.train_y[idx],
                                                 cfg.data.eval_batch_size, self.workers))
        self.model, self.optimizer = acc.prepare(model, optimizer)
        self.eval_loader = acc.prepare(test_loader) if test_loader is not None else None
        self.val_loader = val_loader
        self.state = TrainState()
        acc.register_for_checkpointing(self.state)
        for extra in (self.teacher, self.ensemble):
            if extra is not None:
                extra.to(acc.device)
                acc.register_for_checkpointing(extra)

        latest = checkpoint_dirs(self.run_dir)[-1] if resume and checkpoint_dirs(self.run_dir) else None
        if latest is not None:
            acc.load_state(str(latest))
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self._logged = self._keep_metrics_until(self.state.step) if acc.is_main_process else set()
        if acc.is_main_process:
            atomic_write_text(self.run_dir / "train_config.json", json.dumps(to_dict(cfg), indent=2, default=list))
            if not split_path.exists():
                self.split.save(split_path)
        if trackers:
            flat = {f"{s}.{k}": v for s, sec in to_dict(cfg).items() if isinstance(sec, dict)
                    for k, v in sec.items() if isinstance(v, (int, float, str, bool))}
            acc.init_trackers("hybridwrap", config=flat)
        self._log_start(latest)

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
            x = self._normalize(b.images.to(dev)).contiguous(memory_format=fmt)
            x_teacher = (self._normalize(b.teacher_images.to(dev)).contiguous(memory_format=fmt)
                         if b.teacher_images is not None else None)
            yield b.index.to(dev), x, b.labels.to(dev), x_teacher

    def _normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
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

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, stop_at: int | None = None) -> dict:
        """Train to ``max_steps`` (or pause at ``stop_at`` with a checkpoint: the schedule stays that of
        the whole run, so resuming later is the uninterrupted run) and return the final metrics."""
        cfg, acc = self.cfg, self.accelerator
        end = min(cfg.max_steps, stop_at) if stop_at else cfg.max_steps
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.max_steps, initial=self.state.step, disable=not (acc.is_local_main_process and cfg.progress_bar),
                   desc=f"{cfg.preset}", dynamic_ncols=True)
        t0, seconds_before = time.time(), self.state.seconds
        self.model.train()
        last = {}
        for idx, x, labels, x_teacher in self._batches(self.state.step, end):
            step = self.state.step
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
            bar.update(1)
            if cfg.check_replicas_every and self.state.step % cfg.check_replicas_every == 0:
                self._check_replicas()

            if self.state.step % cfg.log_every == 0 or self.state.step == cfg.max_steps:
                last = {f"loss/{k}": float(v) for k, v in values.items()}
                last.update({"loss/total": float(loss.detach()), "lr": lr,
                             **{f"lambda/{k}": w for k, w in weights.items()}})
                last.update({f"branch/{k}": v for k, v in branch_statistics(out, x).items()})
                self._log("train", last)
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
            if self.state.step % cfg.eval_every == 0 and self.state.step < end:
                self._log("eval", self.evaluate())
                self.model.train()
            if self.state.step % cfg.checkpoint_every == 0 or self.state.step in (cfg.max_steps, end):
                self.state.seconds = seconds_before + time.time() - t0
                self.save_checkpoint()
        bar.close()
        if end < cfg.max_steps:  # paused: scores so far, no final model
            paused = self.evaluate()
            self._log("eval", paused)
            return {"steps": self.state.step, **paused}
        final = self.evaluate(final=True)
        self._log("eval", final)
        result = self._finish(final, seconds_before + time.time() - t0, session=time.time() - t0)
        acc.end_training()
        return result

    # -- evaluation ----------------------------------------------------------------------------
    @torch.no_grad()
    def _accuracy(self, net: nn.Module, loader) -> float:
        correct = total = 0
        for x, y in loader:
            with self.accelerator.autocast():
                logits = net(self._normalize(x))
            pred, y = self.accelerator.gather_for_metrics((logits.argmax(1), y))
            correct += int((pred == y).sum())
            total += len(y)
        return 100.0 * correct / max(total, 1)

    @torch.no_grad()
    def evaluate(self, final: bool = False) -> dict:
        model = self.accelerator.unwrap_model(self.model)
        model.eval()
        res = {}
        if self.teacher is not None:
            self.teacher.model.eval()
        if self.eval_loader is not None:
            res["test_acc"] = self._accuracy(model.backbone, self.eval_loader)
            if self.teacher is not None:
                res["teacher_test_acc"] = self._accuracy(self.teacher.model, self.eval_loader)
        if self.val_loader is not None:
            res["val_acc"] = self._accuracy(model.backbone, self.val_loader)
            if self.teacher is not None:
                res["teacher_val_acc"] = self._accuracy(self.teacher.model, self.val_loader)
        if model.decoder_c is not None:
            # branch statistics on 64 test images, or on validation images when the test split is off limits
            images = (self.data.test_x[:64] if self.eval_loader is not None
                      else self.data.train_x[torch.tensor(self.split.val[:64], dtype=torch.long)])
            x = self._normalize(images.to(self.accelerator.device))
            res.update({f"branch/{k}": v for k, v in branch_statistics(model(x, reconstruct=True), x).items()})
            weak = collapsed_branch(res.get("branch/energy_share_c"))
            if weak and self.accelerator.is_main_process:
                share = res["branch/energy_share_c"]
                warnings.warn(f"step {self.state.step}: the {weak} branch produces only "
                              f"{100 * min(share, 1 - share):.1f}% of x̂'s energy: it has collapsed (§3.2). Enable "
                              "loss.balance and loss.intermediate, or raise loss.lambda_rec_inter.", stacklevel=2)
                res["branch/collapsed"] = weak
        return res

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

    def _keep_metrics_until(self, step: int) -> set[tuple[int, str]]:
        """On resume at ``step``, drop the metrics.jsonl lines written after that checkpoint (the resumed run
        writes them again) and return the (step, split) pairs already logged."""
        if not self.metrics_path.is_file():
            return set()
        lines = [(line, json.loads(line)) for line in self.metrics_path.read_text().splitlines() if line.strip()]
        kept = [(line, entry) for line, entry in lines if entry["step"] <= step]
        atomic_write_text(self.metrics_path, "".join(line + "\n" for line, _ in kept))
        return {(entry["step"], entry["split"]) for _, entry in kept}

    def _log_start(self, resumed_from: Path | None) -> None:
        cfg, data, split = self.cfg, self.data, self.split
        model = self.accelerator.unwrap_model(self.model)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        # the pool: every training image outside validation (labeled ones too) and the extra unlabeled ones
        unlabeled = (f"the unlabeled stream of {self.steps.stream.name}" if self.steps.stream is not None
                     else f"{len(self.steps.batches.unlabeled)} in the unlabeled pool")
        reading = (f"{self.workers} loader worker{'s' if self.workers != 1 else ''}" if self.workers
                   else "no loader workers")
        where = "in memory" if data.in_memory else "read from disk on access"
        test = f", {len(data.test_y)} test" if self.eval_loader is not None else ", test split unused"
        start = (f"resumed at step {self.state.step} from {resumed_from}" if resumed_from is not None
                 else "new run")
        logger.info(f"hybridwrap: training {cfg.preset} ({cfg.model.backbone}, {params:.2f} M parameters, "
                    f"{cfg.model.input_size[0]}x{cfg.model.input_size[1]}) on {data.name}")
        if cfg.protocol:
            logger.info(f"  protocol: {cfg.protocol}")
        logger.info(f"  data: {len(split.labeled)} labeled, {unlabeled}, {len(split.val)} validation{test}; "
                    f"batches of {cfg.data.labeled_batch_size} labeled + {cfg.data.unlabeled_batch_size} unlabeled; "
                    f"images {where}, {self.steps.mode} augmentation, {reading}")
        logger.info(f"  {cfg.max_steps} steps on {self.accelerator.device} ({self.world} process"
                    f"{'es' if self.world > 1 else ''}, precision {cfg.mixed_precision}); evaluate every "
                    f"{cfg.eval_every}, checkpoint every {cfg.checkpoint_every}")
        logger.info(f"  run directory {self.run_dir} ({start}); log {self.run_dir / logs.LOG_FILE}")

    def close(self, failed: bool = False) -> None:
        """Detach train.log; after a failed start, remove the run directory that start created (nothing in it
        is worth keeping, and re-running the same command must not find a half-made run)."""
        logs.detach(self._log_file)
        self._log_file = None
        if failed and self._created_dir is not None and not checkpoint_dirs(self.run_dir):
            shutil.rmtree(self._created_dir, ignore_errors=True)

    def save_checkpoint(self) -> Path:
        acc = self.accelerator
        root = self.run_dir / CHECKPOINTS
        final = root / f"step-{self.state.step:08d}"
        tmp = root / f".tmp-step-{self.state.step:08d}"
        if acc.is_main_process:
            root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
        acc.wait_for_everyone()
        acc.save_state(str(tmp))
        acc.wait_for_everyone()
        if acc.is_main_process:
            atomic_write_text(tmp / "train_state.json", json.dumps({"step": self.state.step,
                                                                    "fingerprint": fingerprint(self.cfg)}))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)  # atomic: a checkpoint exists completely or not at all
            for old in checkpoint_dirs(self.run_dir)[: -self.cfg.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()
        logger.info(f"step {self.state.step}/{self.cfg.max_steps}: checkpoint {final}")
        return final

    def _finish(self, final: dict, seconds: float, session: float) -> dict:
        acc = self.accelerator
        cfg = self.cfg
        result = {
            "preset": cfg.preset, "dataset": self.data.name, "backbone": cfg.model.backbone,
            "labels": cfg.data.num_labels, "labels_seed": cfg.data.labels_seed, "seed": cfg.seed,
            "steps": self.state.step, "seconds": round(seconds, 2), "processes": self.world,
            **({"test_images": len(self.data.test_y)} if self.eval_loader is not None else {}),
            "device": str(acc.device), **final,
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


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401

        return True
    except ImportError:
        return False


def describe_scores(values: dict) -> str:
    """'test 93.40% (teacher 94.10%), validation 92.00% (teacher 92.33%)' from an evaluation's values."""
    parts = []
    for split, name in (("test", "test"), ("val", "validation")):
        if f"{split}_acc" in values:
            teacher = values.get(f"teacher_{split}_acc")
            parts.append(f"{name} {values[f'{split}_acc']:.2f}%" + (f" (teacher {teacher:.2f}%)" if teacher is not None else ""))
    return ", ".join(parts) or "no evaluation split"


def train(cfg: TrainConfig, resume: bool = False, stop_at: int | None = None) -> dict:
    """Train one run; returns the final metrics (also written to ``output_dir/metrics.json``)."""
    run = Run(cfg, resume=resume)
    try:
        return run.fit(stop_at=stop_at)
    finally:
        run.close()


def seed_configs(cfg: TrainConfig) -> list[TrainConfig]:
    """One config per seed: seed k also draws labeled subset k. One seed keeps ``output_dir``; several
    get ``output_dir/seed-K``."""
    import copy

    if cfg.seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {cfg.seeds}.")
    out = []
    for k in range(cfg.seeds):
        c = copy.deepcopy(cfg)
        if cfg.seeds > 1:
            c.seed, c.data.labels_seed = cfg.seed + k, cfg.data.labels_seed + k
            c.output_dir = str(Path(cfg.output_dir) / f"seed-{c.seed}")
        out.append(c)
    return out


def baseline_config(cfg: TrainConfig) -> TrainConfig:
    """The labeled-only ``classification`` preset of ``cfg``, with its own ``baseline_overrides``."""
    import copy

    base = copy.deepcopy(cfg)
    base.preset = "classification"
    base.output_dir = str(Path(cfg.output_dir) / "baseline")
    return apply_overrides(base, list(cfg.baseline_overrides))


def train_with_baseline(cfg: TrainConfig, resume: bool = False) -> list[dict]:
    """Train ``cfg`` for each seed, then (``compare_baseline``) the labeled-only baseline for each seed."""
    runs = seed_configs(cfg)
    if cfg.compare_baseline and cfg.preset != "classification":
        runs += seed_configs(baseline_config(cfg))
    return [train(run, resume=resume) for run in runs]


def _mean_std(values: list[float]) -> str:
    import statistics

    if len(values) == 1:
        return f"{values[0]:.2f}%"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}%"


def format_results(results: list[dict], selected_by: str = "") -> str:
    """Student/teacher test accuracy per preset (mean ± std over seeds) and, with a baseline, who wins."""
    import statistics

    groups: dict[str, list[dict]] = {}
    for r in results:
        groups.setdefault(f"{r['preset']} ({r['dataset']})", []).append(r)
    n = max(len(g) for g in groups.values())
    head = "test accuracy" + (f", mean ± std over {n} seeds (seed k trains on labeled subset k)" if n > 1 else "")
    lines = [head, f"{'run':<28} {'student':>17} {'teacher':>17}"]
    for name, g in groups.items():
        teacher = _mean_std([r["teacher_test_acc"] for r in g]) if all("teacher_test_acc" in r for r in g) else "-"
        lines.append(f"{name:<28} {_mean_std([r['test_acc'] for r in g]):>17} {teacher:>17}")
    if selected_by:
        lines.append(f"settings: {selected_by}")
    runs = list(groups.values())
    if len(runs) == 2 and runs[1][0]["preset"] == "classification" and len(runs[0]) == len(runs[1]):
        diffs = [a["test_acc"] - b["test_acc"] for a, b in zip(runs[0], runs[1])]
        mean = statistics.fmean(diffs)
        spread = f" ± {statistics.stdev(diffs):.2f}" if len(diffs) > 1 else ""
        wins = sum(d > 0 for d in diffs)
        who = f"HybridNet ({runs[0][0]['preset']})"
        if mean > 0:
            verdict = f"{who} is ahead of its labeled-only baseline by {mean:.2f}{spread} points"
        else:
            verdict = f"{who} does NOT beat its labeled-only baseline here: {mean:+.2f}{spread} points"
        lines.append(f"{verdict} (student, test set, ahead in {wins} of {len(diffs)} seeds).")
    return "\n".join(lines)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", action="append",
                   help="YAML config (see configs/); repeat to layer overlays such as configs/official_code.yaml; "
                        "defaults to the embedded digits quickstart")
    p.add_argument("--preset", help="Table 1/2 preset, e.g. full, classification_stability, table2_e")
    p.add_argument("--dataset", help="digits | cifar10 | svhn | stl10 | npz | imagefolder | disk")
    p.add_argument("--data-path", help="local file/folder for the dataset (npz, ImageFolder root, save_to_disk dir)")
    p.add_argument("--output-dir", help="run directory (checkpoints, metrics, model)")
    p.add_argument("--max-steps", type=int, help="training steps (batches of labeled + unlabeled images)")
    p.add_argument("--seed", type=int, help="random seed of the first run (weights, batches, labeled subset)")
    p.add_argument("--seeds", type=int, help="train this many seeds (seed, seed+1, ...) and report mean ± std")
    p.add_argument("--resume", action="store_true", help="continue the run in --output-dir from its last checkpoint")
    p.add_argument("--baseline", action="store_true", help="also train the labeled-only classification baseline")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (evaluations are still printed)")
    level = p.add_mutually_exclusive_group()
    level.add_argument("--quiet", action="store_true", help="print only warnings, errors and the results table "
                                                            "(RUN/train.log still gets everything)")
    level.add_argument("--verbose", action="store_true", help="also print the training losses every log_every steps")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override any config field, e.g. --set loss.lambda_rec=0.25 (repeatable)")


DATASET_DEFAULTS = {  # what --dataset changes besides the source (the quickstart is digits-sized)
    "cifar10": {"model": {"in_chans": 3, "input_size": None}, "data": {"image_size": None, "num_labels": 4000}},
    "svhn": {"model": {"in_chans": 3, "input_size": None}, "data": {"image_size": None, "num_labels": 1000}},
    "stl10": {"model": {"in_chans": 3, "input_size": None}, "data": {"image_size": None, "num_labels": 1000}},
}


def _forget_digits_selection(cfg: TrainConfig) -> None:
    """The quickstart's tuned values were chosen on the digits: on another dataset, back to the defaults."""
    fresh = TrainConfig()
    for key in ("seeds", "selected_by", "baseline_overrides", "protocol"):
        setattr(cfg, key, getattr(fresh, key))
    for section, key in (("loss", "lambda_rec"), ("loss", "lambda_rec_inter"), ("loss", "detach_intermediate_targets"),
                         ("loss", "teacher_buffers"), ("data", "unlabeled_includes_labeled"), ("data", "translate")):
        setattr(getattr(cfg, section), key, getattr(getattr(fresh, section), key))


def saved_run_config(run_dir: Path) -> TrainConfig | None:
    """The config a run in ``run_dir`` was started with (its first seed's, for a several-seed run), or None."""
    own = run_dir / "train_config.json"
    if own.is_file():
        return from_dict(json.loads(own.read_text()))
    seeds = sorted(run_dir.glob("seed-*/train_config.json"), key=lambda p: int(p.parent.name[len("seed-"):]))
    if not seeds:
        return None
    cfg = from_dict(json.loads(seeds[0].read_text()))
    cfg.output_dir = str(run_dir)  # seed k of that config writes to run_dir/seed-k again
    return cfg


def config_from_args(args) -> TrainConfig:
    from .config import apply_dict

    if getattr(args, "resume", False) and not args.config and args.output_dir:
        saved = saved_run_config(Path(args.output_dir))  # `--resume --output-dir RUN`: the run's own config
        if saved is not None:
            return load_config_overrides(saved, args)
    default = Path(__file__).parent / "configs" / "quickstart.yaml"  # package data: works installed
    cfg = load_config(args.config or [default])
    if args.dataset:
        cfg.data.dataset = args.dataset
        if args.dataset in DATASET_DEFAULTS:
            apply_dict(cfg, DATASET_DEFAULTS[args.dataset], source="--dataset")
            _forget_digits_selection(cfg)
    cfg = load_config_overrides(cfg, args)
    return cfg


def load_config_overrides(cfg: TrainConfig, args) -> TrainConfig:
    from .config import apply_dict

    simple = {"preset": args.preset, "output_dir": args.output_dir, "max_steps": args.max_steps, "seed": args.seed,
              "seeds": getattr(args, "seeds", None)}
    apply_dict(cfg, {k: v for k, v in simple.items() if v is not None}, source="command line")
    if args.data_path:
        cfg.data.path = args.data_path
    if args.baseline:
        cfg.compare_baseline = True
    if args.no_progress:
        cfg.progress_bar = False
    if getattr(args, "quiet", False) or getattr(args, "verbose", False):
        cfg.log_level = "quiet" if args.quiet else "verbose"
    return apply_overrides(cfg, args.set)


def interrupted(cfg: TrainConfig) -> Interrupted:
    """Ctrl-C: where the last checkpoint is, and the command that continues from it."""
    root = Path(cfg.output_dir)
    found = [p for run in [root, *sorted(root.glob("seed-*")), *sorted(root.glob("baseline/seed-*")), root / "baseline"]
             for p in checkpoint_dirs(run)]
    if not found:
        return Interrupted(f"interrupted before the first checkpoint of {root}: there is nothing to resume; run the "
                           "command again.")
    last = max(found, key=lambda p: p.stat().st_mtime)
    return Interrupted(f"interrupted. The last checkpoint is {last}; continue with: hybridwrap train --resume "
                       f"--output-dir {root}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hybridwrap train", description="Train a HybridNet semi-supervised.")
    add_train_arguments(parser)
    args = parser.parse_args(argv)

    def go():
        cfg = config_from_args(args)
        if process_rank() == 0:  # set by `accelerate launch`: one console, the main process's
            logs.attach_console(cfg.log_level)
        try:
            results = train_with_baseline(cfg, resume=args.resume)
        except KeyboardInterrupt:
            raise interrupted(cfg) from None
        if process_rank() == 0:  # one table, not one per process
            print(format_results(results, cfg.selected_by))
            print(f"run directory: {cfg.output_dir}")
        return 0

    return run_user_command(go)


if __name__ == "__main__":
    sys.exit(main())
