"""Helpers for backbone plugins."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn


def timm_factory(timm_name: str) -> Callable[..., nn.Module]:
    """A registry factory for a model registered in timm (``@register_model``) by the plugin module."""

    def factory(**kwargs) -> nn.Module:
        import timm

        return timm.create_model(timm_name, **kwargs)

    factory.__name__ = f"create_{timm_name}"
    return factory

