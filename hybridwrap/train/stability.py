"""The stability target of a run (Eq. 7): a Mean Teacher, from a copy of the student or its own initialisation,
or Temporal Ensembling."""

from __future__ import annotations

import copy

import torch

from ..config import TrainConfig
from ..builder import build_from_config
from ..model import HybridNet
from ..teachers import MeanTeacher, TemporalEnsembling

# the teacher's own initialisation draws from seed + this, so that it differs from the student's and never moves
# the student's draws (the generator is forked)
TEACHER_SEED_OFFSET = 1_000_003


def stability_targets(cfg: TrainConfig, model: HybridNet, num_samples: int):
    """(teacher, ensemble) for ``cfg.loss.stability``: at most one of them is not None."""
    if cfg.loss.stability == "temporal_ensembling":
        return None, TemporalEnsembling(num_samples, cfg.model.num_classes, cfg.loss.te_alpha)
    if cfg.loss.stability != "mean_teacher":
        return None, None
    start = None
    if cfg.loss.teacher_init == "own":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed + TEACHER_SEED_OFFSET)
            # pretrained weights, where the student has them, are the teacher's too (as create_model(ema=True))
            start = build_from_config(copy.deepcopy(cfg.model), pretrained=cfg.model.pretrained,
                                      checkpoint_path=cfg.model.checkpoint_path).backbone
    return MeanTeacher(model.backbone, cfg.loss.ema_decay, cfg.loss.teacher_buffers, start=start), None
