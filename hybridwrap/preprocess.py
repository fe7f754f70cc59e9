"""What a trained model expects of an input image, said once for the card, the export and ``predict``.

A model records its channels, input size and normalisation in ``config.json`` (``ModelConfig``): images are
resized to the input size and fed as ``(x / 255 - mean) / std`` per channel. The data config below follows
timm's ``resolve_data_config`` keys, so an exported classifier's ``pretrained_cfg`` says the same thing and
``timm.data.create_transform(**data_config(...))`` rebuilds the transform.
"""

from __future__ import annotations

import glob
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .config import ModelConfig
from .errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def data_config(model_config: ModelConfig) -> dict:
    """timm's data config of the model: input size, interpolation, mean, std, crop (the whole image)."""
    return {"input_size": (model_config.in_chans, *model_config.input_size), "interpolation": "bilinear",
            "mean": tuple(model_config.mean), "std": tuple(model_config.std), "crop_pct": 1.0, "crop_mode": "center"}


def _numbers(values) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def describe(model_config: ModelConfig) -> str:
    """One sentence on the inputs, generated from the model's own record (never from a template's guess)."""
    c, (h, w) = model_config.in_chans, model_config.input_size
    kind = {1: "grayscale", 3: "RGB"}.get(c, f"{c}-channel")
    mean, std = list(model_config.mean), list(model_config.std)
    if all(m == 0.5 for m in mean) and all(s == 0.5 for s in std):
        scaling = "scaled to [-1, 1] ((x / 255 - 0.5) / 0.5 per channel)"
    else:
        scaling = f"normalised per channel as (x / 255 - mean) / std with mean {_numbers(mean)} and std {_numbers(std)}"
    return (f"Inputs are {kind} images of {c}x{h}x{w} (channels x height x width), resized and center-cropped to {h}x{w} (timm's eval transform) and "
            f"{scaling}, as recorded in `config.json` and in the exported `pretrained_cfg`.")


def load_image(path: str | Path, in_chans: int):
    """The image at ``path`` as a PIL image with the model's channels, and what was converted (or None)."""
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            image = im.copy()
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DataError(f"cannot read {path} as an image ({exc.__class__.__name__}: {exc})") from exc
    return to_channels(image, in_chans, mode)


def to_channels(image, in_chans: int, mode: str | None = None):
    """(PIL image in "L" or "RGB" for a 1- or 3-channel model, the conversion made as "RGBA->RGB" or None)."""
    mode = mode or image.mode
    target = {1: "L", 3: "RGB"}.get(in_chans)
    if target is None:
        raise DataError(f"the model takes {in_chans}-channel images; hybridwrap predict reads 1- or 3-channel ones.")
    if mode == target:
        return image, None
    return image.convert(target), f"{mode}->{target}"


def transform(model_config: ModelConfig):
    """PIL image -> normalised float tensor (C, H, W), with timm's eval transform of the model's data config."""
    from timm.data import create_transform

    cfg = data_config(model_config)
    return create_transform(input_size=cfg["input_size"], interpolation=cfg["interpolation"], mean=cfg["mean"],
                            std=cfg["std"], crop_pct=cfg["crop_pct"], crop_mode=cfg["crop_mode"])


def find_images(inputs: list[str]) -> list[Path]:
    """Image files named by ``inputs``: files, folders (recursive) and glob patterns, in the order given."""
    found: list[Path] = []
    for item in inputs:
        matches = sorted(glob.glob(item, recursive=True)) if any(ch in item for ch in "*?[") else [item]
        if not matches:
            raise DataError(f"{item!r} matches no file. Pass image files, folders or glob patterns (quote the "
                            "pattern so that the shell does not expand it).")
        for m in map(Path, matches):
            if m.is_dir():
                found += sorted(p for p in m.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            elif m.exists():
                found.append(m)
            else:
                raise DataError(f"{m} does not exist. Pass image files, folders or glob patterns.")
    if not found:
        raise DataError(f"No image found in {', '.join(inputs)} (looked for {', '.join(IMAGE_EXTENSIONS)}).")
    return found
