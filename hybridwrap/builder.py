"""Building a HybridNet: the backbone from the registry (its own or pretrained weights, offline from the cache), the
model config checked, the encoder measured and mirrored: ``wrap()`` and ``build_from_config()``. The module itself is
`model` (as timm keeps a model apart from ``_builder.py``).
"""

from __future__ import annotations

import dataclasses

import huggingface_hub.constants as hf_constants
import torch
import torch.nn as nn
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

from .config import ModelConfig
from .decoders import DECODER_MODES, DECODERS
from .errors import ConfigError, HubError, HybridWrapError
from .mirror import analyze_encoder
from .model import HybridNet
from .network import hub_endpoint, hub_reachable
from .registry import get_backbone


def check_backbone_kwargs(config: ModelConfig) -> None:
    """A kwarg without a value is refused: timm's builder drops None-valued kwargs, so ``{width:0.25}`` (YAML's key
    "width:0.25" with no value) would silently build the full-width network. A run's config is checked before any
    of its runs starts (`train.checks.validate`), and every build checks again."""
    empty = [k for k, v in config.backbone_kwargs.items() if v is None]
    if not empty:
        return
    glued = [k for k in empty if ":" in str(k)]
    hint = (f" YAML needs a space after the colon: write {{{', '.join(k.replace(':', ': ', 1) for k in glued)}}}"
            if glued else " Give each a value, or leave it out")
    raise ConfigError(f"model.backbone_kwargs {', '.join(map(repr, empty))} of {config.backbone} "
                      f"{'has' if len(empty) == 1 else 'have'} no value.{hint}.")


def _create_backbone(entry, config: ModelConfig, pretrained: bool, checkpoint_path: str | None) -> nn.Module:
    check_backbone_kwargs(config)
    kwargs = dict(config.backbone_kwargs)
    kwargs.update(pretrained=pretrained, num_classes=config.num_classes, in_chans=config.in_chans)
    if checkpoint_path:
        kwargs["checkpoint_path"] = checkpoint_path
    try:
        if pretrained and not checkpoint_path:
            return _pretrained_backbone(entry, config, kwargs)
        return entry.factory(**kwargs)
    except TypeError as exc:
        unexpected = [k for k in config.backbone_kwargs if f"'{k}'" in str(exc)]
        if "unexpected keyword argument" in str(exc) and unexpected:
            raise ConfigError(f"{config.backbone} does not take backbone_kwargs {', '.join(unexpected)} (they belong to "
                              f"another backbone): remove them from model.backbone_kwargs.") from None
        raise


def _pretrained_backbone(entry, config: ModelConfig, kwargs: dict) -> nn.Module:
    """Pretrained weights from the Hub, or from the local cache when the Hub cannot be reached (then within
    seconds: without this, an offline machine waits through a minute of retries before a raw error)."""
    if hub_reachable():
        try:
            return entry.factory(**kwargs)
        except (HfHubHTTPError, LocalEntryNotFoundError) as exc:
            raise HubError(f"The pretrained weights of {config.backbone} could not be downloaded from "
                           f"{hub_endpoint()} ({exc.__class__.__name__}). Check the name and your network, or pass a "
                           "local weights file: model.checkpoint_path=FILE (--checkpoint-path FILE).") from exc
    offline = hf_constants.HF_HUB_OFFLINE
    hf_constants.HF_HUB_OFFLINE = True  # the cache only
    try:
        return entry.factory(**kwargs)
    except HybridWrapError:  # the backbone's own advice (a plugin whose weights are a file to pass) stands offline too
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to find the weights offline is the same advice
        raise HubError(f"The pretrained weights of {config.backbone} are not in the local cache and the Hub "
                       f"({hub_endpoint()}) cannot be reached. Offline, pass a local weights file: "
                       "model.checkpoint_path=FILE (--checkpoint-path FILE), or timm's "
                       "backbone_kwargs={pretrained_cfg_overlay: {file: FILE}} with model.pretrained=true.") from exc
    finally:
        hf_constants.HF_HUB_OFFLINE = offline


def wrap(
    backbone: str,
    num_classes: int = 10,
    *,
    in_chans: int = 3,
    input_size: int | tuple[int, int] | None = None,
    pretrained: bool = False,
    checkpoint_path: str | None = None,
    discriminative_decoder: bool = True,
    unsupervised_branch: bool = True,
    decoder_c_mode: str = "nearest",
    decoder_u_mode: str = "unpool",
    decoder_depth: int | None = None,
    decoder_norm: str = "batch",
    decoder_tail: str = "mirror",
    pairs: str = "stages",
    stability_head: bool = False,
    unsupervised_init: str = "same",
    decoder: str | None = None,
    label_names: list[str] | tuple[str, ...] | None = None,
    **backbone_kwargs,
) -> HybridNet:
    """Build a `HybridNet` around ``backbone``: split at the pre-pooling layer into E_c and C, mirror the
    encoder into D_c (upsampling) and D_u (unpooling), and duplicate the encoder into E_u (Eq. 1).

    Args:
        backbone: a registered backbone (``convlarge``, ``shakeshake26_2x96d``, ``places365_resnet50``, a third-party
            plugin's) or any timm CNN name, also ``"hf-hub:owner/name"``.
        num_classes: classes of the head C.
        in_chans: image channels.
        input_size: image side or (height, width) used to measure the levels (default: the backbone's
            ``pretrained_cfg``); the wrapped model takes any size its backbone takes.
        pretrained: start E_c and E_u from the backbone's own pretrained weights.
        checkpoint_path: start E_c and E_u from a local weights file instead (a head of another class count is
            dropped; plugins may have their own loader, e.g. Places365).
        discriminative_decoder: build D_c (False with ``unsupervised_branch=False``: the plain classifier).
        unsupervised_branch: build E_u and D_u (False: the auto-encoder E_c + D_c + C).
        decoder: decoder blocks, ``mirror``, ``light`` or ``generic`` (default: the backbone's registered one).
        unsupervised_init: ``same`` (E_u starts as E_c) or ``scratch`` (random E_u).
        label_names: the class names in label order (kept in ``config.json`` and the export).
        **backbone_kwargs: passed to the backbone's factory (e.g. ``width=0.25`` for ConvLarge).
        decoder_c_mode: how D_c undoes a downsampling (``nearest`` upsampling, the paper's).
        decoder_u_mode: how D_u undoes it (``unpool`` with E_u's switches, the paper's).
        decoder_depth: convolutions after each upsampling (default: the encoder's block depth).
        decoder_norm: ``batch`` or ``none`` in the decoders.
        decoder_tail: ``mirror`` or ``single`` for the layers between the last level and the features.
        pairs: the Eq. 5 pairs, ``stages`` or ``downsampling``.
        stability_head: Mean Teacher's second head.

    Returns:
        A `HybridNet`; in train mode its forward returns a `HybridOutput`, in eval mode the logits of
        E_c + C alone.

    Examples:
        >>> import hybridwrap, torch
        >>> model = hybridwrap.wrap("convlarge", num_classes=10, in_chans=1, input_size=16, width=0.125)
        >>> out = model.train()(torch.randn(2, 1, 16, 16))
        >>> out.logits.shape, out.x_hat.shape
        (torch.Size([2, 10]), torch.Size([2, 1, 16, 16]))
    """
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    elif input_size is not None:
        input_size = tuple(input_size)[-2:]
    config = ModelConfig(
        backbone=backbone, num_classes=num_classes, in_chans=in_chans, input_size=input_size,
        discriminative_decoder=discriminative_decoder, unsupervised_branch=unsupervised_branch,
        decoder_c_mode=decoder_c_mode, decoder_u_mode=decoder_u_mode, decoder_depth=decoder_depth,
        decoder_norm=decoder_norm, decoder_tail=decoder_tail, pairs=pairs, stability_head=stability_head,
        unsupervised_init=unsupervised_init, decoder=decoder, backbone_kwargs=backbone_kwargs,
        label_names=tuple(label_names) if label_names is not None else None,
    )
    return build_from_config(config, pretrained=pretrained, checkpoint_path=checkpoint_path)


def validate_model_config(config: ModelConfig) -> None:
    num_classes, in_chans = config.num_classes, config.in_chans
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"num_classes must be an integer >= 2 (a classifier needs two classes), got {num_classes!r}.")
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
        raise ConfigError(f"in_chans must be a positive integer (3 for RGB, 1 for grayscale), got {in_chans!r}.")
    if config.decoder_depth is not None and (isinstance(config.decoder_depth, bool) or config.decoder_depth < 1):
        raise ConfigError(f"decoder_depth must be >= 1, or null to follow the encoder's block depth, got "
                          f"{config.decoder_depth!r}.")
    for name, allowed in (("decoder_tail", ("mirror", "single")), ("pairs", ("stages", "downsampling")),
                          ("unsupervised_init", ("same", "scratch"))):
        if getattr(config, name) not in allowed:
            raise ConfigError(f"{name} must be {' or '.join(map(repr, allowed))}, got {getattr(config, name)!r}.")
    for name in ("mean", "std"):
        v = getattr(config, name)
        if v is not None and len(v) != config.in_chans:
            raise ConfigError(f"model.{name} has {len(v)} values but in_chans={config.in_chans}: give one per channel.")
    if "pretrained" in (config.backbone_kwargs or {}):
        raise ConfigError("model.backbone_kwargs may not carry 'pretrained': set model.pretrained=true (--pretrained) "
                          "instead, so that E_c and E_u both get the weights.")
    if config.label_names is not None and len(config.label_names) != config.num_classes:
        raise ConfigError(f"model.label_names has {len(config.label_names)} names but num_classes={config.num_classes}: "
                          "give one name per class, in label order.")
    if config.std is not None and min(config.std) <= 0:
        raise ConfigError(f"model.std must be positive, got {list(config.std)}.")
    for name in ("decoder_c_mode", "decoder_u_mode"):
        if getattr(config, name) not in DECODER_MODES:
            raise ConfigError(f"{name} must be 'nearest', 'bilinear' (upsampling), 'unpool' or 'transposed' (strided "
                              f"transposed blocks, mirror decoder only), got {getattr(config, name)!r}.")
    if config.mirror_blocks not in ("own", "resnet"):
        raise ConfigError(f"mirror_blocks must be 'own' (blocks of the encoder's kind) or 'resnet' (hybridwrap < 0.3), "
                          f"got {config.mirror_blocks!r}.")
    if config.decoder is not None and config.decoder not in DECODERS:
        raise ConfigError(f"decoder must be one of {', '.join(DECODERS)} (mirror: the encoder's blocks; light: the "
                          f"cheapest; generic: full-width convolutions), got {config.decoder!r}.")
    if config.decoder_norm not in ("batch", "none"):
        raise ConfigError(f"decoder_norm must be 'batch' or 'none', got {config.decoder_norm!r}.")
    if config.unsupervised_branch and not config.discriminative_decoder:
        raise ConfigError("unsupervised_branch=True needs discriminative_decoder=True: x̂ = x̂_c + x̂_u (Eq. 1). "
                          "Set both, or neither for a plain classifier.")


def build_from_config(config: ModelConfig, pretrained: bool = False, checkpoint_path: str | None = None) -> HybridNet:
    """Rebuild a HybridNet from its `ModelConfig` (random weights unless ``pretrained``). The model holds its own copy
    of the config, with the fields left at None resolved (`backbone_defaults`); ``config`` is left as it is."""
    validate_model_config(config)
    entry = get_backbone(config.backbone)
    backbone = _create_backbone(entry, config, pretrained, checkpoint_path)
    config = backbone_defaults(config, backbone)
    layout = analyze_encoder(backbone, config.in_chans, tuple(config.input_size), stages=config.pairs == "stages")
    encoder_u = None
    if config.unsupervised_branch:
        # A second instance, not a copy: its own (fresh or pretrained) weights, and no classifier.
        same = config.unsupervised_init == "same"
        encoder_u = _create_backbone(entry, config, pretrained and same, checkpoint_path if same else None)
        encoder_u.reset_classifier(0)
        _drop_modules_unused_by_features(encoder_u, config.in_chans, tuple(config.input_size))
    return HybridNet(config, backbone, encoder_u, layout)


def backbone_defaults(config: ModelConfig, backbone: nn.Module | None = None) -> ModelConfig:
    """A copy of ``config`` with the fields it leaves to the backbone filled in.

    Args:
        config: the model config; ``decoder``, ``input_size``, ``mean`` and ``std`` may be None.
        backbone: the backbone built from it, whose ``pretrained_cfg`` gives the normalisation (default: the one
            timm registered for it (`registered_pretrained_cfg`), or else one created without weights, only when the
            normalisation is left to it).

    Returns:
        The config with the backbone's registered decoder family, its default input size and the normalisation its
        weights expect (`pretrained_normalization`) wherever ``config`` leaves them at None.
    """
    config = dataclasses.replace(config)
    entry = get_backbone(config.backbone)
    if config.decoder is None:
        config.decoder = entry.decoder
    if config.input_size is None:
        config.input_size = tuple(entry.default_input_size[-2:])
    if config.mean is None or config.std is None:
        pretrained_cfg = registered_pretrained_cfg(entry, config) if backbone is None else None
        if pretrained_cfg is None:  # only the built model can tell
            backbone = backbone if backbone is not None else _create_backbone(entry, config, False, None)
            pretrained_cfg = getattr(backbone, "pretrained_cfg", None) or {}
        config.mean, config.std = pretrained_normalization(pretrained_cfg, config.in_chans)
    return config


def registered_pretrained_cfg(entry, config: ModelConfig) -> dict | None:
    """The ``pretrained_cfg`` that timm registered for a backbone it builds (a timm model, or a plugin's timm
    model), read without building it; None where only the built model can tell: a plugin's own factory, a
    checkpoint on the Hub or in a folder, a ``pretrained_cfg`` passed in ``backbone_kwargs``."""
    import timm

    name = getattr(entry.factory, "timm_name", None)
    overridden = {"pretrained_cfg", "pretrained_cfg_overlay"} & set(config.backbone_kwargs)
    if name is None or overridden or name.startswith(("hf-hub:", "local-dir:")):
        return None
    try:
        found = timm.models.get_pretrained_cfg(name)
    except RuntimeError:  # a pretrained tag timm does not know: the factory names it when it builds
        return None
    return found.to_dict() if found is not None else None


def pretrained_normalization(pretrained_cfg: dict, in_chans: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """mean/std of a backbone's ``pretrained_cfg`` (what its weights expect), one value per input channel.

    A backbone without them is fed [-1, 1] (0.5, 0.5). With another channel count than the cfg's (a 1-channel
    model of an RGB backbone) every channel gets the cfg's average.
    """
    mean, std = pretrained_cfg.get("mean"), pretrained_cfg.get("std")
    if not mean or not std:
        return (0.5,) * in_chans, (0.5,) * in_chans
    mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    if len(mean) != in_chans or len(std) != in_chans:
        mean, std = (sum(mean) / len(mean),) * in_chans, (sum(std) / len(std),) * in_chans
    return mean, std


def _drop_modules_unused_by_features(encoder: nn.Module, in_chans: int, input_size: tuple[int, int]) -> None:
    """Replace by ``nn.Identity`` every submodule of E_u that ``forward_features`` never touches.

    E_u only encodes, so what is left of the head (VGG's pre-logits MLP, MobileNetV3's conv_head...) would be
    dead weight in the checkpoint and unused parameters for DistributedDataParallel.
    """
    was_training = encoder.training
    encoder.eval()  # eval: the probe must not touch BatchNorm running statistics
    encoder.zero_grad(set_to_none=True)
    encoder.forward_features(torch.randn(1, in_chans, *input_size)).float().sum().backward()
    encoder.train(was_training)
    unused = {id(p) for p in encoder.parameters() if p.requires_grad and p.grad is None}
    encoder.zero_grad(set_to_none=True)
    dropped: list[str] = []
    for name, module in list(encoder.named_modules()):
        if not name or any(name.startswith(d + ".") for d in dropped):
            continue
        params = list(module.parameters())
        if params and all(id(p) in unused for p in params):
            setattr(_parent(encoder, name), name.rsplit(".", 1)[-1], nn.Identity())
            dropped.append(name)


def _parent(root: nn.Module, name: str) -> nn.Module:
    return root.get_submodule(name.rsplit(".", 1)[0]) if "." in name else root
