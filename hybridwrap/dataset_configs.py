"""Which config a ``--dataset`` starts from, and what it changes in it: the dataset policy of ``hybridwrap train``,
``tune`` and ``config``.

Without ``--config``, the quickstart without ``--dataset``; a ``--dataset`` with a shipped config of its own takes
that config; any other ``--dataset`` starts from the digits demo's, with what that dataset needs changed and the
digits' tuned selection dropped.
"""

from __future__ import annotations

from pathlib import Path

from .budget import OWN_DATA_PASSES
from .config import OWN_DATA, TrainConfig, apply_dict, load_config

DATASET_DEFAULTS = {  # what --dataset changes besides the source (on configs/digits.yaml, which is digits-sized)
    "cifar10": {"model": {"in_chans": 3, "input_size": None}, "data": {"image_size": None, "num_labels": 4000}},
    "svhn": {"model": {"in_chans": 3, "input_size": None}, "data": {"image_size": None, "num_labels": 1000}},
    "stl10": {"model": {"in_chans": 3, "input_size": None}, "data": {"image_size": None, "num_labels": 1000}},
    "mnist": {"model": {"in_chans": 1, "input_size": None}, "data": {"image_size": None, "num_labels": 100}},
}
QUICKSTART = "quickstart.yaml"
DATASET_CONFIGS = {"mnist5k": "mnist5k.yaml", "digits": "digits.yaml"}
OTHER_DATASETS = "digits.yaml"
DEMO_DATASETS = ("mnist5k", "digits")  # shipped with the package extras: the next step is the user's own images


# --dataset sources that hold the user's own images: everything the digits demo chose for its 8x8 digits goes
# (width, 1 channel, 12 px, 20 + 40 per batch, 100 labels, its selection line, its 240-step budget); channels,
# classes and size come from the images (or from the backbone's pretrained_cfg with --pretrained), every
# train/<class>/ image is labeled unless data.num_labels says otherwise, one seed, and the budget is the passes over
# the unlabeled pool from which the budget map found HybridNet paying and the labels x budget study found its
# reconstruction adding to Mean Teacher (hybridwrap.budget.OWN_DATA_PASSES), ramps scaled to it
OWN_DATA_DEFAULTS = {"model": {"in_chans": None, "num_classes": None, "input_size": None, "backbone_kwargs": {}},
                     "data": {"image_size": None, "num_labels": None}, "budget_passes": OWN_DATA_PASSES}


def forget_digits_selection(cfg: TrainConfig) -> None:
    """The digits demo's tuned values were chosen on the digits: on another dataset, back to the defaults."""
    fresh = TrainConfig()
    for key in ("seeds", "selected_by", "baseline_overrides", "protocol"):
        setattr(cfg, key, getattr(fresh, key))
    for section, key in (("loss", "lambda_rec"), ("loss", "lambda_rec_inter"), ("loss", "detach_intermediate_targets"),
                         ("loss", "teacher_buffers"), ("data", "unlabeled_includes_labeled"), ("data", "translate"),
                         ("data", "unlabeled_batch_size")):  # 40 fits the digits demo's five minutes; 80 elsewhere
        setattr(getattr(cfg, section), key, getattr(getattr(fresh, section), key))



def has_own_config(dataset: str) -> bool:
    """Whether ``--dataset`` names a dataset with a shipped config of its own (the demos)."""
    return dataset in DATASET_CONFIGS


def dataset_config(dataset: str | None, configs: list[str] | None = None) -> TrainConfig:
    """The config a command with ``--dataset dataset`` and ``--config configs`` starts from.

    Args:
        dataset: the ``--dataset`` given, or None.
        configs: the ``--config`` files given (layered in order), or None for the package's shipped configs.

    Returns:
        The loaded config with the dataset's source and what it changes set (`DATASET_DEFAULTS`, and
        `OWN_DATA_DEFAULTS` for the user's own images without a config).
    """
    shipped = Path(__file__).parent / "configs"  # package data: works installed
    default = shipped / (DATASET_CONFIGS.get(dataset, OTHER_DATASETS) if dataset else QUICKSTART)
    cfg = load_config(configs or [default])
    if dataset and not (dataset in DATASET_CONFIGS and not configs):
        cfg.data.dataset = dataset
        if dataset in DATASET_DEFAULTS:
            apply_dict(cfg, DATASET_DEFAULTS[dataset], source="--dataset")
            forget_digits_selection(cfg)
        elif dataset in OWN_DATA and not configs:
            apply_dict(cfg, OWN_DATA_DEFAULTS, source="--dataset")
            forget_digits_selection(cfg)
    return cfg
