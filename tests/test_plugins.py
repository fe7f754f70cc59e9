"""Plugin discovery through entry points, and the Places365 checkpoint loader."""

import sys
import textwrap

import pytest
import timm
import torch

import hybridwrap
from conftest import assert_encoders_hold
from hybridwrap import CheckpointError
from hybridwrap import registry


def test_first_party_plugins_come_from_entry_points():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group=registry.ENTRY_POINT_GROUP)}
    assert {"convlarge", "shakeshake", "places365"} <= names
    assert {"convlarge", "convlarge_stl10", "shakeshake26_2x96d", "places365_resnet50"} <= set(hybridwrap.list_backbones())


def _install_distribution(root, monkeypatch, name: str, entry_point: str) -> None:
    """A real installed distribution: a .dist-info with an entry point, on sys.path; discovery starts over."""
    dist = root / f"{name.replace('-', '_')}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[hybridwrap.backbones]\n{entry_point}\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(registry, "_discovered", False)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_third_party_plugin_installed_only_through_an_entry_point(tmp_path, monkeypatch):
    (tmp_path / "tiny_hw_plugin.py").write_text(textwrap.dedent("""
        import torch.nn as nn
        from hybridwrap import register_backbone

        class TinyNet(nn.Module):
            def __init__(self, num_classes=10, in_chans=3, **_):
                super().__init__()
                self.stem = nn.Sequential(nn.Conv2d(in_chans, 8, 3, padding=1), nn.ReLU())
                self.down = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
                self.feature_info = [dict(module="stem", num_chs=8, reduction=1),
                                     dict(module="down", num_chs=16, reduction=2)]
                self.num_features = 16
                self.fc = nn.Linear(16, num_classes)
            def reset_classifier(self, num_classes, global_pool=None):
                self.fc = nn.Linear(16, num_classes) if num_classes else nn.Identity()
            def forward_features(self, x):
                return self.down(self.stem(x))
            def forward_head(self, x, pre_logits=False):
                x = x.mean((2, 3))
                return x if pre_logits else self.fc(x)

        def register():
            # no package= / version=: hybridwrap reads them from the distribution of the entry point
            register_backbone("tiny_hw_net", lambda pretrained=False, **kw: TinyNet(**kw),
                              default_input_size=(3, 16, 16))
    """))
    _install_distribution(tmp_path, monkeypatch, "tiny-hw-plugin", "tiny = tiny_hw_plugin:register")
    model = hybridwrap.wrap("tiny_hw_net", num_classes=4).train()
    out = model(torch.randn(2, 3, 16, 16))
    assert out.x_hat.shape == (2, 3, 16, 16)
    assert "tiny_hw_net" in hybridwrap.list_backbones()
    from hybridwrap.serialization import config_dict

    saved = config_dict(model.config)  # what config.json records, so from_pretrained elsewhere names the install
    assert (saved["backbone_package"], saved["backbone_version"]) == ("tiny-hw-plugin", "0.1")
    sys.modules.pop("tiny_hw_plugin", None)


def test_broken_plugin_warns_and_names_the_fix(tmp_path, monkeypatch):
    _install_distribution(tmp_path, monkeypatch, "broken-hw", "broken = no_such_module_xyz:register")
    with pytest.warns(UserWarning, match="plugin 'broken'.*failed to load.*Reinstall or uninstall"):
        names = hybridwrap.list_backbones()
    assert "convlarge" in names


# ---------------------------------------------------------------------------------- Places365


def _as_python2_strings(pickled: bytes) -> bytes:
    """The same pickle with every str written as Python 2 wrote its byte strings (SHORT_BINSTRING, latin-1):
    Python 3 reads them only when told an encoding."""
    import pickletools

    ops = list(pickletools.genops(pickled))
    out = bytearray()
    for i, (op, arg, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(pickled)
        if op.name in ("BINUNICODE", "SHORT_BINUNICODE") and len(arg) < 256 and all(ord(c) < 256 for c in arg):
            out += b"U" + bytes([len(arg)]) + arg.encode("latin-1")
        else:
            out += pickled[pos:end]
    return bytes(out)


def _places_like_checkpoint(path, arch="resnet50", legacy=True):
    """A file laid out like resnet50_places365.pth.tar (2017): DataParallel keys, 365-way head, metadata, no
    BatchNorm ``num_batches_tracked`` buffers (PyTorch added them in 0.4.1, after the release), and (legacy) the
    pre-zip torch format whose strings are Python 2 byte strings, one of them not ASCII."""
    import io
    import pickletools

    net = timm.create_model(arch, num_classes=365)
    state = {"module." + k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    obj = {"epoch": 90, "arch": arch, "state_dict": state, "best_prec1": 54.74, "note": "Places365 \xe9t\xe9 2017"}
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy, pickle_protocol=2)
    if legacy:  # magic, protocol, sys_info, the object, the storage keys: five pickles, then the raw storages
        data, parts, start = path.read_bytes(), [], 0
        stream = io.BytesIO(data)
        for _ in range(5):
            list(pickletools.genops(stream))  # reads one pickle, up to and including its STOP
            parts.append(data[start:stream.tell()])
            start = stream.tell()
        path.write_bytes(b"".join(_as_python2_strings(p) for p in parts) + data[start:])
    return net


def test_places365_checkpoint_loads_into_both_encoders(tmp_path):
    path = tmp_path / "resnet50_places365.pth.tar"
    net = _places_like_checkpoint(path)
    with pytest.raises(UnicodeDecodeError):  # the fixture has the release's Python 2 strings
        torch.load(path, weights_only=True)
    model = hybridwrap.wrap("places365_resnet50", num_classes=10, input_size=64, checkpoint_path=str(path))
    assert_encoders_hold(model, net)
    assert model.backbone.fc.out_features == 10


@pytest.mark.parametrize("hub_up", [True, False], ids=["hub-reachable", "offline"])
def test_places365_missing_file(hub_up, monkeypatch):
    """The plugin's own advice, whether or not the Hub answers (offline, the library looks in the cache first)."""
    from hybridwrap import builder

    monkeypatch.setattr(builder, "hub_reachable", lambda: hub_up)
    with pytest.raises(CheckpointError, match="not found.*resnet50_places365.pth.tar"):
        hybridwrap.wrap("places365_resnet50", input_size=64, checkpoint_path="/nonexistent/places.pth.tar")
    with pytest.raises(CheckpointError, match="pass checkpoint_path="):
        hybridwrap.wrap("places365_resnet50", input_size=64, pretrained=True)


def test_places365_not_a_resnet50(tmp_path):
    path = tmp_path / "resnet18_places365.pth.tar"
    _places_like_checkpoint(path, arch="resnet18")
    with pytest.raises(CheckpointError, match="is not a ResNet-50 checkpoint"):
        hybridwrap.wrap("places365_resnet50", input_size=64, checkpoint_path=str(path))


class _Payload:  # anything that is not a tensor container needs the full (unsafe) unpickler
    def __reduce__(self):
        return (print, ("this would run at load time",))


def test_places365_refuses_unsafe_unpickling(tmp_path, capsys):
    path = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": {}, "payload": _Payload()}, path)
    with pytest.raises(CheckpointError, match="unsafe unpickling.*never unpickles arbitrary code"):
        hybridwrap.wrap("places365_resnet50", input_size=64, checkpoint_path=str(path))
    assert "this would run" not in capsys.readouterr().out
