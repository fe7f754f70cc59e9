"""Batch augmentation on uint8 tensors, driven by an explicit generator (reproducible per step).

Per dataset (§4 and the Mean Teacher / Temporal Ensembling protocols): CIFAR-10 and STL-10 random
translation (reflect padding) + horizontal flip; SVHN translation only (flipping digits changes them).
The shift is 1/8 of the image side unless set: 4 px at 32 px as in Mean Teacher's ResNet protocol and
the official HybridNet code, 12 px at 96 px (STL-10), 2 px for the 16 px digits. Images of 128 px or more
(224 px for ImageNet / Places365 backbones) get timm's ImageNet training recipe instead: a random-resized
crop (scale 0.08-1, aspect 3/4-4/3) back to the same size, and a horizontal flip.
ConvLarge's Gaussian input noise (σ = 0.15) is part of the network itself (training mode only), so
it is not added here.

Normalisation is per channel, (x/255 - mean) / std, with the mean/std the model records in its config
(from the backbone's ``pretrained_cfg`` or the training images' statistics: see ``image_statistics``).
"""

from __future__ import annotations

from collections.abc import Sequence

import math

import torch
import torch.nn.functional as F

# digits are not flip-invariant (a mirrored 2 is no digit): translation only
AUTO = {"cifar10": "translate_flip", "stl10": "translate_flip", "svhn": "translate", "digits": "translate",
        "mnist5k": "translate", "mnist": "translate"}
MODES = ("translate_flip", "translate", "crop_flip", "none")
NORMALIZE_MODES = ("backbone", "dataset")
CROP_FROM = 128  # image side from which "auto" means the ImageNet recipe (random-resized crop + flip)
CROP_SCALE, CROP_RATIO = (0.08, 1.0), (3 / 4, 4 / 3)  # timm's / torchvision's RandomResizedCrop defaults


def resolve(augment: str, dataset: str, image_size: Sequence[int] | None = None) -> str:
    if augment == "auto":
        if image_size is not None and min(image_size) >= CROP_FROM:
            return "crop_flip"
        return AUTO.get(dataset, "translate_flip")
    if augment not in MODES:
        raise ValueError(f"data.augment must be auto, {', '.join(MODES)}; got {augment!r}")
    return augment


def translation(translate: int | None, image_size: Sequence[int]) -> int:
    """Max shift in pixels: ``translate`` if set, else 1/8 of the shorter image side (at least 1)."""
    if translate is not None:
        if translate < 0:
            raise ValueError(f"data.translate must be >= 0 pixels, got {translate}")
        return translate
    return max(1, min(image_size) // 8)


def normalize(x_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(x/255 - mean) / std per channel; ``mean``/``std`` hold one value per channel."""
    shape = (1, -1, 1, 1)
    m = torch.as_tensor(mean, dtype=torch.float32, device=x_uint8.device).view(shape)
    s = torch.as_tensor(std, dtype=torch.float32, device=x_uint8.device).view(shape)
    return (x_uint8.float() / 255.0 - m) / s


def image_statistics(x_uint8: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, C, H, W) in [0, 1], computed in chunks."""
    total = torch.zeros(x_uint8.shape[1], dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    count = 0
    for i in range(0, len(x_uint8), chunk):
        part = x_uint8[i:i + chunk].double() / 255.0
        total += part.sum((0, 2, 3))
        total_sq += part.pow(2).sum((0, 2, 3))
        count += part.shape[0] * part.shape[2] * part.shape[3]
    mean = total / max(count, 1)
    std = (total_sq / max(count, 1) - mean.pow(2)).clamp(min=1e-12).sqrt()
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std.clamp(min=1e-3))


def _crop_box(h: int, w: int, generator: torch.Generator) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random-resized crop, as torchvision draws it (10 tries, then centre)."""
    area = h * w
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(10):
        u = torch.rand(4, generator=generator, dtype=torch.float64).tolist()
        target = area * (CROP_SCALE[0] + u[0] * (CROP_SCALE[1] - CROP_SCALE[0]))
        ratio = math.exp(log_ratio[0] + u[1] * (log_ratio[1] - log_ratio[0]))
        cw, ch = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            return int(u[2] * (h - ch + 1)), int(u[3] * (w - cw + 1)), ch, cw
    ratio = w / h  # fallback: the largest centred crop within the ratio range
    if ratio < CROP_RATIO[0]:
        cw, ch = w, round(w / CROP_RATIO[0])
    elif ratio > CROP_RATIO[1]:
        ch, cw = h, round(h * CROP_RATIO[1])
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def random_resized_crop(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image cropped at random (scale 0.08-1 of its area, aspect 3/4-4/3) and resized back to its size."""
    n, _, h, w = x.shape
    out = torch.empty_like(x)
    for i in range(n):
        top, left, ch, cw = _crop_box(h, w, generator)
        crop = x[i:i + 1, :, top:top + ch, left:left + cw].float()
        out[i] = F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False,
                               antialias=True).round().clamp(0, 255).to(x.dtype)[0]
    return out


def augment(x: torch.Tensor, mode: str, translate: int, generator: torch.Generator) -> torch.Tensor:
    """Random per-image translation by up to ``translate`` pixels (reflect) and horizontal flip, or a
    random-resized crop and flip (``crop_flip``)."""
    if mode == "none":
        return x
    if mode == "crop_flip":
        x = random_resized_crop(x, generator)
        flip = torch.rand(len(x), generator=generator) < 0.5
        return torch.where(flip[:, None, None, None], x.flip(-1), x)
    n, _, h, w = x.shape
    if translate > 0:
        padded = F.pad(x.float(), (translate,) * 4, mode="reflect").to(x.dtype)
        shifts = torch.randint(0, 2 * translate + 1, (n, 2), generator=generator)
        x = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(shifts.tolist())])
    if mode == "translate_flip":
        flip = torch.rand(n, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x
