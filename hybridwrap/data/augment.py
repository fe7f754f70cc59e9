"""Batch augmentation on uint8 tensors, driven by an explicit generator (reproducible per step).

Per dataset (§4 and the Mean Teacher / Temporal Ensembling protocols): CIFAR-10 and STL-10 random
translation (reflect padding) + horizontal flip; SVHN translation only (flipping digits changes them).
ConvLarge's Gaussian input noise (σ = 0.15) is part of the network itself (training mode only), so
it is not added here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MEAN, STD = 0.5, 0.5  # images are fed in [-1, 1]

AUTO = {"cifar10": "translate_flip", "stl10": "translate_flip", "svhn": "translate", "digits": "translate"}


def resolve(augment: str, dataset: str) -> str:
    if augment == "auto":
        return AUTO.get(dataset, "translate_flip")
    if augment not in ("translate_flip", "translate", "none"):
        raise ValueError(f"data.augment must be auto, translate_flip, translate or none, got {augment!r}")
    return augment


def normalize(x_uint8: torch.Tensor) -> torch.Tensor:
    return (x_uint8.float() / 255.0 - MEAN) / STD


def augment(x: torch.Tensor, mode: str, translate: int, generator: torch.Generator) -> torch.Tensor:
    """Random per-image translation by up to ``translate`` pixels (reflect) and horizontal flip."""
    if mode == "none":
        return x
    n, _, h, w = x.shape
    if translate > 0:
        padded = F.pad(x.float(), (translate,) * 4, mode="reflect").to(x.dtype)
        shifts = torch.randint(0, 2 * translate + 1, (n, 2), generator=generator)
        x = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(shifts.tolist())])
    if mode == "translate_flip":
        flip = torch.rand(n, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x
