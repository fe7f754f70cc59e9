"""The HybridNet module (Eq. 1) and ``wrap()``, which builds it around any registered backbone.

    h_c = E_c(x)    x̂_c = D_c(h_c)    ŷ = C(h_c)
    h_u = E_u(x)    x̂_u = D_u(h_u)    x̂ = x̂_c + x̂_u

E_c and C are the backbone itself (``forward_features`` / ``forward_head``), so the deployed classifier
is exactly the backbone. E_u is a second instance of the backbone with its own weights and no head.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from .config import ModelConfig, label_names
from .errors import ConfigError, InputSizeError
from .decoders import DECODER_MODES, DECODERS, MirrorDecoder
from .mirror import EncoderLayout, Level, analyze_encoder, pooling_switches
from .registry import get_backbone


@dataclass
class IntermediatePair:
    """(h_{b,l}, ĥ_{b,l}) of Eq. 5: encoder activation after pooling l, decoder activation before un-pooling l."""

    branch: str  # "c" or "u"
    level: int
    h: torch.Tensor
    h_hat: torch.Tensor


@dataclass
class HybridOutput:
    logits: torch.Tensor
    stability_logits: torch.Tensor | None = None  # Mean Teacher's second head (model.stability_head)
    x_hat: torch.Tensor | None = None
    x_hat_c: torch.Tensor | None = None
    x_hat_u: torch.Tensor | None = None
    pairs: list[IntermediatePair] = field(default_factory=list)


class _LevelTap:
    """Forward hooks that record, during one hybrid forward, what the decoders need from an encoder."""

    def __init__(self, encoder: nn.Module, levels: tuple[Level, ...], switches: bool):
        self.levels = levels
        self.store: dict | None = None
        modules = dict(encoder.named_modules())
        wanted = {lv.module for lv in levels}
        if switches:
            wanted |= {lv.switch_source for lv in levels if lv.pool is None and lv.switch_source}
            for lv in levels:
                if lv.pool is not None:
                    modules[lv.pool.module].register_forward_hook(self._record_input(lv.pool.module))
        for name in wanted:
            modules[name].register_forward_hook(self._record_output(name))

    def _record_output(self, name):
        def hook(_m, _inp, out):
            if self.store is not None:
                self.store[name] = out

        return hook

    def _record_input(self, name):
        def hook(_m, inp, _out):
            if self.store is not None:
                self.store["in:" + name] = inp[0]

        return hook

    @contextlib.contextmanager
    def recording(self):
        self.store = {}
        try:
            yield self.store
        finally:
            self.store = None

    def switches(self, store: dict, x: torch.Tensor, shared: bool = False) -> list[torch.Tensor | None]:
        out = []
        for lv in self.levels:
            if lv.factor == (1, 1):  # a stage that keeps the resolution: nothing to unpool
                out.append(None)
            elif lv.pool is not None:
                out.append(pooling_switches(lv, store["in:" + lv.pool.module], x, shared=shared))
            else:
                source = store[lv.switch_source] if lv.switch_source else x
                out.append(pooling_switches(lv, None, source))
        return out


class HybridNet(nn.Module):
    """Two-branch HybridNet around a timm-style backbone (see module docstring)."""

    def __init__(self, config: ModelConfig, backbone: nn.Module, encoder_u: nn.Module | None,
                 layout: EncoderLayout):
        super().__init__()
        self.config = config
        self.layout = layout
        self.backbone = backbone  # E_c + C
        decoder = dict(depth=config.decoder_depth, norm=config.decoder_norm, tail=config.decoder_tail,
                       decoder=config.decoder, encoder=backbone, mirror_blocks=config.mirror_blocks)
        self.decoder_c = MirrorDecoder(layout, config.decoder_c_mode, **decoder) if config.discriminative_decoder else None
        self.encoder_u = encoder_u
        self.decoder_u = MirrorDecoder(layout, config.decoder_u_mode, **decoder) if encoder_u is not None else None
        # Mean Teacher's second head on the pooled features of E_c; the deployed classifier never uses it
        self.stability_head = (nn.Linear(int(backbone.num_features), config.num_classes)
                               if config.stability_head else None)
        # Eq. 5 pairs: which levels get one (see ModelConfig.pairs)
        self.pair_levels = tuple(i for i, lv in enumerate(layout.levels)
                                 if config.pairs == "downsampling" or not lv.is_features)
        self._tap_c = _LevelTap(backbone, layout.levels, switches=False) if self.decoder_c is not None else None
        self._tap_u = (_LevelTap(encoder_u, layout.levels, switches=config.decoder_u_mode == "unpool")
                       if encoder_u is not None else None)

    # -- the deployed classifier: E_c and C only --------------------------------------------------
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.backbone.forward_head(self._features(self.backbone, x))

    @property
    def label_names(self) -> list[str]:
        """Class names in label order ("0", "1", ... for a model saved without them)."""
        return label_names(self.config)

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def forward(self, x: torch.Tensor, reconstruct: bool | None = None):
        """Training mode: a :class:`HybridOutput`. Eval mode: logits from E_c and C only.

        ``reconstruct=True`` forces the full two-branch pass in eval mode (e.g. for pictures).
        """
        if reconstruct is None:
            reconstruct = self.training
        if not reconstruct:
            return self.classify(x)
        self._check_input(x)
        out = HybridOutput(logits=None)
        with (self._tap_c.recording() if self._tap_c else contextlib.nullcontext({})) as store_c:
            h_c = self._features(self.backbone, x)
        if self.stability_head is None:
            out.logits = self.backbone.forward_head(h_c)
        else:
            pooled = self.backbone.forward_head(h_c, pre_logits=True)
            out.logits = self.backbone.get_classifier()(pooled)
            out.stability_logits = self.stability_head(pooled)
        if self.decoder_c is not None:
            out.x_hat_c, h_hats = self.decoder_c(h_c, sizes=self._sizes(store_c, x))
            self._add_pairs(out, "c", store_c, h_hats)
            out.x_hat = out.x_hat_c
        if self.encoder_u is not None:
            with self._tap_u.recording() as store_u:
                h_u = self._features(self.encoder_u, x)
            switches = (self._tap_u.switches(store_u, x, shared=self.config.decoder == "light")
                        if self.decoder_u.mode == "unpool" else None)
            out.x_hat_u, h_hats = self.decoder_u(h_u, switches, sizes=self._sizes(store_u, x))
            self._add_pairs(out, "u", store_u, h_hats)
            out.x_hat = out.x_hat_u if out.x_hat is None else out.x_hat + out.x_hat_u
        return out

    def _features(self, encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``encoder.forward_features(x)``; images too small for the backbone get an error that says so."""
        try:
            return encoder.forward_features(x)
        except RuntimeError as exc:
            text = str(exc)
            if tuple(x.shape[-2:]) == tuple(self.layout.input_size) or not any(
                    k in text for k in ("size", "Expected more than 1 value per channel")):
                raise
            raise InputSizeError(
                f"{x.shape[-2]}x{x.shape[-1]} images are too small for {self.config.backbone} "
                f"({text.splitlines()[0]}). Resize them (data.image_size), e.g. to the wrap-time size "
                f"{self.layout.input_size[0]}x{self.layout.input_size[1]}.") from exc

    def _sizes(self, store: dict, x: torch.Tensor) -> list[tuple[int, int]]:
        """What entered each level's downsampling in this pass: the image for level 0, else the previous level's
        h_l. The decoders resize back to these, so the model takes any input size its backbone takes."""
        levels = self.layout.levels
        return [tuple(x.shape[-2:])] + [tuple(store[lv.module].shape[-2:]) for lv in levels[:-1]]

    def _add_pairs(self, out: HybridOutput, branch: str, store: dict, h_hats: list[torch.Tensor]) -> None:
        for lv in self.pair_levels:
            out.pairs.append(IntermediatePair(branch, lv, store[self.layout.levels[lv].module], h_hats[lv]))

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 images -> the model's input: (x/255 - mean) / std with the config's per-channel values."""
        from .data.augment import normalize

        return normalize(x_uint8, self.config.mean, self.config.std)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.config.in_chans:
            raise ConfigError(
                f"HybridNet expects images of shape (batch, {self.config.in_chans}, H, W), got "
                f"{tuple(x.shape)}. Convert the images to {self.config.in_chans} channels, or wrap the backbone "
                f"with in_chans={x.shape[1] if x.dim() == 4 else '...'}."
            )

    def branch_parameters(self) -> dict[str, list[nn.Parameter]]:
        groups = {"backbone": list(self.backbone.parameters())}
        for name in ("decoder_c", "encoder_u", "decoder_u"):
            m = getattr(self, name)
            if m is not None:
                groups[name] = list(m.parameters())
        return groups


def _check_backbone_kwargs(config: ModelConfig) -> None:
    """A kwarg without a value is refused: timm's builder drops None-valued kwargs, so ``{width:0.25}`` (YAML's key
    "width:0.25" with no value) would silently build the full-width network."""
    empty = [k for k, v in config.backbone_kwargs.items() if v is None]
    if not empty:
        return
    glued = [k for k in empty if ":" in str(k)]
    hint = (f" YAML needs a space after the colon: write {{{', '.join(k.replace(':', ': ', 1) for k in glued)}}}"
            if glued else " Give each a value, or leave it out")
    raise ConfigError(f"model.backbone_kwargs {', '.join(map(repr, empty))} of {config.backbone} "
                      f"{'has' if len(empty) == 1 else 'have'} no value.{hint}.")


def _create_backbone(entry, config: ModelConfig, pretrained: bool, checkpoint_path: str | None) -> nn.Module:
    _check_backbone_kwargs(config)
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
    from .errors import HubError
    from .network import hub_endpoint, hub_reachable

    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    if hub_reachable():
        try:
            return entry.factory(**kwargs)
        except (HfHubHTTPError, LocalEntryNotFoundError) as exc:
            raise HubError(f"The pretrained weights of {config.backbone} could not be downloaded from "
                           f"{hub_endpoint()} ({exc.__class__.__name__}). Check the name and your network, or pass a "
                           "local weights file: model.checkpoint_path=FILE (--checkpoint-path FILE).") from exc
    import huggingface_hub.constants as hf_constants

    offline = hf_constants.HF_HUB_OFFLINE
    hf_constants.HF_HUB_OFFLINE = True  # the cache only
    try:
        return entry.factory(**kwargs)
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
    """Build a :class:`HybridNet` around ``backbone`` (a plugin name or any timm CNN name).

    ``checkpoint_path`` loads backbone weights from a local file (a head of another class count is dropped;
    plugins may have their own loader, e.g. Places365); ``pretrained=True`` loads the backbone's own weights,
    also for ``"hf-hub:owner/name"`` timm checkpoints. Both initialise E_c and E_u alike, unless
    ``unsupervised_init="scratch"``. ``label_names``: the class names in label order (kept in config.json and the
    export; training takes them from the data). Extra keyword arguments go to the backbone's factory.
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
    if config.decoder_norm not in ("batch", "none"):
        raise ConfigError(f"decoder_norm must be 'batch' or 'none', got {config.decoder_norm!r}.")
    if config.unsupervised_branch and not config.discriminative_decoder:
        raise ConfigError("unsupervised_branch=True needs discriminative_decoder=True: x̂ = x̂_c + x̂_u (Eq. 1). "
                          "Set both, or neither for a plain classifier.")


def build_from_config(config: ModelConfig, pretrained: bool = False, checkpoint_path: str | None = None) -> HybridNet:
    """Rebuild a HybridNet from its :class:`ModelConfig` (random weights unless ``pretrained``)."""
    validate_model_config(config)
    entry = get_backbone(config.backbone)
    if config.decoder is None:
        config.decoder = entry.decoder
    if config.decoder not in DECODERS:
        raise ConfigError(f"decoder must be one of {', '.join(DECODERS)} (mirror: the encoder's blocks; light: the "
                          f"cheapest; generic: full-width convolutions), got {config.decoder!r}.")
    if config.input_size is None:
        config.input_size = tuple(entry.default_input_size[-2:])
    backbone = _create_backbone(entry, config, pretrained, checkpoint_path)
    if config.mean is None or config.std is None:
        config.mean, config.std = backbone_normalization(backbone, config.in_chans)
    layout = analyze_encoder(backbone, config.in_chans, tuple(config.input_size), stages=config.pairs == "stages")
    encoder_u = None
    if config.unsupervised_branch:
        # A second instance, not a copy: its own (fresh or pretrained) weights, and no classifier.
        same = config.unsupervised_init == "same"
        encoder_u = _create_backbone(entry, config, pretrained and same, checkpoint_path if same else None)
        encoder_u.reset_classifier(0)
        _drop_modules_unused_by_features(encoder_u, config.in_chans, tuple(config.input_size))
    return HybridNet(config, backbone, encoder_u, layout)


def backbone_normalization(backbone: nn.Module, in_chans: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """mean/std of the backbone's ``pretrained_cfg`` (what its weights expect), one value per input channel.

    A backbone without them is fed [-1, 1] (0.5, 0.5). With another channel count than the cfg's (a 1-channel
    model of an RGB backbone) every channel gets the cfg's average.
    """
    cfg = getattr(backbone, "pretrained_cfg", None) or {}
    mean, std = cfg.get("mean"), cfg.get("std")
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
