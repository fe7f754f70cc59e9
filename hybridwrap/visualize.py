"""Fig. 4-style pictures: rows x, x̂_c, x̂_u, x̂ for a few test images (``hybridwrap visualize RUN_DIR``).

All rows share one intensity mapping (the model's normalisation undone, then clipped to [0, 255]), so a
partial reconstruction looks as strong as it really is in the sum x̂ = x̂_c + x̂_u.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from .config import DataConfig
from .data import load_data
from .errors import ConfigError, DataError
from .serialization import load_model, require_finished_run

ROW_NAMES = {"x": "x", "x_hat_c": "x_c", "x_hat_u": "x_u", "x_hat": "x_hat"}


def _to_uint8(t: torch.Tensor, mean, std) -> torch.Tensor:
    """Undo the model's normalisation, (x/255 - mean) / std, with one mapping for every row."""
    shape = (1, -1, 1, 1)
    m, s = torch.as_tensor(mean).view(shape), torch.as_tensor(std).view(shape)
    return ((t.float() * s + m).clamp(0, 1) * 255).round().to(torch.uint8)


@torch.no_grad()
def reconstruction_grid(model, images_uint8: torch.Tensor, path: str | Path, tile: int = 64) -> Path:
    model.eval()
    x = model.normalize(images_uint8)
    out = model(x, reconstruct=True)
    rows = [("x", x)] + [(k, getattr(out, k)) for k in ("x_hat_c", "x_hat_u", "x_hat") if getattr(out, k) is not None]
    if len(rows) == 1:
        raise DataError("This model has no decoder (classification preset): there is no reconstruction to show.")
    n = x.shape[0]
    scale = max(1, tile // max(x.shape[-2:]))
    h, w = x.shape[-2] * scale, x.shape[-1] * scale
    label_w, gap = 48, 2
    canvas = Image.new("RGB", (label_w + n * (w + gap), len(rows) * (h + gap)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (name, t) in enumerate(rows):
        draw.text((4, r * (h + gap) + h // 2 - 5), ROW_NAMES[name], fill="black")
        imgs = _to_uint8(t, model.config.mean, model.config.std)
        for c in range(n):
            arr = imgs[c].permute(1, 2, 0).numpy()
            tile_img = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr[..., :3])
            tile_img = tile_img.resize((w, h), Image.NEAREST)
            canvas.paste(tile_img, (label_w + c * (w + gap), r * (h + gap)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    canvas.save(tmp, format="PNG")
    tmp.replace(path)  # an existing picture is replaced only by a complete new one
    return path


def visualize_run(run_dir: str | Path, output: str | Path | None = None, n: int = 8,
                  data_path: str | None = None) -> Path:
    """Draw the grid for ``n`` evenly spaced test images of a run's own dataset (every class of a grouped test set)."""
    if n < 1:
        raise ConfigError(f"--num must be at least 1 test image, got {n}; nothing was written.")
    run_dir = require_finished_run(run_dir)
    model, _ = load_model(run_dir / "model")
    saved = json.loads((run_dir / "train_config.json").read_text())["data"]
    data_cfg = DataConfig(dataset=saved["dataset"], path=data_path or saved.get("path"),
                          image_size=saved.get("image_size"), max_train_images=1, max_eval_images=n)
    data = load_data(data_cfg)
    return reconstruction_grid(model, data.test_x[:n], output or run_dir / "reconstructions.png")
