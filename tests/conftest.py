import os
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
SHARED_CIFAR = REPO.parent / "shared" / "data" / "cifar10.npz"

TINY = {
    "preset": "full",
    "max_steps": 4,
    "eval_every": 2,
    "log_every": 2,
    "checkpoint_every": 2,
    "keep_checkpoints": 2,
    "progress_bar": False,
    "model": {"backbone": "convlarge", "in_chans": 1, "input_size": [16, 16],
              "backbone_kwargs": {"width": 0.125}},
    "data": {"dataset": "digits", "image_size": 16, "num_labels": 20, "labeled_batch_size": 4,
             "unlabeled_batch_size": 8, "max_eval_images": 40},
    "loss": {"stability_rampup_steps": 2},
}


def write_config(path: Path, **changes) -> Path:
    cfg = yaml.safe_load(yaml.safe_dump(TINY))
    for key, value in changes.items():
        if isinstance(value, dict):
            cfg.setdefault(key, {}).update(value)
        else:
            cfg[key] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def tiny_config(tmp_path):
    return lambda **changes: write_config(tmp_path / f"cfg{len(list(tmp_path.glob('cfg*')))}.yaml", **changes)


def cli(*args: str) -> list[str]:
    """The installed console script, run with this interpreter."""
    return [sys.executable, "-m", "hybridwrap.cli", *args]
