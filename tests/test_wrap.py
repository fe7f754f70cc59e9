"""wrap(): every plugin and eight timm families become a working two-branch HybridNet."""

import pytest
import timm
import torch

import hybridwrap
from conftest import assert_encoders_hold
from hybridwrap import ConfigError, InputSizeError, UnknownBackboneError, UnsupportedBackboneError

# (name, input size): the smallest size each family's reductions can mirror exactly
BACKBONES = [
    ("convlarge", 32),
    ("convlarge_stl10", 96),
    ("shakeshake26_2x96d", 32),
    ("places365_resnet50", 64),
    ("resnet18", 64),  # resnet
    ("resnet18d", 64),  # resnet-d (deep stem, avg-pool shortcut)
    ("convnext_atto", 64),  # convnext
    ("efficientnet_b0", 64),  # efficientnet
    ("mobilenetv3_small_050", 64),  # mobilenetv3
    ("regnetx_002", 64),  # regnet
    ("densenet121", 64),  # densenet
    ("vgg11", 64),  # vgg
]


@pytest.mark.parametrize("name,size", BACKBONES)
def test_wrap_forward_backward(name, size):
    torch.manual_seed(0)
    model = hybridwrap.wrap(name, num_classes=10, input_size=size).train()
    x = torch.randn(2, 3, size, size)
    out = model(x)
    assert out.logits.shape == (2, 10)
    assert out.x_hat.shape == x.shape
    torch.testing.assert_close(out.x_hat, out.x_hat_c + out.x_hat_u, rtol=0, atol=0)
    n_pairs = len(model.pair_levels)
    assert n_pairs >= 1
    assert [p.branch for p in out.pairs] == ["c"] * n_pairs + ["u"] * n_pairs
    for pair in out.pairs:
        assert pair.h.shape == pair.h_hat.shape, (pair.branch, pair.level)
        assert not model.layout.levels[pair.level].is_features  # no pair asks a layer to copy h_c
    loss = out.logits.logsumexp(1).mean() + (out.x_hat - x).pow(2).mean()
    loss = loss + sum((p.h_hat - p.h).pow(2).mean() for p in out.pairs)
    loss.backward()
    for part in (model.backbone, model.decoder_c, model.encoder_u, model.decoder_u):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def _pairs_by_module(model):
    return [model.layout.levels[i].module for i in model.pair_levels]


def test_resnet50_pairs_are_stage_outputs_without_the_degenerate_last_one():
    model = hybridwrap.wrap("resnet50", num_classes=10, input_size=64)
    assert [lv.module for lv in model.layout.levels] == ["act1", "layer1", "layer2", "layer3", "layer4"]
    assert model.layout.levels[-1].is_features  # layer4's output *is* h_c
    assert _pairs_by_module(model) == ["act1", "layer1", "layer2", "layer3"]
    out = model.train()(torch.randn(2, 3, 64, 64))
    assert [tuple(p.h.shape[1:]) for p in out.pairs if p.branch == "c"] == [(64, 32, 32), (256, 16, 16),
                                                                            (512, 8, 8), (1024, 4, 4)]
    # the legacy layout kept one pair per downsampling point, layer4 included
    legacy = hybridwrap.wrap("resnet50", num_classes=10, input_size=64, pairs="downsampling", decoder_tail="single")
    assert _pairs_by_module(legacy) == ["act1", "layer1", "layer2", "layer3", "layer4"]


def test_shakeshake_pairs_are_the_official_codes_stem_and_stages():
    # official ResNet32x32Hybrid.forward: pairs (hc0, hc1, hc2) = stem, stage 1 and stage 2 outputs, per branch
    model = hybridwrap.wrap("shakeshake26_2x96d", num_classes=10, base_width=8)
    assert [(lv.module, lv.factor) for lv in model.layout.levels] == [("stem", (1, 1)), ("stage1", (1, 1)),
                                                                       ("stage2", (2, 2)), ("stage3", (2, 2))]
    assert _pairs_by_module(model) == ["stem", "stage1", "stage2"]  # stage3's output is h_c
    out = model.train()(torch.randn(2, 3, 32, 32))
    for branch in "cu":
        assert [tuple(p.h.shape[1:]) for p in out.pairs if p.branch == branch] == [(16, 32, 32), (8, 32, 32),
                                                                                   (16, 16, 16)]
    for p in out.pairs:
        assert p.h.shape == p.h_hat.shape


def _block_kinds(module):
    names = {"BasicBlock", "Bottleneck", "ShakeDeconvBlock", "ConvNeXtBlock", "InvertedResidual", "ShakeBlock"}
    return {type(m).__name__ for m in module.modules()} & names


def test_shakeshake_mirror_decoder_is_made_of_shake_shake_deconvolution_blocks():
    model = hybridwrap.wrap("shakeshake26_2x96d", num_classes=10, decoder="mirror")  # the full 2x96d
    assert model.config.decoder == "mirror"
    assert not any(type(m).__name__ == "Bottleneck" for m in model.modules())
    assert _pairs_by_module(model) == ["stem", "stage1", "stage2"]
    for decoder in (model.decoder_c, model.decoder_u):
        assert _block_kinds(decoder) == {"ShakeDeconvBlock"}
        # _make_reverse_layer: per stage 3 blocks at the stage's width, then one to the previous width
        per_stage = [[(b.branch1[1].in_channels, b.branch1[4].out_channels) for b in blk.blocks] +
                     [(blk.transition.branch1[1].in_channels, blk.transition.branch1[4].out_channels)]
                     for blk in decoder.blocks if blk.transition is not None]
        assert per_stage == [[(384, 384)] * 3 + [(384, 192)], [(192, 192)] * 3 + [(192, 96)],
                             [(96, 96)] * 3 + [(96, 16)]]
        last = decoder.blocks[-1].post  # the stem's mirror: a 3x3 from 16 channels to the image
        assert (last.in_channels, last.out_channels, last.kernel_size) == (16, 3, (3, 3))


def test_transposed_mode_undoes_the_strides_with_strided_shake_shake_blocks():
    model = hybridwrap.wrap("shakeshake26_2x96d", num_classes=10, base_width=8, downsample="basic",
                            decoder_c_mode="transposed", decoder_u_mode="transposed")
    strides = [blk.transition.branch1[4].stride for blk in model.decoder_c.blocks if blk.transition is not None]
    assert strides == [(2, 2), (2, 2), (1, 1)]
    for size in ((32, 32), (33, 45)):  # an odd side comes back to the encoder's size
        out = model.train()(torch.randn(2, 3, *size))
        assert out.x_hat.shape == (2, 3, *size)
        assert all(p.h.shape == p.h_hat.shape for p in out.pairs)
    with pytest.raises(ConfigError, match="transposed.*mirror"):
        hybridwrap.wrap("resnet18", num_classes=10, input_size=64, decoder="light", decoder_c_mode="transposed")


@pytest.mark.parametrize("name,kinds", [("resnet18", {"BasicBlock"}), ("resnet50", {"Bottleneck"}),
                                        ("convnext_atto", {"ConvNeXtBlock"}), ("efficientnet_b0", {"InvertedResidual"})])
def test_mirror_decoder_builds_blocks_of_the_backbones_own_kind(name, kinds):
    model = hybridwrap.wrap(name, num_classes=10, input_size=64)
    assert model.config.decoder == "mirror"
    assert _block_kinds(model.decoder_c) == kinds
    out = model.train()(torch.randn(2, 3, 64, 64))
    assert out.x_hat.shape == (2, 3, 64, 64)
    # the copies are the decoder's own parameters, not the encoder's
    enc = {id(p) for p in model.backbone.parameters()}
    assert not enc & {id(p) for p in model.decoder_c.parameters()}


def test_old_configs_rebuild_the_resnet_style_mirror_they_were_saved_with():
    from hybridwrap.saved_configs import model_config_from_dict

    cfg = model_config_from_dict({"backbone": "convnext_atto", "num_classes": 10, "decoder": "mirror",
                                  "input_size": [64, 64]})
    assert cfg.mirror_blocks == "resnet"
    model = hybridwrap.build_from_config(cfg)
    assert _block_kinds(model.decoder_c) == {"Bottleneck"}


def test_convlarge_decoder_is_a_true_mirror():
    model = hybridwrap.wrap("convlarge", num_classes=10, width=0.25)
    convs = lambda m: [type(c).__name__ for c in m.modules() if isinstance(c, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    # the 3-layer tail (3x3 valid 64->128, 1x1 128->64, 1x1 64->32) is undone layer by layer, in reverse
    tail = model.decoder_c.bottleneck
    assert convs(tail) == ["Conv2d", "Conv2d", "ConvTranspose2d"]
    assert [(c.in_channels, c.out_channels) for c in tail.modules()
            if isinstance(c, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))] == [(32, 64), (64, 128), (128, 64)]
    # every level: 3 convolutions like the encoder block it mirrors
    assert [len(convs(b.post)) for b in model.decoder_c.blocks] == [3, 3]
    legacy = hybridwrap.wrap("convlarge", num_classes=10, width=0.25, decoder_depth=2, decoder_tail="single")
    assert [len(convs(b.post)) for b in legacy.decoder_c.blocks] == [2, 2]
    assert convs(legacy.decoder_c.bottleneck) == ["ConvTranspose2d"]


def test_config_without_the_new_fields_rebuilds_the_legacy_architecture():
    from hybridwrap.saved_configs import model_config_from_dict

    old = {"backbone": "convlarge", "num_classes": 10, "in_chans": 1, "input_size": [16, 16],
           "discriminative_decoder": True, "unsupervised_branch": True, "decoder_c_mode": "nearest",
           "decoder_u_mode": "unpool", "decoder_depth": 2, "decoder_norm": "batch", "backbone_kwargs": {}}
    cfg = model_config_from_dict(old)
    assert (cfg.decoder_tail, cfg.pairs, cfg.stability_head) == ("single", "downsampling", False)
    assert cfg.mean == (0.5,) and cfg.std == (0.5,)  # hybridwrap < 0.2 fed every model [-1, 1]


def test_normalization_comes_from_the_backbone_pretrained_cfg():
    assert hybridwrap.wrap("resnet18", input_size=64).config.mean == pytest.approx((0.485, 0.456, 0.406))
    assert hybridwrap.wrap("convlarge", width=0.25).config.std == (0.5, 0.5, 0.5)
    gray = hybridwrap.wrap("resnet18", input_size=64, in_chans=1).config
    assert gray.mean == pytest.approx(((0.485 + 0.456 + 0.406) / 3,))
    places = hybridwrap.wrap("places365_resnet50", num_classes=10, input_size=64).config
    assert places.mean == pytest.approx((0.485, 0.456, 0.406)) and places.std == pytest.approx((0.229, 0.224, 0.225))


@pytest.mark.parametrize("name, in_chans, kwargs", [("resnet50", 3, {}), ("resnet18", 1, {}),
                                                    ("convlarge", 1, {"width": 0.25}), ("efficientnet_b0", 3, {})])
def test_the_normalisation_is_read_from_timms_registry_without_building_the_backbone(name, in_chans, kwargs,
                                                                                        monkeypatch):
    from hybridwrap import builder
    from hybridwrap.config import ModelConfig

    config = ModelConfig(backbone=name, num_classes=10, in_chans=in_chans, backbone_kwargs=kwargs)
    built = builder._create_backbone(builder.get_backbone(name), config, False, None)
    expected = builder.pretrained_normalization(built.pretrained_cfg, in_chans)

    def no_build(*args, **kw):
        raise AssertionError("built a backbone to read its normalisation")

    monkeypatch.setattr(builder, "_create_backbone", no_build)
    resolved = builder.backbone_defaults(config)
    assert (resolved.mean, resolved.std) == expected


def test_a_plugins_own_factory_or_a_pretrained_cfg_override_is_built_to_read_its_normalisation():
    from hybridwrap import builder
    from hybridwrap.config import ModelConfig

    places = ModelConfig(backbone="places365_resnet50", num_classes=10)
    assert builder.registered_pretrained_cfg(builder.get_backbone(places.backbone), places) is None
    overlay = ModelConfig(backbone="resnet18", num_classes=10,
                          backbone_kwargs={"pretrained_cfg_overlay": {"mean": (0.1, 0.2, 0.3)}})
    assert builder.registered_pretrained_cfg(builder.get_backbone("resnet18"), overlay) is None
    assert builder.backbone_defaults(overlay).mean == pytest.approx((0.1, 0.2, 0.3))


def test_stability_head_is_trained_but_never_deployed():
    model = hybridwrap.wrap("convlarge", num_classes=10, width=0.25, stability_head=True)
    x = torch.randn(3, 3, 32, 32)
    out = model.train()(x)
    assert out.stability_logits.shape == out.logits.shape == (3, 10)
    model.eval()
    torch.testing.assert_close(model(x), model.backbone(x))  # the deployed classifier is the backbone alone


def _count(model):
    return sum(p.numel() for p in model.parameters())


def test_convlarge_parameter_count_matches_the_literature_table():
    # Laine & Aila 2017, Table 5 / Tarvainen & Valpola 2017, Table 5: conv layers (in, out, kernel),
    # each followed by BatchNorm (2 parameters per channel), then a 128 -> 10 fully connected layer.
    convs = [(3, 128, 3), (128, 128, 3), (128, 128, 3), (128, 256, 3), (256, 256, 3), (256, 256, 3),
             (256, 512, 3), (512, 256, 1), (256, 128, 1)]
    expected = sum(i * o * k * k + 2 * o for i, o, k in convs) + 128 * 10 + 10
    assert expected == 3_121_802
    assert _count(timm.create_model("convlarge", num_classes=10)) == expected
    wrapped = hybridwrap.wrap("convlarge", num_classes=10)
    assert _count(wrapped.backbone) == expected


def test_shakeshake_parameter_count_matches_gastaldi():
    # Gastaldi 2017, Table 1: "Shake-Shake 26 2x96d ... 26.2M" parameters on CIFAR-10.
    n = _count(timm.create_model("shakeshake26_2x96d", num_classes=10))
    assert round(n / 1e6, 1) == 26.2


def test_decoder_u_uses_switches_and_decoder_c_does_not():
    torch.manual_seed(0)
    model = hybridwrap.wrap("convlarge", num_classes=10, width=0.25).train()
    x = torch.randn(2, 3, 32, 32)
    with model._tap_u.recording() as store:
        h_u = model.encoder_u.forward_features(x)
    switches = model._tap_u.switches(store, x)
    assert [s.shape[1] for s in switches] == [lv.mid_channels for lv in model.layout.levels]
    shuffled = [s.flip(-1) for s in switches]  # other positions inside the same maps
    model.eval()  # deterministic BN for the comparison
    x_u, _ = model.decoder_u(h_u, switches)
    x_u2, _ = model.decoder_u(h_u, shuffled)
    assert not torch.allclose(x_u, x_u2)
    x_c, _ = model.decoder_c(h_u, switches)
    x_c2, _ = model.decoder_c(h_u, shuffled)
    torch.testing.assert_close(x_c, x_c2, rtol=0, atol=0)


def test_maxpool_switches_are_the_poolings_own_indices():
    model = hybridwrap.wrap("convlarge", num_classes=10, width=0.25).eval()
    pool_level = model.layout.levels[0]
    assert pool_level.switch_kind == "maxpool"
    x = torch.randn(2, 3, 32, 32)
    with model._tap_u.recording() as store:
        model.encoder_u.forward_features(x)
    switches = model._tap_u.switches(store, x)[0]
    pre = model.encoder_u.block1(x)
    _, idx = torch.nn.functional.max_pool2d(pre, 2, 2, return_indices=True)
    assert torch.equal(switches, idx)


def test_strided_levels_use_energy_switches_shared_by_channels():
    model = hybridwrap.wrap("resnet18", num_classes=10, input_size=64)
    kinds = [lv.switch_kind for lv in model.layout.levels]
    assert kinds == ["energy", "maxpool", "energy", "energy", "energy"]  # the stem max-pool is real


def test_branches_share_no_parameters():
    model = hybridwrap.wrap("resnet18", num_classes=10, input_size=64)
    c = {p.data_ptr() for p in model.backbone.parameters()}
    u = {p.data_ptr() for p in model.encoder_u.parameters()}
    assert c and u and not (c & u)
    assert model.encoder_u.fc.__class__.__name__ == "Identity"  # E_u has no classifier


def test_eval_path_runs_only_encoder_c_and_classifier():
    model = hybridwrap.wrap("resnet18", num_classes=10, input_size=64)
    calls = {"decoder_c": 0, "encoder_u": 0, "decoder_u": 0}
    for name in calls:
        for m in getattr(model, name).modules():
            m.register_forward_hook(lambda *_a, n=name: calls.__setitem__(n, calls[n] + 1))
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    logits = model(x)
    assert logits.shape == (2, 10)
    model.train()
    model.classify(x)
    assert calls == {"decoder_c": 0, "encoder_u": 0, "decoder_u": 0}
    model(x)
    assert all(v > 0 for v in calls.values())


@pytest.mark.parametrize("name,size", [("resnet18", 64), ("convlarge", 32)])
def test_classify_equals_the_bare_backbone(name, size):
    model = hybridwrap.wrap(name, num_classes=7, input_size=size).eval()
    bare = timm.create_model(name, num_classes=7).eval()
    bare.load_state_dict(model.backbone.state_dict())
    x = torch.randn(3, 3, size, size)
    torch.testing.assert_close(model.classify(x), bare(x), rtol=0, atol=0)
    torch.testing.assert_close(model(x), bare(x), rtol=0, atol=0)


def test_ablation_architectures():
    classifier = hybridwrap.wrap("convlarge", width=0.25, discriminative_decoder=False, unsupervised_branch=False)
    assert classifier.decoder_c is None and classifier.encoder_u is None
    out = classifier.train()(torch.randn(2, 3, 32, 32))
    assert out.x_hat is None and out.pairs == []
    auto = hybridwrap.wrap("convlarge", width=0.25, unsupervised_branch=False).train()
    out = auto(torch.randn(2, 3, 32, 32))
    assert out.x_hat_u is None and torch.equal(out.x_hat, out.x_hat_c) and {p.branch for p in out.pairs} == {"c"}


def test_grayscale_input():
    model = hybridwrap.wrap("resnet18", num_classes=3, in_chans=1, input_size=32).train()
    assert model(torch.randn(2, 1, 32, 32)).x_hat.shape == (2, 1, 32, 32)


# ----------------------------------------------------------------------------------- bad input


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(UnknownBackboneError, match=r"Unknown backbone 'resnet05'.*Did you mean.*resnet50"):
        hybridwrap.wrap("resnet05")
    with pytest.raises(UnknownBackboneError, match="list_backbones"):
        hybridwrap.wrap("convlargee")


def test_token_backbone_is_refused():
    with pytest.raises(UnsupportedBackboneError, match="not a spatial map.*CNN backbone"):
        hybridwrap.wrap("vit_tiny_patch16_224", input_size=224)


def test_input_size_the_backbone_cannot_take():
    with pytest.raises(InputSizeError, match="input_size the backbone accepts"):
        hybridwrap.wrap("convlarge", input_size=8)


@pytest.mark.parametrize("name", ["resnet50", "convlarge"])
def test_one_wrapped_model_trains_on_any_input_size(name):
    """Wrapped once (at its default size); the decoders follow the sizes recorded in each forward pass."""
    torch.manual_seed(0)
    model = hybridwrap.wrap(name, num_classes=10).train()
    sizes = [(32, 32), (64, 64), (33, 45)] + ([(224, 224)] if name == "resnet50" else [(96, 96)])
    for h, w in sizes:
        x = torch.randn(2, 3, h, w)
        out = model(x)
        assert out.x_hat.shape == x.shape and out.x_hat_c.shape == x.shape and out.x_hat_u.shape == x.shape
        for pair in out.pairs:
            assert pair.h_hat.shape == pair.h.shape, (h, w, pair.level)
        (out.logits.sum() + out.x_hat.pow(2).mean() + sum(p.h_hat.pow(2).mean() for p in out.pairs)).backward()
        model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("bad", [1, 0, -3, 2.5])
def test_num_classes_below_two(bad):
    with pytest.raises(ConfigError, match="num_classes must be an integer >= 2"):
        hybridwrap.wrap("convlarge", num_classes=bad)


def test_wrong_channels_at_forward():
    model = hybridwrap.wrap("convlarge", width=0.25)
    with pytest.raises(ConfigError, match=r"expects images of shape \(batch, 3, H, W\).*in_chans=1"):
        model(torch.randn(2, 1, 32, 32))
    with pytest.raises(InputSizeError, match="8x8 images are too small for convlarge.*Resize them"):
        model.train()(torch.randn(2, 3, 8, 8))


def test_bad_decoder_mode():
    with pytest.raises(ConfigError, match="decoder_u_mode must be"):
        hybridwrap.wrap("convlarge", decoder_u_mode="transpose")


# ---------------------------------------------------------------------------------- pretrained encoders


def _imagenet_like_file(tmp_path, fmt):
    """A 1000-class resnet18 checkpoint, as a user downloads one (safetensors, or a DataParallel .pth)."""
    from safetensors.torch import save_file

    net = timm.create_model("resnet18", num_classes=1000)
    path = tmp_path / f"r18_imagenet.{fmt}"
    if fmt == "safetensors":
        save_file(net.state_dict(), str(path))
    else:
        torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()}}, path)
    return net, path


@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_checkpoint_with_another_head_initialises_both_encoders(tmp_path, fmt):
    net, path = _imagenet_like_file(tmp_path, fmt)
    model = hybridwrap.wrap("resnet18", num_classes=10, input_size=64, checkpoint_path=str(path))
    assert_encoders_hold(model, net)
    assert model.backbone.fc.out_features == 10


def test_timm_pretrained_file_overlay_initialises_both_encoders(tmp_path):
    net, path = _imagenet_like_file(tmp_path, "safetensors")
    model = hybridwrap.wrap("resnet18", num_classes=10, input_size=64, pretrained=True,
                            pretrained_cfg_overlay=dict(file=str(path)))
    for encoder in (model.backbone, model.encoder_u):
        assert torch.equal(encoder.state_dict()["layer1.0.conv1.weight"], net.state_dict()["layer1.0.conv1.weight"])


def test_checkpoint_of_another_architecture_names_the_keys(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "r34.safetensors"
    save_file(timm.create_model("resnet34").state_dict(), str(path))
    with pytest.raises(hybridwrap.CheckpointError, match=r"does not fit this backbone: .*unexpected.*same architecture"):
        hybridwrap.wrap("resnet18", num_classes=10, input_size=64, checkpoint_path=str(path))
    with pytest.raises(hybridwrap.CheckpointError, match="not found"):
        hybridwrap.wrap("resnet18", num_classes=10, input_size=64, checkpoint_path=str(tmp_path / "nope.pth"))


@pytest.mark.parametrize("decoder", ["mirror", "light", "generic"])
def test_decoder_options_mirror_every_level(decoder):
    model = hybridwrap.wrap("resnet18", num_classes=10, input_size=64, decoder=decoder).train()
    assert model.config.decoder == decoder
    x = torch.randn(2, 3, 48, 80)
    out = model(x)
    assert out.x_hat.shape == x.shape
    assert all(p.h_hat.shape == p.h.shape for p in out.pairs)
    out.x_hat.pow(2).mean().backward()
    if decoder == "mirror":  # the encoder's stages, block for block: resnet18's BasicBlocks, two per stage
        from hybridwrap.decoders import BasicBlock

        assert sum(isinstance(m, BasicBlock) for m in model.decoder_u.modules()) == 8
    counts = {name: sum(p.numel() for p in getattr(model, name).parameters()) for name in ("decoder_c", "decoder_u")}
    assert counts["decoder_c"] == counts["decoder_u"]


def test_default_decoder_follows_the_backbone():
    assert hybridwrap.wrap("resnet18", num_classes=10, input_size=64).config.decoder == "mirror"
    assert hybridwrap.wrap("convlarge", num_classes=10, width=0.25).config.decoder == "generic"
    with pytest.raises(ConfigError, match="decoder must be one of generic, light, mirror"):
        hybridwrap.wrap("resnet18", num_classes=10, input_size=64, decoder="tiny")


def test_unpool_scatters_as_max_unpool2d_and_also_to_sizes_it_refuses():
    import torch.nn.functional as F

    from hybridwrap.mirror import unpool

    torch.manual_seed(0)
    a = torch.randn(2, 3, 8, 8)
    pooled, idx = F.max_pool2d(a, 2, 2, return_indices=True)
    assert torch.equal(unpool(pooled, idx, (8, 8)), F.max_unpool2d(pooled, idx, 2, 2, output_size=(8, 8)))
    odd = torch.randn(2, 3, 33, 45)
    pooled, idx = F.max_pool2d(odd, 2, 2, ceil_mode=True, return_indices=True)  # 17x23, as a padded stride-2 conv
    out = unpool(pooled, idx, (33, 45))
    assert out.shape == odd.shape
    assert torch.equal(out.flatten(2).gather(2, idx.flatten(2)), pooled.flatten(2))  # each value at its switch
