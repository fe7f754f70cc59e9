"""Checks of a config against the world (processes, data) before anything is written."""

from __future__ import annotations

import copy
import dataclasses

import torch

from .. import logs, resolution
from ..builder import check_backbone_kwargs
from ..config import TrainConfig
from ..data import augment as aug
from ..data import load_data
from ..data.semisup import make_split
from ..errors import ConfigError, DataError
from ..losses import BALANCE_RULES
from ..registry import get_backbone


def check_data_fits_model(cfg: TrainConfig, data) -> None:
    if data.channels != cfg.model.in_chans:
        raise DataError(f"The {data.name} images have {data.channels} channel(s) but model.in_chans="
                        f"{cfg.model.in_chans}. Set model.in_chans={data.channels}.")
    checked = [("training", data.train_y)] + ([("test", data.test_y)] if cfg.evaluate_test else [])
    for name, y in checked:
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= cfg.model.num_classes):
            raise DataError(f"{name} labels span {int(y.min())}..{int(y.max())}, outside 0..{cfg.model.num_classes - 1}. "
                            f"Set model.num_classes={int(y.max()) + 1}.")


def note_image_files(data) -> None:
    """What the pass over the image files found besides unreadable ones (those stop the command in load_data): a
    sample of a very large set, and files of several modes, with what every image is read as."""
    report = data.meta.get("file_check")
    if not report:
        return
    logger = logs.get_logger("hybridwrap.train")
    if report["checked"] < report["total"]:
        logger.info(f"  checked {report['checked']} of {report['total']} image files (evenly spaced) before training; "
                    "the others are checked as they are read")
    if len(report["modes"]) > 1:
        counts = ", ".join(f"{n} {mode}" for mode, n in sorted(report["modes"].items()))
        mode = data.train_x.reader.mode
        logger.info(f"  note: the image files mix modes ({counts}); every image is read as "
                    f"{ {'RGB': 'RGB (3 channels)', 'L': 'grayscale (1 channel)'}.get(mode, mode)}")


def check_runs_data(configs: list[TrainConfig]) -> None:
    """Load the data the runs read once and check each run against it (channels, classes, its labeled subset and
    validation hold-out), before any run starts: a data mistake is one line, not one per run."""
    loaded: dict[str, object] = {}
    for cfg in configs:
        key = repr(dataclasses.replace(cfg.data, labels_seed=0))  # the seeds of a command read the same images
        if key not in loaded:
            loaded[key] = load_data(cfg.data)
            note_image_files(loaded[key])
        data = loaded[key]
        checked = copy.deepcopy(cfg)
        resolution.from_data(checked, data)  # own data: channels and classes are the data's
        check_data_fits_model(checked, data)
        if checked.data.fold is None:
            make_split(data.train_y, checked.model.num_classes, checked.data.num_labels, checked.data.labels_seed,
                       checked.data.val_size)


def validate(cfg: TrainConfig, world: int, accelerator: bool | None = None) -> None:
    """``accelerator``: whether the processes run on GPUs (default: whether torch sees CUDA)."""
    d = cfg.data
    get_backbone(cfg.model.backbone)  # an unknown name stops here, with its closest names, before any run starts
    check_backbone_kwargs(cfg.model)
    if cfg.model.sync_bn:
        on_gpu = torch.cuda.is_available() if accelerator is None else accelerator
        if not on_gpu or world < 2:
            why = "the processes run on CPU" if not on_gpu else "this is a single process"
            raise ConfigError(f"model.sync_bn (--sync-bn) shares BatchNorm statistics between processes on GPUs "
                              f"(torch's SyncBatchNorm), but {why}: drop --sync-bn, or launch several GPU processes "
                              "(accelerate launch --multi_gpu --num_processes N).")
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
    if cfg.loss.teacher_init not in ("student", "own"):
        raise ConfigError(f"loss.teacher_init must be 'student' (a copy of the student) or 'own' (its own initialisation, "
                          f"as Mean Teacher's and the official code), got {cfg.loss.teacher_init!r}.")
    if cfg.loss.ce_average not in ("labeled", "batch"):
        raise ConfigError(f"loss.ce_average must be 'labeled' (paper) or 'batch' (official code), got {cfg.loss.ce_average!r}.")
    if cfg.loss.balance_rule not in BALANCE_RULES:
        raise ConfigError(f"loss.balance_rule must be 'paper' (Eq. 6 as written) or 'official_code' (the official step "
                          f"as it ran), got {cfg.loss.balance_rule!r}.")
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
    if cfg.budget_passes is not None and not cfg.budget_passes > 0:
        raise ConfigError(f"budget_passes must be > 0 (passes over the unlabeled pool), or null to train max_steps "
                          f"steps; got {cfg.budget_passes}.")
    if cfg.budget_passes is not None and d.streaming:
        raise ConfigError("budget_passes counts passes over the unlabeled pool, which a stream (data.streaming) has no "
                          "size for: set max_steps (--max-steps N) and budget_passes=null.")
    logs.check_level(cfg.log_level)
