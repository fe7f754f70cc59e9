"""Configs as runs and checkpoints saved them: ``train_config.json`` and a model's ``config.json`` read back, with
what a file written before a field existed meant (loading an old run or checkpoint must rebuild what it was trained
with, not today's default)."""

from __future__ import annotations

from .config import ModelConfig, TrainConfig, apply_dict, fields_of
from .errors import ConfigError

# What a config.json written before a ModelConfig field existed meant: loading an old checkpoint must rebuild
# the architecture it was trained with, not today's default.
LEGACY_MODEL_DEFAULTS = {"decoder_depth": 2, "decoder_tail": "single", "pairs": "downsampling",
                         "stability_head": False, "decoder": "generic", "mirror_blocks": "resnet"}
LEGACY_NORMALIZATION = 0.5  # hybridwrap < 0.2 fed every model (x/255 - 0.5) / 0.5


# What a train_config.json written before a field existed meant: a resumed run keeps the setting it started with.
LEGACY_TRAIN_DEFAULTS = {"model": {"decoder": "generic", "mirror_blocks": "resnet"},
                         "data": {"unlabeled_includes_labeled": True},  # hybridwrap < 0.3
                         "loss": {"teacher_buffers": "ema"}}  # hybridwrap < 0.3


def from_dict(values: dict) -> TrainConfig:
    """A TrainConfig saved as train_config.json (a run's own config)."""
    values = dict(values)
    for section, legacy in LEGACY_TRAIN_DEFAULTS.items():
        if isinstance(values.get(section), dict):
            values[section] = {**{k: v for k, v in legacy.items() if k not in values[section]}, **values[section]}
    return apply_dict(TrainConfig(), values, source="saved config")


def model_config_from_dict(values: dict) -> ModelConfig:
    known = fields_of(ModelConfig)
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"Unknown model config keys {sorted(unknown)}: the config comes from a newer hybridwrap; "
                          "upgrade with `pip install -U hybridwrap`.")
    legacy = {k: v for k, v in LEGACY_MODEL_DEFAULTS.items() if k not in values}
    if "mean" not in values:  # before `mean`/`std` existed every model was fed [-1, 1]
        chans = int(values.get("in_chans", 3))
        legacy["mean"], legacy["std"] = (LEGACY_NORMALIZATION,) * chans, (LEGACY_NORMALIZATION,) * chans
    values = {**legacy, **values}
    for key in ("input_size", "mean", "std", "label_names"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    return ModelConfig(**values)


def label_names(model_config: ModelConfig) -> list[str]:
    """A model's class names in label order, or "0", "1", ... for one saved without them (hybridwrap < 0.3)."""
    if model_config.label_names:
        return list(model_config.label_names)
    return [str(i) for i in range(model_config.num_classes)]
