"""The HybridNet module (Eq. 1); `builder` builds it around any registered backbone (``wrap``).

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

from .config import ModelConfig
from .data import augment
from .decoders import MirrorDecoder
from .errors import ConfigError, InputSizeError
from .mirror import EncoderLayout, Level, pooling_switches
from .saved_configs import label_names


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
    """Two-branch HybridNet around a timm-style backbone (Eq. 1): E_c + C classify and D_c reconstructs x̂_c from
    E_c's features; E_u and D_u reconstruct x̂_u, with E_u's pooling switches; x̂ = x̂_c + x̂_u.

    Build one with `wrap` (or `build_from_config`, or `from_pretrained`).

    Args:
        config: the `ModelConfig` it was built from (saved as ``config.json``).
        backbone: E_c + C, a timm-style model.
        encoder_u: E_u, or None for a model without the unsupervised branch.
        layout: the encoder's levels, measured by `mirror`.

    Examples:
        >>> model = hybridwrap.wrap("resnet18", num_classes=10, input_size=64)
        >>> logits = model.classify(images)        # E_c + C only: the backbone's own cost
        >>> out = model.train()(images)            # HybridOutput: logits, x_hat_c, x_hat_u, x_hat, pairs
    """

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
        """Training mode: a `HybridOutput`. Eval mode: logits from E_c and C only.

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
        return augment.normalize(x_uint8, self.config.mean, self.config.std)

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
