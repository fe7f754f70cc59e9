"""The decoders D_c and D_u generated from an encoder's levels (:mod:`hybridwrap.mirror` describes the levels).

For level ``l`` the encoder produces ``h_l`` (``chs_l`` channels at size ``s_l``) just after its downsampling.
The decoder block of level ``l`` starts from ``ĥ_l`` (same shape: the intermediate pair of Eq. 5), brings the
channels to those that entered the downsampling, resizes by the level's factor (*upsampling* in D_c, *unpooling*
in D_u, or the strided transposed blocks of the official ResNet code), then convolutions bring it to ``ĥ_{l-1}``
(or to the image). Three block families: ``generic``, ``light`` and ``mirror`` (blocks of the encoder's kind).
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import DECODER_MODES, DECODERS  # noqa: F401 (re-exported: their one definition is in config.py)
from .errors import ConfigError
from .mirror import ConvSpec, EncoderLayout, Level, bottleneck_resize, unpool


def norm_layer(norm: str, chs: int) -> nn.Module:
    return nn.BatchNorm2d(chs) if norm == "batch" else nn.Identity()


def conv_bn_act(in_chs: int, out_chs: int, kernel: int = 3, norm: str = "batch") -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_chs, out_chs, kernel, padding=kernel // 2, bias=norm != "batch"),
        norm_layer(norm, out_chs),
        nn.LeakyReLU(0.1, inplace=True),
    )


class DecoderBlock(nn.Module):
    """Mirror of one level: ĥ_l -> channels in -> upsample|unpool (none at factor 1) -> convs -> ĥ_{l-1}."""

    def __init__(self, level: Level, out_chs: int, mode: str, depth: int, final: bool, norm: str = "batch"):
        super().__init__()
        self.level, self.mode = level, mode
        mid = level.mid_channels
        self.pre = nn.Identity() if level.channels == mid else conv_bn_act(level.channels, mid, 1, norm)
        post = [conv_bn_act(mid, mid, 3, norm) for _ in range(depth - 1)]
        if final:  # reconstruction in pixel space: no normalisation, no activation
            post.append(nn.Conv2d(mid, out_chs, 3, padding=1))
        else:
            post.append(conv_bn_act(mid, out_chs, 3, norm))
        self.post = nn.Sequential(*post)

    def forward(self, x: torch.Tensor, switches: torch.Tensor | None = None,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        """``size``: what entered the level's downsampling in this forward pass (default: the wrap-time size)."""
        return self.post(_resize(self.pre(x), self.level, self.mode, switches, size))


class LightBlock(nn.Module):
    """Few, narrow convolutions per level: 1x1 down to w = max(16, out/4) channels, resize, a 3x3 at w, and a 1x1
    out (a 3x3 to the image at the last level). Its unpooling uses switches shared by all channels."""

    def __init__(self, level: Level, out_chs: int, mode: str, final: bool, norm: str = "batch"):
        super().__init__()
        self.level, self.mode = level, mode
        width = max(16, out_chs // 4)
        self.pre = conv_bn_act(level.channels, width, 1, norm)
        self.mid = conv_bn_act(width, width, 3, norm)
        self.out = nn.Conv2d(width, out_chs, 3, padding=1) if final else conv_bn_act(width, out_chs, 1, norm)

    def forward(self, x, switches=None, size=None):
        return self.out(self.mid(_resize(self.pre(x), self.level, self.mode, switches, size)))


class Bottleneck(nn.Module):
    """ResNet's bottleneck (1x1 down to width, 3x3, 1x1 up, residual), as the mirror of one encoder block."""

    def __init__(self, chs: int, width: int, norm: str = "batch"):
        super().__init__()
        self.body = nn.Sequential(conv_bn_act(chs, width, 1, norm), conv_bn_act(width, width, 3, norm),
                                  nn.Conv2d(width, chs, 1, bias=norm != "batch"), norm_layer(norm, chs))
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x):
        return self.act(x + self.body(x))


class BasicBlock(nn.Module):
    """ResNet's basic block (two 3x3, residual), as the mirror of one encoder block."""

    def __init__(self, chs: int, norm: str = "batch"):
        super().__init__()
        self.body = nn.Sequential(conv_bn_act(chs, chs, 3, norm), nn.Conv2d(chs, chs, 3, padding=1, bias=norm != "batch"),
                                  norm_layer(norm, chs))
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x):
        return self.act(x + self.body(x))


# Decoder blocks of a backbone family's own kind for `decoder="mirror"`: kind -> factory(in_chs, out_chs, stride,
# norm) returning a block from (in_chs, h, w) to (out_chs, h * stride, w * stride) (a transposed block when
# stride > 1). A plugin registers its family's (shake-shake: "shakeshake", the official HybridNet code's
# ShakeShakeDeconvBlock). ResNet's "basic" and "bottleneck" are built in below.
MIRROR_BLOCKS: dict = {}


def register_mirror_block(kind: str, factory) -> None:
    MIRROR_BLOCKS[kind] = factory


class StageMirrorBlock(nn.Module):
    """The mirror of a residual stage, made of blocks of the encoder's own kind.

    * ResNet (``basic``/``bottleneck``): as many blocks of the same type and width at the level's resolution,
      then a 1x1 to the channels that entered the downsampling, the resize, and the channels of the level before
      (a 3x3 to the image at the last level).
    * A registered kind (the official HybridNet code's ``_make_reverse_layer``): n - 1 blocks at the level's
      width, then one block to the previous level's channels that also undoes the downsampling: a strided
      transposed block (``mode="transposed"``), or the resize (upsampling / unpooling) then a block.
    * ``own`` (any other family): n - 1 fresh copies of the encoder's last block of the stage (re-initialised),
      then the ResNet transition.

    A single-layer level (a stem) gets the resize only. ``mirror_blocks="resnet"`` builds every stage as
    bottlenecks or basic blocks, as hybridwrap < 0.3 did (old checkpoints)."""

    def __init__(self, level: Level, out_chs: int, mode: str, final: bool, norm: str = "batch",
                 stage: nn.Module | None = None, mirror_blocks: str = "own"):
        super().__init__()
        self.level, self.mode = level, mode
        chs, mid = level.channels, level.mid_channels
        kind = level.stage_kind
        if mirror_blocks == "resnet" and kind != "basic":
            kind = "bottleneck" if level.stage_blocks else None
        factory = MIRROR_BLOCKS.get(kind)
        self.transition = None
        if factory is not None and level.stage_blocks:
            self.blocks = nn.Sequential(*[factory(chs, chs, 1, norm) for _ in range(level.stage_blocks - 1)])
            last_out = chs if final else out_chs
            stride = level.factor[0] if mode == "transposed" else 1
            self.transition = factory(chs, last_out, stride, norm)
            self.pre = nn.Identity()
            self.post = nn.Conv2d(chs, out_chs, 3, padding=1) if final else nn.Identity()
            return
        if mode == "transposed" and level.factor != (1, 1):
            raise ConfigError(f"decoder mode 'transposed' needs strided blocks of the encoder's kind at "
                              f"{level.module!r} ({kind or 'a single layer'}): use 'nearest' or 'unpool' there.")
        if kind == "basic":
            blocks = [BasicBlock(chs, norm) for _ in range(level.stage_blocks)]
        elif kind == "bottleneck":
            blocks = [Bottleneck(chs, max(8, chs // 4), norm) for _ in range(level.stage_blocks)]
        elif kind == "own" and stage is not None:
            blocks = _own_blocks(stage, level)
        else:
            blocks = []
        self.blocks = nn.Sequential(*blocks)
        self.pre = nn.Identity() if chs == mid else conv_bn_act(chs, mid, 1, norm)
        if final:
            self.post = nn.Conv2d(mid, out_chs, 3, padding=1)
        else:
            self.post = nn.Identity() if mid == out_chs else conv_bn_act(mid, out_chs, 1, norm)

    def forward(self, x, switches=None, size=None):
        x = self.blocks(x)
        if self.transition is None:
            return self.post(_resize(self.pre(x), self.level, self.mode, switches, size))
        if self.mode == "transposed":
            x = self.transition(x)
            target = tuple(size or self.level.prev_size)
            if tuple(x.shape[-2:]) != target:  # an odd side (33 -> 17 -> 34): back to the encoder's size
                x = F.interpolate(x, size=target, mode="nearest")
        else:
            x = self.transition(_resize(x, self.level, self.mode, switches, size))
        return self.post(x)


def _own_blocks(stage: nn.Module, level: Level) -> list[nn.Module]:
    """stage_blocks - 1 re-initialised copies of the stage's last block, if it keeps the level's shape; else none."""
    seq = stage if isinstance(stage, nn.Sequential) else getattr(stage, "blocks", None)
    template = copy.deepcopy(seq[-1])
    template._forward_hooks.clear()
    probe = torch.zeros(1, level.channels, *level.size)
    try:
        with torch.no_grad():
            was = template.training
            template.eval()
            keeps_shape = template(probe).shape == probe.shape
            template.train(was)
    except Exception:  # noqa: BLE001 - a block that cannot run alone (needs extra inputs) is not copied
        keeps_shape = False
    if not keeps_shape:
        return []
    blocks = []
    for _ in range(level.stage_blocks - 1):
        block = copy.deepcopy(template)
        for m in block.modules():
            if hasattr(m, "reset_parameters") and m is not block:
                m.reset_parameters()
        blocks.append(block)
    return blocks


def _resize(x, level: Level, mode: str, switches, size):
    """Undo the level's downsampling: to ``size`` (this pass's) or the wrap-time size; nothing at factor 1."""
    size = tuple(size or level.prev_size)
    if level.factor == (1, 1):
        return x
    if mode == "transposed":
        raise ConfigError(f"decoder mode 'transposed' needs the `mirror` decoder of a backbone whose blocks can be "
                          f"strided (e.g. shake-shake); at {level.module!r} use 'nearest' or 'unpool'.")
    if mode == "unpool":
        return unpool(x, switches, size)
    return F.interpolate(x, size=size, mode=mode)


DEFAULT_BLOCK_DEPTH = 2  # decoder convolutions per level when the backbone declares no block_depth


def _mirror_tail(tail: tuple[ConvSpec, ...], norm: str) -> nn.Sequential:
    """Undo the tail's convolutions in reverse order: a size-keeping conv by a conv with the channels swapped,
    a valid (shrinking) conv by the transposed conv of the same kernel."""
    layers = []
    for c in reversed(tail):
        if c.in_size == c.out_size:
            layers.append(conv_bn_act(c.out_chs, c.in_chs, c.kernel[0], norm))
        else:
            layers.append(nn.Sequential(
                nn.ConvTranspose2d(c.out_chs, c.in_chs, c.kernel, padding=c.padding, bias=norm != "batch"),
                norm_layer(norm, c.in_chs), nn.LeakyReLU(0.1, inplace=True)))
    return nn.Sequential(*layers)


class MirrorDecoder(nn.Module):
    """D_c (``mode="nearest"``/``"bilinear"`` upsampling) or D_u (``mode="unpool"``).

    ``decoder``: ``generic`` (per level ``depth`` full-width 3x3 convolutions; None: each level's
    ``block_depth``, else 2), ``light`` (few narrow convolutions, :class:`LightBlock`) or ``mirror`` (the
    encoder's residual blocks, :class:`StageMirrorBlock`). ``tail="mirror"`` undoes the encoder's tail
    convolution by convolution when the layout allows it; ``"single"`` uses one layer.
    """

    def __init__(self, layout: EncoderLayout, mode: str = "nearest", depth: int | None = 2, norm: str = "batch",
                 tail: str = "single", decoder: str = "generic", encoder: nn.Module | None = None,
                 mirror_blocks: str = "own"):
        super().__init__()
        if mode not in DECODER_MODES:
            raise ValueError(f"decoder mode must be one of {', '.join(DECODER_MODES)}, got {mode!r}")
        if mode == "transposed" and decoder != "mirror":
            raise ConfigError(f"decoder mode 'transposed' undoes strides with the `mirror` decoder's strided blocks; "
                              f"the {decoder!r} decoder has none: set decoder='mirror', or use 'nearest' / 'unpool'.")
        self.mode, self.decoder = mode, decoder
        levels = layout.levels
        last = levels[-1]
        kind, k = bottleneck_resize(layout.features_size, last.size)
        if decoder != "generic" and kind == "same" and layout.features_channels == last.channels:
            self.bottleneck = nn.Identity()  # h_c is the last level itself (ResNet): nothing to undo
        elif tail == "mirror" and layout.tail is not None:
            self.bottleneck = _mirror_tail(layout.tail, norm)
        elif kind == "transpose":
            self.bottleneck = nn.Sequential(
                nn.ConvTranspose2d(layout.features_channels, last.channels, k, bias=norm != "batch"),
                norm_layer(norm, last.channels), nn.LeakyReLU(0.1, inplace=True))
        else:
            layers = [nn.Upsample(scale_factor=k, mode="nearest")] if kind == "upsample" else []
            self.bottleneck = nn.Sequential(*layers, conv_bn_act(layout.features_channels, last.channels, 1, norm))
        blocks = []
        for i in reversed(range(len(levels))):
            out = levels[i - 1].channels if i > 0 else layout.in_chans
            if decoder == "light":
                blocks.append(LightBlock(levels[i], out, mode, final=(i == 0), norm=norm))
            elif decoder == "mirror":
                stage = dict(encoder.named_modules()).get(levels[i].module) if encoder is not None else None
                blocks.append(StageMirrorBlock(levels[i], out, mode, final=(i == 0), norm=norm, stage=stage,
                                               mirror_blocks=mirror_blocks))
            else:
                d = depth if depth is not None else (levels[i].block_depth or DEFAULT_BLOCK_DEPTH)
                blocks.append(DecoderBlock(levels[i], out, mode, d, final=(i == 0), norm=norm))
        self.blocks = nn.ModuleList(blocks)  # deepest level first

    def forward(self, h: torch.Tensor, switches: list[torch.Tensor] | None = None,
                sizes: list[tuple[int, int]] | None = None):
        """Return the reconstruction and [ĥ_0, ..., ĥ_{L-1}] (ĥ_l shaped like the encoder's h_l).

        ``sizes[l]``: the spatial size that entered level l's downsampling in the encoder's forward pass (the
        image's for level 0), so that one wrapped model mirrors any input size the backbone takes.
        """
        x = self.bottleneck(h)
        h_hats = []
        n = len(self.blocks)
        for j, block in enumerate(self.blocks):
            level_index = n - 1 - j
            h_hats.append(x)
            x = block(x, switches[level_index] if switches is not None else None,
                      sizes[level_index] if sizes is not None else None)
        return x, h_hats[::-1]
