"""Stability targets z of Eq. 7: Mean Teacher and Temporal Ensembling."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F


class MeanTeacher(nn.Module):
    """EMA of the student's E_c and C (Tarvainen & Valpola 2017). The teacher needs no decoder and no E_u.

    After each optimiser step: θ' ← a θ' + (1 - a) θ with a = min(1 - 1/(step + 1), α), so the early
    teacher is the true average of the weights seen so far.

    ``buffers="own"`` (Mean Teacher's ``update_ema_variables`` and the official HybridNet code, which average
    ``named_parameters()`` only and run the teacher in train mode): the BatchNorm statistics are the teacher's
    own, updated by its forward passes. ``buffers="ema"``: floating-point buffers follow the same average as the
    parameters and integer buffers are copied (hybridwrap < 0.3).

    ``start``: weights to start from, a backbone of the student's architecture built apart (Mean Teacher's code and
    the official HybridNet code build their teacher with its own ``create_model(ema=True)``); None: a copy of the
    student. Either way the teacher keeps the student's module types (SyncBatchNorm) and memory format.
    """

    def __init__(self, student_backbone: nn.Module, alpha: float = 0.99, buffers: str = "own",
                 start: nn.Module | None = None):
        super().__init__()
        if buffers not in ("own", "ema"):
            raise ValueError(f"teacher buffers must be 'own' or 'ema', got {buffers!r}")
        self.alpha, self.buffers = alpha, buffers
        self.model = copy.deepcopy(student_backbone)
        if start is not None:
            self.model.load_state_dict(start.state_dict())
        for p in self.model.parameters():
            p.requires_grad_(False)

    def decay(self, step: int) -> float:
        return min(1.0 - 1.0 / (step + 1), self.alpha)

    @torch.no_grad()
    def update(self, student_backbone: nn.Module, step: int) -> None:
        a = self.decay(step)
        if self.buffers == "own":
            student = dict(student_backbone.named_parameters())
            for name, target in self.model.named_parameters():
                target.mul_(a).add_(student[name].detach().to(target.dtype), alpha=1.0 - a)
            return
        teacher_state = self.model.state_dict()
        for name, value in student_backbone.state_dict().items():
            target = teacher_state[name]
            if target.dtype.is_floating_point:
                target.mul_(a).add_(value.detach().to(target.dtype), alpha=1.0 - a)
            else:
                target.copy_(value)

    @torch.no_grad()
    def targets(self, x: torch.Tensor) -> torch.Tensor:
        """z: the teacher's class probabilities (teacher in the student's train/eval mode)."""
        return F.softmax(self.model(x).float(), dim=1)

    def forward(self, x):
        return self.model(x)


class TemporalEnsembling(nn.Module):
    """Per-sample EMA of past predictions (Laine & Aila 2017).

    Z_i ← α Z_i + (1 - α) ŷ_i at each visit of sample i, and the target is the start-up-corrected
    z_i = Z_i / (1 - α^{t_i}) from the t_i previous visits. A sample never seen before has no target.
    """

    def __init__(self, num_samples: int, num_classes: int, alpha: float = 0.6):
        super().__init__()
        self.alpha = alpha
        self.register_buffer("ensemble", torch.zeros(num_samples, num_classes))
        self.register_buffer("visits", torch.zeros(num_samples, dtype=torch.long))

    @torch.no_grad()
    def targets(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        visits = self.visits[indices]
        correction = 1.0 - self.alpha ** visits.clamp(min=1).double()
        z = self.ensemble[indices] / correction.float().unsqueeze(1)
        return z, visits > 0

    @torch.no_grad()
    def update(self, indices: torch.Tensor, probs: torch.Tensor) -> None:
        self.ensemble[indices] = self.alpha * self.ensemble[indices] + (1.0 - self.alpha) * probs.detach().float()
        self.visits[indices] += 1
