"""The optimiser and its schedule (learning rate and Adam β1) at a step."""

from __future__ import annotations

import torch
import torch.nn as nn

from .. import losses
from ..config import TrainConfig
from ..errors import ConfigError


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


def make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    o = cfg.optim
    params = [p for p in model.parameters() if p.requires_grad]
    if o.optimizer == "adam":
        return torch.optim.Adam(params, lr=o.lr, betas=(o.beta1, 0.999), weight_decay=o.weight_decay)
    if o.optimizer == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay)
    raise ConfigError(f"optim.optimizer must be 'adam' or 'sgd', got {o.optimizer!r}.")
