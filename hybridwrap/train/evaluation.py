"""Evaluation: accuracy of the student and the teacher, branch statistics, and how scores are printed."""

from __future__ import annotations

import math

import torch

COLLAPSE_SHARE = 0.02  # a branch producing < 2% of x̂'s energy has collapsed (§3.2)


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


def describe_scores(values: dict) -> str:
    """'test 93.40% (teacher 94.10%), validation 92.00% (teacher 92.33%)' from an evaluation's values."""
    parts = []
    for split, name in (("test", "test"), ("val", "validation")):
        if f"{split}_acc" in values:
            teacher = values.get(f"teacher_{split}_acc")
            parts.append(f"{name} {values[f'{split}_acc']:.2f}%" + (f" (teacher {teacher:.2f}%)" if teacher is not None else ""))
    return ", ".join(parts) or "no evaluation split"
