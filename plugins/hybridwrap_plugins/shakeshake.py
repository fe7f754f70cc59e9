"""Shake-shake ResNet-26 2x96d, as used by Mean Teacher and HybridNet on CIFAR-10, as a timm model.

Sources: Gastaldi, "Shake-Shake regularization" (arXiv:1705.07485, 2017): 26 layers, 2 residual branches
of width 96d, "Shake-Shake-Image" (one random α per image in the forward pass, an independent β in the
backward pass, α = 0.5 at test time); 26.2M parameters for 2x96d on CIFAR-10 (its Table 1). Tarvainen &
Valpola, "Mean teachers are better role models" (NeurIPS 2017, §3.4 and Appendix B.1), whose ResNet uses
this network with "shift-conv" downsampling: the shortcut of a strided block concatenates the input
subsampled at (0, 0) and at the shifted (1, 1) positions and mixes them with a grouped 1x1 conv + BN.

Layout, by default exactly Mean Teacher's ``cifar_shakeshake26`` (``ResNet32x32`` with shift-conv
downsampling): conv 3x3 3->16 (no BatchNorm), then 3 stages of 4 shake-shake blocks (96, 192, 384
channels; strides 1, 2, 2), each branch ReLU-conv3x3-BN-ReLU-conv3x3-BN; no activation after the last
stage; global average pooling; fully connected; convolutions initialised N(0, sqrt(2 / (k*k*out))), BatchNorm
to (1, 0). Mean Teacher's second head ("fc2") is hybridwrap's generic ``stability_head=True`` option.

Each difference from that network that hybridwrap < 0.2 had is an option: ``stem_norm=True`` (BatchNorm
after the stem), ``final_act=True`` (ReLU after the last stage), ``init="default"`` (PyTorch's default init).

HybridNet's Table 3 network, as the official HybridNet code builds it (ThomasRobertFr/hybridnet,
src/hybridnet/models/architectures.py: ``cifar_shakeshake26_hybrid`` -> ``ResNet32x32Hybrid``):
- ``downsample='basic'`` (a strided 1x1 conv + BN shortcut) instead of Mean Teacher's shift-conv: the configs
  of Table 3 set it (``backbone_kwargs: {downsample: basic}``);
- the intermediate pairs of Eq. 5 at the stem output and at the outputs of stages 1 and 2 (``hc0, hc1, hc2``
  in its ``forward``): ``feature_info`` lists the stem, so `pairs: stages` finds these three;
- the decoder mirrors each stage with ``ShakeShakeDeconvBlock``s (``_make_reverse_layer``: 3 blocks at the
  stage's width, then one strided transposed block to the previous width, shortcut a transposed 1x1 + BN) and
  ends with a transposed 3x3 from the stem's 16 channels to the image. :class:`ShakeDeconvBlock` is that block;
  it is registered as the ``shakeshake`` kind of hybridwrap's `mirror` decoder, the plugin's default.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from timm.models import build_model_with_cfg, register_model

# 0.2.0: Mean Teacher's exact network by default (no stem BN, no final ReLU, its init)
# 0.3.0: the stem is a feature_info level (the official pairs), `downsample` option, mirror decoder by default
VERSION = "0.3.0"


class ShakeShake(torch.autograd.Function):
    """out = α·a + (1-α)·b forward, gradients mixed with an independent β backward (per sample)."""

    @staticmethod
    def forward(ctx, a, b, training: bool):
        if training:
            alpha = torch.rand(a.shape[0], 1, 1, 1, device=a.device, dtype=a.dtype)
        else:
            alpha = torch.full((a.shape[0], 1, 1, 1), 0.5, device=a.device, dtype=a.dtype)
        ctx.training = training
        return alpha * a + (1 - alpha) * b

    @staticmethod
    def backward(ctx, grad):
        if ctx.training:
            beta = torch.rand(grad.shape[0], 1, 1, 1, device=grad.device, dtype=grad.dtype)
        else:
            beta = torch.full((grad.shape[0], 1, 1, 1), 0.5, device=grad.device, dtype=grad.dtype)
        return beta * grad, (1 - beta) * grad, None


class ShiftConvDownsample(nn.Module):
    def __init__(self, in_chs: int, out_chs: int):
        super().__init__()
        self.act = nn.ReLU()
        self.conv = nn.Conv2d(2 * in_chs, out_chs, 1, groups=2, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)

    def forward(self, x):
        x = torch.cat((x[:, :, 0::2, 0::2], x[:, :, 1::2, 1::2]), dim=1)
        return self.bn(self.conv(self.act(x)))


def _branch(in_chs, out_chs, stride):
    return nn.Sequential(
        nn.ReLU(), nn.Conv2d(in_chs, out_chs, 3, stride, 1, bias=False), nn.BatchNorm2d(out_chs),
        nn.ReLU(), nn.Conv2d(out_chs, out_chs, 3, 1, 1, bias=False), nn.BatchNorm2d(out_chs))


class ShakeBlock(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, stride: int, downsample: str = "shift_conv"):
        super().__init__()
        self.branch1 = _branch(in_chs, out_chs, stride)
        self.branch2 = _branch(in_chs, out_chs, stride)
        if stride != 1 and downsample == "shift_conv":
            self.shortcut = ShiftConvDownsample(in_chs, out_chs)
        elif stride != 1:  # "basic"
            self.shortcut = nn.Sequential(nn.Conv2d(in_chs, out_chs, 1, stride, bias=False), nn.BatchNorm2d(out_chs))
        elif in_chs != out_chs:
            self.shortcut = nn.Sequential(nn.Conv2d(in_chs, out_chs, 1, bias=False), nn.BatchNorm2d(out_chs))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        return self.shortcut(x) + ShakeShake.apply(self.branch1(x), self.branch2(x), self.training)


def _deconv_branch(in_chs, out_chs, stride, norm):
    def bn(c):
        return nn.BatchNorm2d(c) if norm == "batch" else nn.Identity()

    return nn.Sequential(
        nn.ReLU(), nn.ConvTranspose2d(in_chs, in_chs, 3, 1, 1, bias=norm != "batch"), bn(in_chs),
        nn.ReLU(), nn.ConvTranspose2d(in_chs, out_chs, 3, stride, 1, output_padding=stride - 1, bias=norm != "batch"),
        bn(out_chs))


class ShakeDeconvBlock(nn.Module):
    """The mirror of a ShakeBlock: two branches ReLU-deconv3x3(in, in)-BN-ReLU-deconv3x3(in, out, stride)-BN mixed by
    shake-shake, plus a shortcut (a transposed 1x1 + BN when the shape changes): the official HybridNet code's
    ShakeShakeDeconvBlock. ``stride`` > 1 undoes a downsampling (h -> stride * h)."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, norm: str = "batch"):
        super().__init__()
        self.branch1 = _deconv_branch(in_chs, out_chs, stride, norm)
        self.branch2 = _deconv_branch(in_chs, out_chs, stride, norm)
        if stride == 1 and in_chs == out_chs:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.ConvTranspose2d(in_chs, out_chs, 1, stride, output_padding=stride - 1, bias=norm != "batch"),
                nn.BatchNorm2d(out_chs) if norm == "batch" else nn.Identity())

    def forward(self, x):
        return self.shortcut(x) + ShakeShake.apply(self.branch1(x), self.branch2(x), self.training)


class ShakeShakeResNet(nn.Module):
    def __init__(self, num_classes: int = 10, in_chans: int = 3, depth: int = 26, base_width: int = 96,
                 stem_width: int = 16, global_pool: str = "avg", stem_norm: bool = False, final_act: bool = False,
                 init: str = "mean_teacher", downsample: str = "shift_conv", width: float = 1.0):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"shake-shake depth must be 6n+2 (e.g. 26), got {depth}")
        n = (depth - 2) // 6
        self.num_classes = num_classes
        if init not in ("mean_teacher", "default"):
            raise ValueError(f"shake-shake init must be 'mean_teacher' or 'default', got {init!r}")
        if downsample not in ("shift_conv", "basic"):
            raise ValueError(f"shake-shake downsample must be 'shift_conv' (Mean Teacher) or 'basic' (official "
                             f"HybridNet hybrid), got {downsample!r}")
        stem = [nn.Conv2d(in_chans, stem_width, 3, 1, 1, bias=False)]
        self.stem = nn.Sequential(*stem, nn.BatchNorm2d(stem_width)) if stem_norm else nn.Sequential(*stem)
        base_width = max(1, round(base_width * width))  # width 0.25 of 2x96d: 2x24d (narrower CPU studies)
        widths = [base_width, base_width * 2, base_width * 4]
        # the stem and the stages: the official HybridNet code's intermediate pairs are the stem's and the first two
        # stages' outputs (the last stage's output is h_c itself); block_kind names the `mirror` decoder's blocks
        self.feature_info = [dict(num_chs=stem_width, reduction=1, module="stem", block_kind="none")]
        prev = stem_width
        for i, (w, stride) in enumerate(zip(widths, (1, 2, 2)), start=1):
            blocks = [ShakeBlock(prev if j == 0 else w, w, stride if j == 0 else 1, downsample) for j in range(n)]
            self.add_module(f"stage{i}", nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=w, reduction=2 ** (i - 1), module=f"stage{i}", block_kind="shakeshake"))
            prev = w
        self.act = nn.ReLU() if final_act else nn.Identity()
        self.num_features = self.head_hidden_size = prev
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(prev, num_classes) if num_classes > 0 else nn.Identity()
        if init == "mean_teacher":
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                    nn.init.normal_(m.weight, 0.0, (2.0 / fan_out) ** 0.5)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    def get_classifier(self):
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None):
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x):
        x = self.stem(x)
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.act(x)

    def forward_head(self, x, pre_logits: bool = False):
        x = self.global_pool(x).flatten(1)
        return x if pre_logits else self.fc(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


default_cfgs = {
    "shakeshake26_2x96d": dict(url="", num_classes=10, input_size=(3, 32, 32), pool_size=None, crop_pct=1.0,
                               interpolation="bilinear", mean=(0.4914, 0.4822, 0.4465),
                               std=(0.2470, 0.2435, 0.2616), first_conv="stem.0", classifier="fc"),
}


@register_model
def shakeshake26_2x96d(pretrained: bool = False, **kwargs) -> ShakeShakeResNet:
    """Shake-shake ResNet-26 2x96d (26.2M parameters with a 10-way head)."""
    kwargs.setdefault("depth", 26)
    kwargs.setdefault("base_width", 96)
    return build_model_with_cfg(ShakeShakeResNet, "shakeshake26_2x96d", pretrained, **kwargs)


def register():
    from hybridwrap.decoders import register_mirror_block
    from hybridwrap.plugin_utils import timm_factory
    from hybridwrap.registry import register_backbone

    register_mirror_block("shakeshake", ShakeDeconvBlock)
    register_backbone("shakeshake26_2x96d", timm_factory("shakeshake26_2x96d"), default_input_size=(3, 32, 32),
                      description="Shake-shake ResNet-26 2x96d (Gastaldi 2017; Mean Teacher)", package="hybridwrap",
                      version=VERSION, timm_name="shakeshake26_2x96d", decoder="mirror")  # the official decoder
