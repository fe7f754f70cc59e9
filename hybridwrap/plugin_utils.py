"""Helpers for backbone plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from .errors import CheckpointError
from .weights import state_dict_mismatch


def timm_factory(timm_name: str) -> Callable[..., nn.Module]:
    """A registry factory for a model registered in timm (``@register_model``) by the plugin module."""

    def factory(checkpoint_path: str | None = None, **kwargs) -> nn.Module:
        import timm

        model = timm.create_model(timm_name, **kwargs)
        if checkpoint_path:
            load_backbone_checkpoint(model, checkpoint_path)
        return model

    factory.__name__ = f"create_{timm_name}"
    factory.timm_name = timm_name  # what it builds: its pretrained_cfg can be read without building it
    return factory


def load_backbone_checkpoint(model: nn.Module, path: str) -> None:
    """Load a local timm-style checkpoint (safetensors or a PyTorch file, ``module.`` prefixes and EMA
    weights as timm reads them) into ``model`` with :func:`load_backbone_state`."""
    from timm.models import load_state_dict

    if not Path(path).is_file():
        raise CheckpointError(f"Checkpoint {path!r} not found. Pass the path of a local .safetensors / .pth file, or "
                              "pretrained=True for the backbone's own weights.")
    try:
        state = load_state_dict(str(path), weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unreadable, truncated, or a pickle of arbitrary objects
        raise CheckpointError(f"{path} is not a readable checkpoint ({str(exc).splitlines()[0]}). Re-download it, or "
                              "re-save it as a plain state_dict or safetensors.") from exc
    load_backbone_state(model, state, str(path))


def load_backbone_state(model: nn.Module, state: dict, source: str, mismatch: str = "does not fit this backbone",
                        fix: str = "Pass a checkpoint of the same architecture.") -> None:
    """Load backbone weights into ``model``. The classifier is optional: a file without one, or with one of
    another class count (ImageNet's 1000-way head for a 10-class task), leaves the model's new head as it is.
    BatchNorm's ``num_batches_tracked`` counters may be missing (files older than PyTorch 0.4.1). Anything
    else that does not fit is an error that names the keys: "{source} {mismatch}: ... {fix}"."""
    own = model.state_dict()
    head = getattr(model, "pretrained_cfg", {}).get("classifier") or "fc"
    heads = [head] if isinstance(head, str) else list(head)
    new_head = {k for k in own if any(k.startswith(h + ".") for h in heads)
                and (k not in state or tuple(state[k].shape) != tuple(own[k].shape))}
    state = {k: v for k, v in state.items() if k not in new_head}
    expected = {k: v for k, v in own.items() if k not in new_head
                and (k in state or not k.endswith("num_batches_tracked"))}
    missing, unexpected, wrong = state_dict_mismatch(expected, state)
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{source} {mismatch}: {len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:3]}), {len(wrong)} with other shapes (e.g. {wrong[:3]}). {fix}")
    with torch.no_grad():
        model.load_state_dict(state, strict=False)  # the new head stays as initialised
