"""A config value from YAML or the command line, turned into its field's type (the type of the field's default);
and the read-only form of a value inside a frozen config."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import yaml

from .errors import ConfigError


def coerce(value: Any, current: Any, name: str):
    """Turn YAML / command-line values into the field's type (checked against the default's type)."""
    if isinstance(current, bool):
        if isinstance(value, str):
            if value.lower() in ("true", "1", "yes"):
                return True
            if value.lower() in ("false", "0", "no"):
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name} must be true or false, got {value!r}.")
    if isinstance(current, (dict, list, tuple)) and isinstance(value, str):  # --set model.backbone_kwargs={width: 0.5}
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{name} must be a YAML {type(current).__name__}, got {value!r}.") from exc
        if not isinstance(value, (dict, list, tuple)) and value is not None:
            raise ConfigError(f"{name} must be a {type(current).__name__}, got {value!r}.")
        return value
    if isinstance(current, (int, float)) and not isinstance(current, bool) and isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{name} must be a number, got {value!r}.") from exc
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(current, int) and not isinstance(current, bool) and isinstance(value, float) and value.is_integer():
        return int(value)
    if current is not None and not isinstance(current, (dict, tuple, list)) and not isinstance(value, type(current)):
        if value is None:
            return None
        raise ConfigError(f"{name} must be of type {type(current).__name__}, got {value!r}.")
    if isinstance(value, str) and current is None:
        parsed = yaml.safe_load(value)
        return parsed
    return value


class ReadOnlyDict(dict):
    """A dict inside a frozen config (``model.backbone_kwargs``): read like a dict, written never. A copy
    (``copy.deepcopy``, what `config.replaced` makes) is a plain, writable dict."""

    def _refuse(self, *args, **kwargs):
        raise dataclasses.FrozenInstanceError(
            "cannot change a value of a run's config: it is resolved once, then read only "
            "(hybridwrap.config.replaced makes a writable copy)")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __deepcopy__(self, memo):  # a read-only dict inside copies to a plain one too
        return {k: copy.deepcopy(v, memo) for k, v in self.items()}

    def __reduce__(self):
        return dict, (dict(self),)


def read_only(value: Any) -> Any:
    """``value`` with every dict in it read-only and every list a tuple (what `config.freeze` stores)."""
    if isinstance(value, dict):
        return ReadOnlyDict({k: read_only(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(read_only(v) for v in value)
    return value

