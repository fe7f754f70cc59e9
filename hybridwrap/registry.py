"""One registry of backbones: plugins register here; any other name falls back to timm.

Plugins (first- and third-party alike) are found through the Python entry-point group
``hybridwrap.backbones``. An entry point names a callable that takes no argument and calls
`register_backbone` (or a module whose import does so). Discovery is lazy: it runs the first
time a name is looked up, never at ``import hybridwrap``. timm is imported where a timm model is asked for:
its import takes seconds, and a plugin backbone never needs it.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib.metadata as metadata
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch.nn as nn

from .errors import UnknownBackboneError
from .plugin_utils import timm_factory

ENTRY_POINT_GROUP = "hybridwrap.backbones"


@dataclass(frozen=True)
class BackboneEntry:
    """How to build one backbone.

    ``factory(pretrained=..., num_classes=..., in_chans=..., **kwargs)`` must return a timm-style
    model: ``forward_features`` (spatial map), ``forward_head``, ``feature_info`` and
    ``reset_classifier``.
    """

    name: str
    factory: Callable[..., nn.Module]
    default_input_size: tuple[int, int, int] = (3, 224, 224)
    description: str = ""
    package: str = ""  # distribution that provides it (named in errors when it is missing)
    version: str = ""
    timm_name: str | None = None  # the name under which timm knows it (for classifier export)
    decoder: str = "mirror"  # the model.decoder it gets by default (see hybridwrap.decoders.DECODERS)
    extra: dict = field(default_factory=dict)


_REGISTRY: dict[str, BackboneEntry] = {}
_discovered = False


def register_backbone(
    name: str,
    factory: Callable[..., nn.Module],
    *,
    default_input_size: tuple[int, int, int] = (3, 224, 224),
    description: str = "",
    package: str = "",
    version: str = "",
    timm_name: str | None = None,
    decoder: str = "mirror",
    overwrite: bool = False,
) -> BackboneEntry:
    """Make ``name`` available to `wrap`, ``hybridwrap train --backbone`` and ``from_pretrained``.

    Args:
        name: the backbone's name.
        factory: ``factory(num_classes=..., in_chans=..., pretrained=..., **kwargs)`` returning a timm-style model
            (``forward_features`` giving a spatial map, ``forward_head``, ``feature_info``, ``reset_classifier``).
        default_input_size: (channels, height, width) it is built for.
        description: one line for ``hybridwrap backbones``.
        package: the distribution that registers it (recorded in ``config.json``, named when a saved model needs it
            and it is not installed).
        version: that distribution's version.
        timm_name: the name under which timm knows the architecture, where it differs.
        decoder: the ``model.decoder`` it gets when the config leaves it unset: ``mirror`` (residual stages,
            ResNet-like) or ``generic`` (plain conv stages).
        overwrite: replace a backbone of that name registered by another package.

    Returns:
        The registry's entry.

    Examples:
        >>> def register():  # in a plugin, the entry point of group "hybridwrap.backbones"
        ...     hybridwrap.register_backbone("mynet", mynet_factory, default_input_size=(3, 32, 32),
        ...                                  package="my-plugin", decoder="generic")
    """
    if name in _REGISTRY and not overwrite and _REGISTRY[name].package != package:
        raise ValueError(
            f"Backbone {name!r} is already registered by {_REGISTRY[name].package or 'another plugin'}; "
            "pick another name or pass overwrite=True."
        )
    entry = BackboneEntry(
        name=name,
        factory=factory,
        default_input_size=tuple(default_input_size),
        description=description,
        package=package,
        version=version,
        timm_name=timm_name,
        decoder=decoder,
    )
    _REGISTRY[name] = entry
    return entry


def discover_plugins(force: bool = False) -> None:
    """Load every entry point of the ``hybridwrap.backbones`` group (once)."""
    global _discovered
    if _discovered and not force:
        return
    _discovered = True
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            before = set(_REGISTRY)
            obj = ep.load()
            if callable(obj):
                obj()
            _record_distribution(set(_REGISTRY) - before, ep)
        except Exception as exc:  # a broken third-party plugin must not break the others
            warnings.warn(
                f"hybridwrap plugin {ep.name!r} ({ep.value}) failed to load: {exc}. "
                "Reinstall or uninstall the package that provides it.",
                stacklevel=2,
            )


def _record_distribution(names: set[str], ep) -> None:
    """Fill in the distribution (name, version) that provides backbones an entry point registered without
    saying so: config.json records it, so that from_pretrained elsewhere can say what to install."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return
    for name in names:
        entry = _REGISTRY[name]
        if not entry.package or not entry.version:
            _REGISTRY[name] = dataclasses.replace(entry, package=entry.package or dist.metadata["Name"],
                                                  version=entry.version or dist.version)


def list_backbones(include_timm: bool = False, pattern: str = "") -> list[str]:
    """Names of the registered backbones (plugins); with ``include_timm`` also timm's models."""
    discover_plugins()
    names = sorted(_REGISTRY)
    if include_timm:
        import timm

        names += [n for n in timm.list_models(pattern or "*") if n not in _REGISTRY]
    if pattern and not include_timm:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def get_backbone(name: str) -> BackboneEntry:
    """The registry entry for ``name``; a timm model name gets an entry built on the fly."""
    discover_plugins()
    if name in _REGISTRY:
        return _REGISTRY[name]
    import timm

    if name.startswith(("hf-hub:", "local-dir:")):  # a timm checkpoint on the Hub or in a folder (config.json
        # names the architecture; pretrained=True loads it, with the head dropped for another class count)
        return BackboneEntry(name=name, factory=timm_factory(name), description="timm model from " + name,
                             package="timm", version=timm.__version__, timm_name=name)
    base = name.split(".")[0]  # timm accepts "resnet50.a1_in1k" (model.pretrained_tag)
    if base in timm.list_models():
        return BackboneEntry(
            name=name,
            factory=timm_factory(name),
            default_input_size=_timm_input_size(name),
            description="timm model",
            package="timm",
            version=timm.__version__,
            timm_name=name,
        )
    candidates = list(dict.fromkeys(list(_REGISTRY) + timm.list_models()))  # plugins are timm models too
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownBackboneError(
        f"Unknown backbone {name!r}: it is neither a hybridwrap plugin nor a timm model.{hint} "
        "See hybridwrap.list_backbones(include_timm=True), or install the plugin package that "
        f"provides it (entry-point group {ENTRY_POINT_GROUP!r})."
    )


def _timm_input_size(name: str) -> tuple[int, int, int]:
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(name) if "." in name else None
        if cfg is None:
            cfg = timm.models.get_pretrained_cfg(name.split(".")[0])
        if cfg is not None and getattr(cfg, "input_size", None):
            return tuple(cfg.input_size)
    except Exception:  # no pretrained cfg for this name: fall back to ImageNet's size
        pass
    return (3, 224, 224)
