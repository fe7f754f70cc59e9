"""``hybridwrap eval``: test accuracy of a saved model's student (E_c + C) and Mean Teacher."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from . import logs
from .config import DataConfig
from .data import augment as aug
from .data import load_data
from .errors import CheckpointError, DataError
from .serialization import CONFIG_NAME, load_model, require_finished_run

logger = logs.get_logger(__name__)


def resolve_model_dir(run_or_repo: str) -> tuple[Path, Path | None]:
    """(model directory, run directory or None) for a run dir, a model dir, or a Hub repo id."""
    p = Path(run_or_repo)
    if (p / "model" / CONFIG_NAME).is_file():
        return p / "model", p
    if (p / CONFIG_NAME).is_file():
        run = p.parent if (p.parent / "train_config.json").is_file() else None
        return p, run
    if p.exists():
        require_finished_run(p)
    if run_or_repo.count("/") == 1 and not run_or_repo.startswith((".", "/")):
        from .hub import download_model  # the Hub client and the card's modules load for a repo id only

        return download_model(run_or_repo), None
    raise CheckpointError(f"{run_or_repo!r} is neither a run directory nor a Hub repo id (namespace/name).")


@torch.no_grad()
def accuracy(net: torch.nn.Module, x_uint8: torch.Tensor, y: torch.Tensor, batch_size: int = 256,
             mean=(0.5,), std=(0.5,)) -> float:
    """Top-1 accuracy (%) of ``net`` on uint8 images normalised with ``mean``/``std`` (the model's own)."""
    net.eval()
    correct = 0
    for i in range(0, len(y), batch_size):
        logits = net(aug.normalize(x_uint8[i:i + batch_size], mean, std))
        correct += int((logits.argmax(1) == y[i:i + batch_size]).sum())
    return 100.0 * correct / max(len(y), 1)


def evaluate_saved(run_or_repo: str, dataset: str | None = None, data_path: str | None = None,
                   batch_size: int = 256, image_size: int | None = None, max_images: int | None = None) -> dict:
    model_dir, run_dir = resolve_model_dir(run_or_repo)
    model, teacher = load_model(model_dir)
    data_cfg = DataConfig()
    if run_dir is not None:
        saved = json.loads((run_dir / "train_config.json").read_text())["data"]
        for key in ("dataset", "path", "image_size", "max_eval_images"):  # the run's own test set
            setattr(data_cfg, key, saved.get(key))
    if dataset:
        data_cfg.dataset, data_cfg.path = dataset, data_path
        data_cfg.image_size = image_size
    elif data_path:
        data_cfg.path = data_path
    if image_size:
        data_cfg.image_size = image_size
    if dataset is None and run_dir is None:
        raise DataError("This model has no run directory to read its dataset from: pass --dataset (and --data-path).")
    if max_images:
        data_cfg.max_eval_images = max_images
    data_cfg.max_train_images = 1  # only the test split is needed
    data = load_data(data_cfg)
    size = tuple(model.layout.input_size)
    if data.channels != model.config.in_chans:
        raise DataError(f"The {data.name} test images have {data.channels} channel(s) but the model takes "
                        f"{model.config.in_chans}: evaluate it on a {model.config.in_chans}-channel dataset (without "
                        "--dataset, a run is evaluated on its own test set).")
    if tuple(data.image_size) != size:  # the model takes any size; other sizes than its own usually cost accuracy
        logger.warning(f"warning: the test images are {data.image_size[0]}x{data.image_size[1]} but the model was "
                       f"trained at {size[0]}x{size[1]}; pass --image-size {size[0]} to evaluate at that size.")
    res = {"dataset": data.name, "test_images": len(data.test_y),
           "test_acc": accuracy(model.backbone, data.test_x, data.test_y, batch_size, model.config.mean,
                                model.config.std)}
    if teacher is not None:
        res["teacher_test_acc"] = accuracy(teacher, data.test_x, data.test_y, batch_size, model.config.mean,
                                           model.config.std)
    return res
