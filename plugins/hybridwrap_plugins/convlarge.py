"""ConvLarge, the 13-layer CNN of the semi-supervised literature, as a timm model.

Sources: Rasmus et al., "Semi-Supervised Learning with Ladder Networks" (NeurIPS 2015, Table 4: "ConvPool-
Large"); Laine & Aila, "Temporal Ensembling for Semi-Supervised Learning" (ICLR 2017, Table 5); Tarvainen &
Valpola, "Mean teachers are better role models" (NeurIPS 2017, Table 5). HybridNet uses it for Table 1:

    Gaussian noise σ=0.15 (training only)
    3 x [conv 3x3, 128] -> max-pool 2x2 -> dropout 0.5
    3 x [conv 3x3, 256] -> max-pool 2x2 -> dropout 0.5
    conv 3x3, 512 (no padding) -> conv 1x1, 256 -> conv 1x1, 128
    global average pooling -> fully connected
    BatchNorm + LeakyReLU(0.1) after every convolution.

``width`` scales every channel count (1.0 is the paper's network; the CPU benchmarks use 0.25);
``norm='none'`` drops BatchNorm (for exact multi-process comparisons).

The STL-10 "ConvLarge-like" network of HybridNet (96 px) adds convolution + pooling blocks; the paper's
exact layout is in its supplementary material, which we do not have. Our reading, ``convlarge_stl10``:
blocks of 3 convs with 128, 256, 384 and 512 channels, each followed by max-pool + dropout
(96 -> 48 -> 24 -> 12 -> 6), then the same 3x3-valid / 1x1 / 1x1 tail (4x4 features).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from timm.models import build_model_with_cfg, register_model

VERSION = "0.2.0"  # 0.2.0: block_depth in feature_info (mirrored decoders)


class GaussianNoise(nn.Module):
    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x):
        if self.training and self.std > 0:
            return x + torch.randn_like(x) * self.std
        return x


def _conv(in_chs, out_chs, kernel=3, padding=1, norm="batch"):
    if norm == "batch":
        return [nn.Conv2d(in_chs, out_chs, kernel, padding=padding, bias=False), nn.BatchNorm2d(out_chs),
                nn.LeakyReLU(0.1, inplace=True)]
    if norm == "none":  # for exact multi-process comparisons (BatchNorm statistics are per process)
        return [nn.Conv2d(in_chs, out_chs, kernel, padding=padding), nn.LeakyReLU(0.1, inplace=True)]
    raise ValueError(f"ConvLarge norm must be 'batch' or 'none', got {norm!r}")


class ConvLarge(nn.Module):
    def __init__(self, num_classes: int = 10, in_chans: int = 3, width: float = 1.0, noise_std: float = 0.15,
                 drop_rate: float = 0.5, blocks: tuple[int, ...] = (128, 256), norm: str = "batch",
                 global_pool: str = "avg"):
        super().__init__()
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        chs = [max(1, round(c * width)) for c in blocks]
        tail = [max(1, round(c * width)) for c in (512, 256, 128)]
        self.noise = GaussianNoise(noise_std)
        self.feature_info = []
        prev = in_chans
        for i, c in enumerate(chs, start=1):
            layers = _conv(prev, c, norm=norm) + _conv(c, c, norm=norm) + _conv(c, c, norm=norm)
            self.add_module(f"block{i}", nn.Sequential(*layers))
            self.add_module(f"pool{i}", nn.MaxPool2d(2, 2))
            self.add_module(f"drop{i}", nn.Dropout(drop_rate))
            # block_depth: the mirrored decoder undoes the block's 3 convolutions with 3 of its own
            self.feature_info.append(dict(num_chs=c, reduction=2**i, module=f"pool{i}", block_depth=3))
            prev = c
        self.n_blocks = len(chs)
        self.tail = nn.Sequential(*(_conv(prev, tail[0], 3, 0, norm) + _conv(tail[0], tail[1], 1, 0, norm)
                                    + _conv(tail[1], tail[2], 1, 0, norm)))
        self.num_features = self.head_hidden_size = tail[2]
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def get_classifier(self):
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None):
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x):
        x = self.noise(x)
        for i in range(1, self.n_blocks + 1):
            x = getattr(self, f"block{i}")(x)
            x = getattr(self, f"pool{i}")(x)
            x = getattr(self, f"drop{i}")(x)
        return self.tail(x)

    def forward_head(self, x, pre_logits: bool = False):
        x = self.global_pool(x).flatten(1)
        return x if pre_logits else self.fc(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def _cfg(input_size):
    return dict(url="", num_classes=10, input_size=input_size, pool_size=None, crop_pct=1.0,
                interpolation="bilinear", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                first_conv="block1.0", classifier="fc")


default_cfgs = {"convlarge": _cfg((3, 32, 32)), "convlarge_stl10": _cfg((3, 96, 96))}


def _create(variant: str, pretrained: bool, **kwargs) -> ConvLarge:
    # timm's builder: pretrained=True loads what timm.create_model("hf-hub:..."/"local-dir:...") points at
    # (e.g. a classifier exported by `hybridwrap export`); there are no bundled weights.
    return build_model_with_cfg(ConvLarge, variant, pretrained, **kwargs)


@register_model
def convlarge(pretrained: bool = False, **kwargs) -> ConvLarge:
    """ConvLarge for 32x32 images (CIFAR-10, SVHN)."""
    return _create("convlarge", pretrained, **kwargs)


@register_model
def convlarge_stl10(pretrained: bool = False, **kwargs) -> ConvLarge:
    """ConvLarge-like for 96x96 images (STL-10): two more conv + pool blocks."""
    kwargs.setdefault("blocks", (128, 256, 384, 512))
    return _create("convlarge_stl10", pretrained, **kwargs)


def register():
    from hybridwrap.registry import register_backbone
    from hybridwrap.plugin_utils import timm_factory

    register_backbone("convlarge", timm_factory("convlarge"), default_input_size=(3, 32, 32),
                      description="ConvLarge (Ladder/TE/Mean Teacher), 32 px", package="hybridwrap",
                      version=VERSION, timm_name="convlarge", decoder="generic")  # plain conv stages: mirrored
    register_backbone("convlarge_stl10", timm_factory("convlarge_stl10"), default_input_size=(3, 96, 96),
                      description="ConvLarge-like for STL-10, 96 px", package="hybridwrap", version=VERSION,
                      timm_name="convlarge_stl10", decoder="generic")
