"""Comparing state dicts: below the model, the registry and serialization, which all check weights against a
module (a plugin's checkpoint, a saved model)."""

from __future__ import annotations

import torch


def state_dict_mismatch(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor]):
    """(missing, unexpected, wrongly shaped) keys of ``state`` against ``expected``."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    return missing, unexpected, wrong
