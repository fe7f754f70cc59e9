"""What a run will train, resolved from its config, its data and its backbone, here and nowhere else.

A config leaves some fields to be resolved: the preset switches the model's branches and the loss terms,
``mixed_precision: auto`` becomes the precision this machine trains in, a budget in passes over the unlabeled pool
becomes steps (every ramp scaled), own data gives the channels, the classes and the image size, and the backbone
its decoder family and the normalisation its weights expect. A run resolves its config in two steps:
`before_data` (what loading the data needs) and `resolve` (everything else, once the data is loaded), which
returns it frozen (`config.freeze`): every later layer only reads it, and ``train_config.json`` records it
resolved.
"""

from __future__ import annotations

import torch

from . import budget, hardware
from .builder import backbone_defaults
from .config import TrainConfig, freeze, replaced, scaled_to
from .data import augment, load_data
from .data.images import take
from .data.loader import step_batches
from .data.semisup import make_split
from .errors import ConfigError
from .presets import PRESETS
from .registry import get_backbone

PRECISIONS = ("auto", "no", "bf16", "fp16")
# Model fields that a run resolves from the data or the backbone when they are left at None: a run resumed with
# them unset is the same run.
RESOLVED_MODEL_FIELDS = ("input_size", "mean", "std", "decoder", "label_names", "in_chans", "num_classes")


def before_data(cfg: TrainConfig, cuda: bool | None = None) -> tuple[TrainConfig, str]:
    """A writable copy of ``cfg`` with what loading its data needs resolved: the preset's branches and loss terms
    (`apply_preset`), the precision to train in on this machine (on CUDA when ``cuda``, default: where CUDA is
    available) and the image size of pretrained weights (`before_loading`). ``cfg`` is left as it is.

    Returns:
        The copy, and why it trains in its precision (e.g. "auto: this CPU computes bf16 natively (...)").
    """
    cfg = apply_preset(replaced(cfg, {}))
    why = resolve_precision(cfg, cuda)
    before_loading(cfg)
    return cfg, why


def resolve(cfg: TrainConfig, data, pool: int, resume: bool = False) -> TrainConfig:
    """``cfg`` (from `before_data`) resolved from its loaded ``data`` (a `data.LoadedData`) and an unlabeled pool of
    ``pool`` images: channels, classes and class names (`from_data`), the budget, the normalisation and the input
    size (`from_pool`), the decoder family and the backbone's normalisation (`builder.backbone_defaults`). Returns
    it frozen: what the run trains, read only from here on."""
    from_data(cfg, data)
    from_pool(cfg, data, pool, resume)
    cfg.model = backbone_defaults(cfg.model)
    return freeze(cfg)


def num_classes(cfg: TrainConfig, data) -> int:
    """The classes a run of ``cfg`` trains: the config's, or else the data's."""
    return cfg.model.num_classes if cfg.model.num_classes is not None else len(data.class_names)


def pool_size(cfg: TrainConfig, data=None) -> int:
    """The images in the unlabeled pool a run of ``cfg`` draws from, as the trainer builds it, from its loaded
    ``data`` (loaded here when not given: for callers that need the budget before a run, such as ``hybridwrap tune``).
    The labeled images count too where ``data.unlabeled_includes_labeled``; the validation hold-out never does."""
    data = load_data(cfg.data) if data is None else data
    split = make_split(data.train_y, num_classes(cfg, data), cfg.data.num_labels, cfg.data.labels_seed,
                       cfg.data.val_size)
    return len(step_batches(data, split, cfg.data, cfg.seed, False).batches.unlabeled)


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


def resolve_precision(cfg: TrainConfig, cuda: bool | None = None) -> str:
    """``cfg.mixed_precision`` as this machine trains it, "no" (fp32), "bf16" or "fp16" (in place): ``auto`` is
    decided from the hardware the run is on (`hardware.resolve_precision`), never from a number measured on another
    machine; an explicit choice is kept. A resumed run may train in another precision than its start
    (``mixed_precision`` is no part of what a resume must match). Returns why."""
    if cfg.mixed_precision not in PRECISIONS:
        raise ConfigError(f"mixed_precision must be {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}, "
                          f"got {cfg.mixed_precision!r}.")
    cfg.mixed_precision, why = hardware.resolve_precision(cfg.mixed_precision, cuda)
    return why


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
        pool = pool_size(cfg) if pool is None else pool
        scaled_to(cfg, budget.steps_for_passes(cfg.budget_passes, pool, cfg.data.unlabeled_batch_size))
    return cfg


def before_loading(cfg: TrainConfig) -> None:
    """Pretrained weights without an image size: the size they were made at, which the data is then loaded at."""
    if cfg.model.pretrained and cfg.data.image_size is None:
        cfg.data.image_size = int(get_backbone(cfg.model.backbone).default_input_size[-1])


def from_data(cfg: TrainConfig, data) -> None:
    """Own data: the channels and the classes are the data's (a loaded `data.LoadedData`), and so are the class
    names where the config has none."""
    if cfg.model.in_chans is None:
        cfg.model.in_chans = data.channels
    cfg.model.num_classes = num_classes(cfg, data)
    if cfg.model.label_names is None and len(data.class_names) == cfg.model.num_classes:
        cfg.model.label_names = tuple(str(n) for n in data.class_names)


def from_pool(cfg: TrainConfig, data, pool: int, resume: bool) -> None:
    """The budget from the unlabeled pool (a resumed run keeps the budget it resolved: `fill_resolved`), the
    normalisation from the training images when asked for, and the input size the data is trained at."""
    if not resume:
        resolve_budget(cfg, pool)
    if cfg.data.normalize == "dataset" and cfg.model.mean is None:
        sample = data.train_x  # read on access: 10k evenly spaced images estimate the statistics
        if not data.in_memory and len(sample) > 10_000:
            sample = take(sample, torch.linspace(0, len(sample) - 1, 10_000).round().long())
        cfg.model.mean, cfg.model.std = augment.image_statistics(sample)
    if cfg.model.input_size is None:  # unset: the size it trains at, recorded for eval, summary and export
        cfg.model.input_size = tuple(data.image_size)
