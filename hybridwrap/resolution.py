"""What a run will train, resolved from its config, its data and its model, here and nowhere else.

A config leaves some fields to be resolved: the preset switches the model's branches and the loss terms, a budget
in passes over the unlabeled pool becomes steps (every ramp scaled), and own data gives the channels, the classes,
the image size and the normalisation. These functions fill them in, in place, each once and before anything is
built from them; every later layer only reads the config, and ``train_config.json`` records it resolved.
"""

from __future__ import annotations

from . import budget
from .config import TrainConfig, scaled_to
from .errors import ConfigError
from .presets import PRESETS

# Model fields that a run resolves from the data or the backbone when they are left at None: a run resumed with
# them unset is the same run.
RESOLVED_MODEL_FIELDS = ("input_size", "mean", "std", "decoder", "label_names", "in_chans", "num_classes")


def apply_preset(cfg: TrainConfig) -> TrainConfig:
    """Set ``cfg.model`` branches and ``cfg.loss`` switches from ``cfg.preset`` (in place)."""
    if cfg.preset not in PRESETS:
        raise ConfigError(f"Unknown preset {cfg.preset!r}. Choose one of: {', '.join(PRESETS)}.")
    p = PRESETS[cfg.preset]
    cfg.model.discriminative_decoder = p.decoder_c
    cfg.model.unsupervised_branch = p.branch_u
    cfg.loss.reconstruction = p.reconstruction
    cfg.loss.intermediate = p.intermediate
    cfg.loss.balance = p.balance
    if not p.stability:
        cfg.loss.stability = "none"
    elif cfg.loss.stability == "none":
        cfg.loss.stability = "mean_teacher"
    return cfg


def fill_resolved(cfg: TrainConfig, saved: TrainConfig) -> TrainConfig:
    """``cfg`` with every resolved model field it leaves at None taken from ``saved``, and the budget ``saved``
    resolved from ``budget_passes`` (in place)."""
    for key in RESOLVED_MODEL_FIELDS:
        if getattr(cfg.model, key) is None:
            setattr(cfg.model, key, getattr(saved.model, key))
    if cfg.budget_passes is not None and cfg.budget_passes == saved.budget_passes:
        scaled_to(cfg, saved.max_steps)  # the budget the run resolved from its unlabeled pool, with its ramps
    return cfg


def resolve_budget(cfg: TrainConfig, pool: int | None = None) -> TrainConfig:
    """``cfg.max_steps`` (and every ramp, scaled) from ``cfg.budget_passes`` over an unlabeled pool of ``pool``
    images (default: loaded to count it), in place; nothing when it is None."""
    if cfg.budget_passes is not None:
        pool = budget.pool_size(cfg) if pool is None else pool
        scaled_to(cfg, budget.steps_for_passes(cfg.budget_passes, pool, cfg.data.unlabeled_batch_size))
    return cfg


def before_loading(cfg: TrainConfig) -> None:
    """Pretrained weights without an image size: the size they were made at, which the data is then loaded at."""
    if cfg.model.pretrained and cfg.data.image_size is None:
        from .registry import get_backbone  # here: the registry loads the backbone plugins

        cfg.data.image_size = int(get_backbone(cfg.model.backbone).default_input_size[-1])


def from_data(cfg: TrainConfig, data) -> None:
    """Own data: the channels and the classes are the data's (a loaded `data.LoadedData`), and so are the class
    names where the config has none."""
    if cfg.model.in_chans is None:
        cfg.model.in_chans = data.channels
    if cfg.model.num_classes is None:
        cfg.model.num_classes = len(data.class_names)
    if cfg.model.label_names is None and len(data.class_names) == cfg.model.num_classes:
        cfg.model.label_names = tuple(str(n) for n in data.class_names)


def from_pool(cfg: TrainConfig, data, pool: int, resume: bool) -> None:
    """The budget from the unlabeled pool (a resumed run keeps the budget it resolved: `fill_resolved`), the
    normalisation from the training images when asked for, and the input size the data is trained at."""
    if not resume:
        resolve_budget(cfg, pool)
    if cfg.data.normalize == "dataset" and cfg.model.mean is None:
        import torch

        from .data import augment
        from .data.images import take

        sample = data.train_x  # read on access: 10k evenly spaced images estimate the statistics
        if not data.in_memory and len(sample) > 10_000:
            sample = take(sample, torch.linspace(0, len(sample) - 1, 10_000).round().long())
        cfg.model.mean, cfg.model.std = augment.image_statistics(sample)
    if cfg.model.input_size is None:  # unset: the size it trains at, recorded for eval, summary and export
        cfg.model.input_size = tuple(data.image_size)


def from_model(cfg: TrainConfig, model) -> None:
    """What building the model resolved: input size, normalisation, decoder."""
    cfg.model.input_size = tuple(model.layout.input_size)
    cfg.model.mean, cfg.model.std = model.config.mean, model.config.std
    cfg.model.decoder = model.config.decoder
