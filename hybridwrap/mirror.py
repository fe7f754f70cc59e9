"""Split a timm-style backbone at its pre-pooling layer and describe what a decoder must mirror.

The encoder E is the backbone's ``forward_features`` (everything before global pooling); the classifier C
is its ``forward_head``. The decoder is generated from the *levels* of the encoder: one level per
downsampling point, read from ``feature_info`` (timm's, or the one a plugin declares) and measured by one
dummy forward pass at the wrapped input size.

For level ``l`` the encoder produces ``h_l`` (``chs_l`` channels at size ``s_l``) just after its
downsampling; :mod:`hybridwrap.decoders` builds the blocks that undo each level.

Pooling switches for unpooling (D_u), chosen per level:

* ``maxpool``: the level's downsampling is a real ``nn.MaxPool2d`` (ConvLarge, VGG, the ResNet stem):
  the switches are that pooling's own per-channel argmax indices, recomputed from its input with the
  same kernel/stride/padding, so they are exactly the positions the pooling kept.
* ``energy``: the downsampling is strided (ResNet stages, ConvNeXt, EfficientNet...), so no switches
  exist. We define them as the argmax position, in each ``f x f`` window, of the channel energy
  ``sum_c a_c^2`` of the activation that entered the downsampling in E_u (the image itself for the first
  level). One spatial switch map is shared by all channels: it says *where* the strongest response of
  the window was, which is the spatial information unpooling is meant to carry back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import InputSizeError, UnsupportedBackboneError


@dataclass(frozen=True)
class PoolSpec:
    module: str
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    ceil_mode: bool


@dataclass(frozen=True)
class Level:
    """One downsampling point of the encoder."""

    module: str  # module whose output is h_l (just after the downsampling)
    channels: int
    size: tuple[int, int]  # spatial size of h_l
    prev_size: tuple[int, int]  # spatial size entering the downsampling
    mid_channels: int  # channels entering the downsampling (= channels unpooled in D_u)
    pool: PoolSpec | None  # real max-pool switches, else "energy" switches
    switch_source: str | None  # energy switches: module whose output entered the downsampling (None: image)
    block_depth: int | None = None  # convolutions of the encoder's block here (feature_info "block_depth")
    is_features: bool = False  # h_l is the encoder's output h_c itself (ResNet's last stage)
    stage_blocks: int = 0  # residual blocks of the stage ending here (0: a single layer, e.g. the stem)
    # what the `mirror` decoder rebuilds: "bottleneck" | "basic" (ResNet) | a kind a plugin registered (e.g.
    # "shakeshake") | "own" (a copy of the encoder's own block: any other family)
    stage_kind: str | None = None

    @property
    def factor(self) -> tuple[int, int]:
        """The stride of the downsampling (2 for 224 -> 112, and for 33 -> 17: padding rounds odd sizes up)."""
        return (max(1, round(self.prev_size[0] / self.size[0])), max(1, round(self.prev_size[1] / self.size[1])))

    @property
    def switch_kind(self) -> str:
        return "maxpool" if self.pool is not None else "energy"


@dataclass(frozen=True)
class ConvSpec:
    """One stride-1 convolution of the encoder's tail (between the last level and the features)."""

    in_chs: int
    out_chs: int
    kernel: tuple[int, int]
    padding: tuple[int, int]
    in_size: tuple[int, int]
    out_size: tuple[int, int]


@dataclass(frozen=True)
class EncoderLayout:
    in_chans: int
    input_size: tuple[int, int]
    levels: tuple[Level, ...]
    features_channels: int
    features_size: tuple[int, int]
    # the tail's convolutions in encoder order, when they form a plain chain that can be undone one by one
    # (ConvLarge: 3x3 valid, 1x1, 1x1); None when they cannot (the decoder then uses one layer)
    tail: tuple[ConvSpec, ...] | None = None


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _feature_info(model: nn.Module) -> list[dict]:
    info = getattr(model, "feature_info", None)
    if info is None:
        raise UnsupportedBackboneError(
            f"{type(model).__name__} has no `feature_info`, so its stages cannot be mirrored. "
            "Declare `feature_info` (a list of dicts with 'module', 'num_chs', 'reduction') on the model, "
            "as timm models do."
        )
    if hasattr(info, "get_dicts"):  # timm FeatureInfo object
        info = info.get_dicts()
    return [dict(d) for d in info]


@torch.no_grad()
def analyze_encoder(model: nn.Module, in_chans: int, input_size: tuple[int, int],
                    stages: bool = True) -> EncoderLayout:
    """Run one dummy forward pass and describe the levels of ``model.forward_features``.

    ``stages=True``: every stage of ``feature_info`` is a level, also one that keeps the resolution (factor
    1, e.g. the first stage of a CIFAR ResNet). ``stages=False``: one level per downsampling point.
    """
    info = _feature_info(model)
    modules = dict(model.named_modules())
    names = [d["module"] for d in info if d["module"] in modules]
    block_depth = {d["module"]: d.get("block_depth") for d in info}
    block_kind = {d["module"]: d.get("block_kind") for d in info}
    calls: list[tuple[str, str, torch.Size, torch.Size]] = []  # (kind, name, in_shape, out_shape)
    outputs: dict[str, torch.Tensor] = {}
    handles = []

    def tap(kind, name):
        def hook(_m, inputs, output):
            if torch.is_tensor(output) and output.dim() == 4:
                calls.append((kind, name, inputs[0].shape, output.shape))
                if kind == "feature":
                    outputs[name] = output

        return hook

    for name in names:
        handles.append(modules[name].register_forward_hook(tap("feature", name)))
    for name, m in modules.items():
        if isinstance(m, nn.MaxPool2d):
            handles.append(m.register_forward_hook(tap("pool", name)))
        elif isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(tap("conv", name)))
    was_training = model.training
    model.eval()
    probe = torch.randn(1, in_chans, *input_size, generator=torch.Generator().manual_seed(0))
    try:
        feats = model.forward_features(probe)
    except RuntimeError as exc:
        raise InputSizeError(
            f"The backbone cannot run on inputs of size {in_chans}x{input_size[0]}x{input_size[1]} ({exc}). "
            "Pass an input_size the backbone accepts (e.g. its default) and in_chans that match your images."
        ) from exc
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not torch.is_tensor(feats) or feats.dim() != 4:
        shape = tuple(feats.shape) if torch.is_tensor(feats) else type(feats).__name__
        raise UnsupportedBackboneError(
            f"{type(model).__name__}.forward_features returns {shape}, not a spatial map (B, C, H, W): "
            "HybridNet mirrors convolutional encoders only. Use a CNN backbone (e.g. resnet50, convnext_tiny, "
            "efficientnet_b0) instead of a token-based model such as a ViT."
        )

    levels: list[Level] = []
    prev_size = tuple(input_size)
    prev_channels, prev_source = in_chans, None
    last_call = -1
    for idx, (kind, name, in_shape, out_shape) in enumerate(calls):
        if kind != "feature":
            continue
        size = tuple(out_shape[-2:])
        if size == prev_size and stages:  # a stage that keeps the resolution: a level of factor 1
            levels.append(Level(name, out_shape[1], size, size, out_shape[1], None, prev_source,
                                block_depth.get(name)))
            prev_channels, prev_source, last_call = out_shape[1], name, idx
            continue
        if size == prev_size:  # no downsampling at this feature: it only sets what enters the next one
            prev_channels, prev_source, last_call = out_shape[1], name, idx
            continue
        if levels and size == levels[-1].size:  # same resolution as the last level: keep the later one
            levels[-1] = Level(name, out_shape[1], size, levels[-1].prev_size, levels[-1].mid_channels,
                               levels[-1].pool, levels[-1].switch_source, block_depth.get(name))
            prev_channels, prev_source, last_call = out_shape[1], name, idx
            continue
        _check_mirrorable(prev_size, size, in_chans, input_size, name)
        pool = None
        # the pooling that made this level: called since the previous feature, up to the level's own module
        # (whose hooks fire right after the feature hook when the level module *is* the pooling)
        window = calls[last_call + 1 : idx] + [c for c in calls[idx + 1 : idx + 2] if c[1] == name]
        for kind2, pname, pin, pout in window:
            if kind2 == "pool" and tuple(pin[-2:]) == prev_size and tuple(pout[-2:]) == size:
                m = modules[pname]
                pool = PoolSpec(pname, _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding),
                                _pair(m.dilation), bool(m.ceil_mode))
                mid = pout[1]
        if pool is None:
            mid = prev_channels if prev_source is not None else out_shape[1]
        levels.append(Level(name, out_shape[1], size, prev_size, mid, pool, prev_source, block_depth.get(name)))
        prev_size, prev_channels, prev_source, last_call = size, out_shape[1], name, idx

    if not levels:
        raise UnsupportedBackboneError(
            f"{type(model).__name__} never downsamples at input size {input_size}: nothing to mirror. "
            "Check the backbone's feature_info, or wrap a CNN that reduces resolution."
        )
    f_size = tuple(feats.shape[-2:])
    last = levels[-1].size
    if f_size != last and not (bottleneck_resize(f_size, last)):
        raise InputSizeError(
            f"The features ({f_size}) cannot be mirrored back to the last level ({last}) at input size "
            f"{tuple(input_size)}. Use an input size that is a multiple of {_total_reduction(levels, input_size)}."
        )
    last_module = levels[-1].module
    if outputs.get(last_module) is feats or (outputs[last_module].shape == feats.shape
                                             and torch.equal(outputs[last_module], feats)):
        levels[-1] = dataclasses.replace(levels[-1], is_features=True)
    last_index = max(i for i, c in enumerate(calls) if c[0] == "feature" and c[1] == last_module)
    tail = _tail_chain([c for c in calls[last_index + 1:] if c[0] == "conv"], modules, levels[-1],
                       feats.shape[1], f_size)
    levels = [dataclasses.replace(lv, **dict(zip(("stage_blocks", "stage_kind"),
                                                 _stage_blocks(modules[lv.module], block_kind.get(lv.module)))))
              for lv in levels]
    return EncoderLayout(in_chans, tuple(input_size), tuple(levels), feats.shape[1], f_size, tail)


def _stage_blocks(module: nn.Module, declared: str | None = None) -> tuple[int, str | None]:
    """(number of residual blocks, their kind) of the stage a level ends with.

    A backbone may declare the kind in feature_info (``block_kind``: a kind registered with
    :func:`register_mirror_block`, or ``"none"`` for a single layer such as a stem). Otherwise a ResNet layer is a
    Sequential of Bottleneck (conv1..conv3) or BasicBlock (conv1, conv2) blocks, other families' stages hold
    `.blocks`, and a block of any other family is ``"own"``: the `mirror` decoder copies it."""
    if declared == "none":
        return 0, None
    seq = module if isinstance(module, nn.Sequential) else getattr(module, "blocks", None)
    if not isinstance(seq, nn.Sequential) or len(seq) == 0:
        return 0, None
    first = seq[0]
    if declared is not None:
        return len(seq), declared
    if not any(True for _ in first.children()):  # a single layer (a stem convolution), not a block
        return 0, None
    if hasattr(first, "conv3"):
        return len(seq), "bottleneck"
    if hasattr(first, "conv2"):
        return len(seq), "basic"
    return len(seq), "own"


MAX_TAIL_CONVS = 4


def _tail_chain(conv_calls, modules, last: Level, features_channels: int,
                features_size: tuple[int, int]) -> tuple[ConvSpec, ...] | None:
    """The tail's convolutions if they form a short plain chain from the last level to the features."""
    if len(conv_calls) > MAX_TAIL_CONVS:
        return None
    chain, chs, size = [], last.channels, last.size
    for _kind, name, in_shape, out_shape in conv_calls:
        m = modules[name]
        if _pair(m.stride) != (1, 1) or m.groups != 1 or _pair(m.dilation) != (1, 1) or m.padding_mode != "zeros":
            return None
        if isinstance(m.padding, str) or in_shape[1] != chs or tuple(in_shape[-2:]) != size:
            return None
        chain.append(ConvSpec(m.in_channels, m.out_channels, _pair(m.kernel_size), _pair(m.padding), size,
                              tuple(out_shape[-2:])))
        chs, size = out_shape[1], tuple(out_shape[-2:])
    if chs != features_channels or size != tuple(features_size):
        return None
    return tuple(chain)


def _total_reduction(levels, input_size) -> int:
    return max(1, input_size[0] // levels[-1].size[0]) if levels else 1


def _check_mirrorable(prev_size, size, in_chans, input_size, name):
    """A level must downsample (the decoder resizes back to the size recorded in each forward pass, so sizes
    need not divide: 33 -> 17 is undone to 33)."""
    for p, s in zip(prev_size, size):
        if s == 0 or s > p:
            raise InputSizeError(
                f"At input size {in_chans}x{input_size[0]}x{input_size[1]} the encoder goes from {prev_size} to "
                f"{size} at {name!r}, which is not a downsampling the decoder can undo. Use a larger input_size "
                "(the backbone's default, e.g. 224) to wrap it; the wrapped model then takes other sizes too."
            )


def bottleneck_resize(src: tuple[int, int], dst: tuple[int, int]):
    """How the decoder's first block goes from the feature map to the last level: None if impossible."""
    if src == dst:
        return ("same", 1)
    grow = (dst[0] - src[0], dst[1] - src[1])
    if grow[0] == grow[1] and 0 < grow[0] <= 6:  # a valid (unpadded) conv: mirror with a transposed conv
        return ("transpose", grow[0] + 1)
    if all(d % s == 0 for s, d in zip(src, dst)) and dst[0] // src[0] == dst[1] // src[1]:
        return ("upsample", dst[0] // src[0])
    return None


# --------------------------------------------------------------------------------------- switches


def pooling_switches(level: Level, pool_input: torch.Tensor | None, source: torch.Tensor,
                     shared: bool = False) -> torch.Tensor:
    """Indices for unpooling at ``level`` (see the module docstring for the definition). ``shared``: one map for
    every channel also at a real max-pooling (the argmax of the channel energy in each of its windows), for
    decoders that unpool fewer channels than the pooling had (`light`)."""
    if level.pool is not None:
        p = level.pool
        x = pool_input.detach()
        if shared:
            x = x.float().pow(2).sum(1, keepdim=True)
        _, idx = F.max_pool2d(x, p.kernel_size, p.stride, p.padding, p.dilation, p.ceil_mode, return_indices=True)
        return idx
    energy = source.detach().float().pow(2).sum(1, keepdim=True)
    # ceil_mode: an odd side (33) was downsampled to 17 by a padded strided layer; the last window is partial
    _, idx = F.max_pool2d(energy, level.factor, level.factor, ceil_mode=True, return_indices=True)
    return idx  # (B, 1, h, w): shared by every channel


def unpool(x: torch.Tensor, switches: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Unpool ``x`` to ``size``, the size that entered the downsampling in this forward pass."""
    if switches.shape[1] == 1 and x.shape[1] != 1:
        switches = switches.expand(-1, x.shape[1], -1, -1)
    if switches.shape[-2:] != x.shape[-2:]:  # a floor-rounding stride (33 -> 8 at stride 4) met ceil switches
        x = F.interpolate(x, size=switches.shape[-2:], mode="nearest")
    # what max_unpool2d does, without its rule that the output size follow from kernel and stride: scatter each
    # value to the flat position its switch names in the map that entered the downsampling
    b, c = x.shape[:2]
    flat = x.new_zeros(b, c, size[0] * size[1]).scatter(2, switches.reshape(b, c, -1), x.reshape(b, c, -1))
    return flat.view(b, c, *size)
