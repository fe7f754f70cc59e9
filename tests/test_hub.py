"""Publish and reuse through a real HTTP server speaking the Hub API (tests/hub_server.py), not mocks."""

import hashlib
import json
import os
import shutil
import subprocess

import pytest
import timm
import torch
from safetensors.torch import load_file

import hybridwrap
from conftest import ENV_TESTS, HUB_TOKEN, REPO, SHARED_CIFAR, assert_encoders_hold, cli, write_config
from hybridwrap import CheckpointError, ConfigError
from hybridwrap.config import load_config
from hybridwrap.hub import HubError, push_run
from hybridwrap.train import train

ENV = ENV_TESTS  # the CLI subprocesses' environment, one definition (conftest)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished tiny ConvLarge run (digits, Mean Teacher)."""
    root = tmp_path_factory.mktemp("run")
    cfg = load_config(write_config(root / "cfg.yaml", max_steps=3, eval_every=100, checkpoint_every=100))
    cfg.output_dir = str(root / "run")
    train(cfg)
    return root / "run"


def _tree_digest(path):
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _assert_same_model(a, b, x):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    a.eval(), b.eval()
    torch.testing.assert_close(a.classify(x), b.classify(x), rtol=0, atol=0)
    oa, ob = a(x, reconstruct=True), b(x, reconstruct=True)
    torch.testing.assert_close(oa.x_hat, ob.x_hat, rtol=0, atol=0)


def test_push_run_then_from_pretrained_convlarge_and_offline_cache(hub, run_dir):
    before = _tree_digest(run_dir)
    url = push_run(run_dir, "tester/hybridnet-convlarge-digits", token=HUB_TOKEN)
    assert "tester/hybridnet-convlarge-digits" in url
    assert _tree_digest(run_dir) == before  # the run was only read
    stored = hub.repos["tester/hybridnet-convlarge-digits"].commits[-1][1]
    assert {"model.safetensors", "teacher.safetensors", "config.json", "README.md", "metrics.json",
            "reconstructions.png", "labels.json", "train_config.json"} <= set(stored)
    assert not any(HUB_TOKEN.encode() in data for data in stored.values())

    local, local_teacher = hybridwrap.from_pretrained(run_dir, with_teacher=True)
    remote, remote_teacher = hybridwrap.from_pretrained("tester/hybridnet-convlarge-digits", with_teacher=True)
    x = torch.randn(2, 1, 16, 16)
    _assert_same_model(local, remote, x)
    for k, v in local_teacher.state_dict().items():
        assert torch.equal(v, remote_teacher.state_dict()[k])

    hub.stop()
    try:
        cached = hybridwrap.from_pretrained("tester/hybridnet-convlarge-digits", local_files_only=True)
        _assert_same_model(local, cached, x)
        with pytest.raises(HubError, match="not in the local cache"):
            hybridwrap.from_pretrained("tester/never-downloaded", local_files_only=True)
    finally:
        hub.start()


def test_push_to_hub_timm_backbone_private_repo(hub, tmp_path):
    torch.manual_seed(0)
    model = hybridwrap.wrap("resnet18", num_classes=4, input_size=32).eval()
    hybridwrap.push_to_hub(model, "tester/hybridnet-resnet18", token=HUB_TOKEN, private=True)
    with pytest.raises(HubError, match="no such run directory, and no such Hub repo \\(or it is private"):
        hybridwrap.from_pretrained("tester/hybridnet-resnet18")
    again = hybridwrap.from_pretrained("tester/hybridnet-resnet18", token=HUB_TOKEN, revision="main",
                                       cache_dir=tmp_path / "cache")
    _assert_same_model(model, again, torch.randn(2, 3, 32, 32))
    assert any((tmp_path / "cache").rglob("model.safetensors"))


def test_exported_classifier_loads_in_timm_from_the_hub(hub, run_dir, tmp_path):
    model, teacher = hybridwrap.from_pretrained(run_dir, with_teacher=True)
    model.eval()
    out = tmp_path / "classifier"
    done = subprocess.run(cli("export", str(run_dir), "--output-dir", str(out), "--repo-id",
                              "tester/hybridnet-convlarge-digits-classifier", "--token", HUB_TOKEN),
                          capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    import hybridwrap_plugins.convlarge  # noqa: F401  (the one import timm needs, named in the card)

    net = timm.create_model("hf-hub:tester/hybridnet-convlarge-digits-classifier", pretrained=True).eval()
    x = torch.randn(3, 1, 16, 16)
    torch.testing.assert_close(net(x), model.classify(x), rtol=0, atol=0)
    bare = timm.create_model("convlarge", num_classes=10, in_chans=1, **model.config.backbone_kwargs)
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in bare.parameters())
    assert json.loads((out / "config.json").read_text())["hybridwrap_import"] == "hybridwrap_plugins.convlarge"

    hybridwrap.export_classifier(model, tmp_path / "teacher", teacher=teacher)
    local = timm.create_model(f"local-dir:{tmp_path / 'teacher'}", pretrained=True).eval()
    torch.testing.assert_close(local(x), teacher.eval()(x), rtol=0, atol=0)


def test_exported_timm_classifier_costs_exactly_the_backbone(tmp_path):
    model = hybridwrap.wrap("resnet18", num_classes=10, input_size=64).eval()
    hybridwrap.export_classifier(model, tmp_path / "r18")
    net = timm.create_model(f"local-dir:{tmp_path / 'r18'}", pretrained=True).eval()
    bare = timm.create_model("resnet18", num_classes=10)
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in bare.parameters())
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(net(x), model.classify(x), rtol=0, atol=0)


def test_card_parses_and_carries_the_run_metrics(run_dir, tmp_path):
    from huggingface_hub import ModelCard

    out = tmp_path / "card" / "README.md"
    done = subprocess.run(cli("card", str(run_dir), "--repo-id", "tester/x", "--output", str(out)),
                          capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    card = ModelCard.load(out)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    values = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert values == {"top-1 accuracy (student)": round(metrics["test_acc"], 4),
                      "top-1 accuracy (teacher)": round(metrics["teacher_test_acc"], 4)}
    assert card.data.library_name == "hybridwrap" and {"semi-supervised", "hybridnet"} <= set(card.data.tags)
    assert f"{metrics['test_acc']:.2f}%" in card.text and "robert2018hybridnet" in card.text
    assert "import hybridwrap_plugins.convlarge" in card.text and "hf_" not in card.content
    assert (out.parent / "reconstructions.png").is_file()


def test_push_of_a_run_without_metrics_says_so(hub, run_dir, tmp_path):
    from huggingface_hub import ModelCard

    bare = tmp_path / "no-metrics"
    shutil.copytree(run_dir, bare)
    (bare / "metrics.json").unlink()
    push_run(bare, "tester/no-metrics", token=HUB_TOKEN, picture=False)
    readme = hub.repos["tester/no-metrics"].commits[-1][1]["README.md"].decode()
    card = ModelCard(readme)
    assert not card.data.eval_results and "This run has no evaluation" in readme


def test_cli_push_and_visualize(hub, run_dir, tmp_path):
    done = subprocess.run(cli("push", str(run_dir), "--repo-id", "tester/cli-push", "--token", HUB_TOKEN,
                              "--private"), capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    assert hub.repos["tester/cli-push"].private
    assert HUB_TOKEN not in done.stdout + done.stderr
    png = tmp_path / "fig4.png"
    done = subprocess.run(cli("visualize", str(run_dir), "--output", str(png), "--num", "4"),
                          capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    from PIL import Image

    assert Image.open(png).size[1] == 4 * (64 + 2)  # rows x, x̂_c, x̂_u, x̂


def test_token_from_the_environment(hub, run_dir, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    push_run(run_dir, "tester/env-token", picture=False)
    assert "tester/env-token" in hub.repos


# ----------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("repo_id", ["noslash", "a/b/c", "/name", "ns/", "ns/na me"])
def test_bad_repo_id(run_dir, repo_id):
    with pytest.raises(ConfigError, match="is not of the form namespace/name"):
        push_run(run_dir, repo_id, token=HUB_TOKEN)


def test_no_token(run_dir):
    with pytest.raises(ConfigError, match="No Hugging Face token: pass --token, set HF_TOKEN"):
        push_run(run_dir, "tester/x")
    done = subprocess.run(cli("push", str(run_dir), "--repo-id", "tester/x"), capture_output=True, text=True, env=ENV)
    assert done.returncode == 2 and "No Hugging Face token" in done.stderr and "Traceback" not in done.stderr


def test_failed_push_leaves_the_run_untouched(hub, run_dir):
    before = _tree_digest(run_dir)
    with pytest.raises(HubError, match=r"failed \(HTTP 401\).*write access.*Nothing local was changed"):
        push_run(run_dir, "tester/denied", token="hf_wrong")
    assert _tree_digest(run_dir) == before


def test_directory_without_config_or_weights(tmp_path, run_dir):
    with pytest.raises(CheckpointError, match="has no config.json: it is not a saved HybridNet"):
        hybridwrap.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="not a hybridwrap run directory.*finished `hybridwrap train`"):
        push_run(tmp_path, "tester/x", token=HUB_TOKEN)
    model_dir = tmp_path / "m"
    shutil.copytree(run_dir / "model", model_dir)
    (model_dir / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights"):
        hybridwrap.from_pretrained(model_dir)


def _edited_copy(run_dir, target, edit):
    """A copy of the run's saved model whose config.json is ``edit(config)``."""
    shutil.copytree(run_dir / "model", target)
    cfg = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps(edit(cfg)))
    return target


def test_config_from_a_newer_hybridwrap_or_missing_plugin(tmp_path, run_dir):
    newer = tmp_path / "newer"
    shutil.copytree(run_dir / "model", newer)
    cfg = json.loads((newer / "config.json").read_text())
    (newer / "config.json").write_text(json.dumps({**cfg, "format_version": 99, "hybridwrap_version": "9.0"}))
    with pytest.raises(CheckpointError, match="written by hybridwrap 9.0, newer than this .*pip install -U hybridwrap"):
        hybridwrap.from_pretrained(newer)
    future_key = _edited_copy(run_dir, tmp_path / "future-key", lambda c: {
        **c, "hybridwrap_version": "9.0.0", "model": {**c["model"], "new_option": 1}})
    with pytest.warns(UserWarning, match="written by hybridwrap 9.0.0, newer"), \
            pytest.raises(ConfigError, match="newer hybridwrap"):
        hybridwrap.from_pretrained(future_key)
    for name, changed, error in (
        ("typo", {"model": {**{k: v for k, v in cfg["model"].items() if k != "num_classes"}, "num_clases": 10}},
         "unknown key model.'num_clases'; rename it to 'num_classes'"),
        ("edited-format", {"format_version": 2}, "format_version 2: .* the file was edited"),
        ("no-backbone", {"model": {k: v for k, v in cfg["model"].items() if k != "backbone"}}, "names no model.backbone"),
    ):
        bad = _edited_copy(run_dir, tmp_path / name, lambda c, changed=changed: {**c, **changed})
        with pytest.raises(CheckpointError, match=error):
            hybridwrap.from_pretrained(bad)
    plugin = tmp_path / "plugin"
    shutil.copytree(run_dir / "model", plugin)
    (plugin / "config.json").write_text(json.dumps({**cfg, "model": {**cfg["model"], "backbone": "wavenet_cnn"},
                                                    "backbone_package": "hybridwrap-wavenet"}))
    with pytest.raises(CheckpointError, match="needs the backbone 'wavenet_cnn'.*pip install hybridwrap-wavenet"):
        hybridwrap.from_pretrained(plugin)


def test_truncated_or_corrupted_weights(tmp_path, run_dir):
    broken = tmp_path / "broken"
    shutil.copytree(run_dir / "model", broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        hybridwrap.from_pretrained(broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        hybridwrap.from_pretrained(broken)


def test_weights_that_do_not_fit_the_config(tmp_path, run_dir):
    other = tmp_path / "other"
    shutil.copytree(run_dir / "model", other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["model"]["backbone_kwargs"] = {"width": 0.5}
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="do not fit the model its config describes.*other shapes"):
        hybridwrap.from_pretrained(other)
    state = load_file(str(run_dir / "model" / "model.safetensors"))
    assert state  # the original is untouched


def test_cli_eval_from_a_hub_repo(hub, run_dir):
    push_run(run_dir, "tester/eval-me", token=HUB_TOKEN, picture=False)
    done = subprocess.run(cli("eval", "tester/eval-me", "--dataset", "digits", "--image-size", "16", "--max-images", "40"),
                          capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())  # the run was evaluated on the same 40 images
    assert f"test_acc: {metrics['test_acc']:.2f}" in done.stdout
    assert f"teacher_test_acc: {metrics['teacher_test_acc']:.2f}" in done.stdout


def test_from_pretrained_returns_eval_mode_and_names_a_missing_local_path(run_dir, tmp_path):
    model, teacher = hybridwrap.from_pretrained(run_dir, with_teacher=True)
    assert not model.training and not any(m.training for m in model.modules())
    assert teacher is None or not teacher.training
    for bad in (str(tmp_path / "nope"), "./nope", "runs/x/model"):
        with pytest.raises(CheckpointError, match="is not a directory, and not a Hub repo id"):
            hybridwrap.from_pretrained(bad)


def test_unknown_backbone_of_an_installed_package_is_not_told_to_install_it(run_dir, tmp_path):
    bad = _edited_copy(run_dir, tmp_path / "typo", lambda c: {
        **c, "model": {**c["model"], "backbone": "convlarg"}, "backbone_package": "hybridwrap"})
    with pytest.raises(CheckpointError, match="which the installed hybridwrap does not register") as info:
        hybridwrap.from_pretrained(bad)
    assert "pip install hybridwrap" not in str(info.value)


def test_unknown_backbone_suggestions_are_unique():
    with pytest.raises(hybridwrap.UnknownBackboneError) as info:
        hybridwrap.wrap("convlarg")
    suggestions = str(info.value).split("Did you mean: ")[1].split("?")[0].split(", ")
    assert len(suggestions) == len(set(suggestions)) and "convlarge" in suggestions


def test_eval_on_images_with_other_channels_names_the_real_fix(run_dir, tmp_path):
    import numpy as np

    from hybridwrap import DataError
    from hybridwrap.evaluate import evaluate_saved

    rgb = tmp_path / "rgb.npz"
    x = np.zeros((20, 16, 16, 3), np.uint8)
    np.savez(rgb, x_train=x, y_train=np.arange(20) % 10, x_test=x, y_test=np.arange(20) % 10)
    with pytest.raises(DataError, match="have 3 channel.*takes 1: evaluate it on a 1-channel dataset") as info:
        evaluate_saved(str(run_dir), dataset="npz", data_path=str(rgb))
    assert "--image-size" not in str(info.value)  # resizing would not change the channels


def test_visualize_num_0_keeps_the_existing_picture(run_dir):
    from hybridwrap import ConfigError
    from hybridwrap.visualize import visualize_run

    picture = visualize_run(run_dir, run_dir / "pic.png", n=2)
    before = picture.read_bytes()
    with pytest.raises(ConfigError, match="--num must be at least 1"):
        visualize_run(run_dir, picture, n=0)
    assert picture.read_bytes() == before


def test_card_names_a_local_npz_its_test_image_count_and_a_baseline_is_not_semi_supervised(tmp_path):
    import numpy as np

    from hybridwrap.card import render_card

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (60, 16, 16, 1), dtype=np.uint8)
    npz = tmp_path / "my_subset.npz"
    np.savez(npz, x_train=x, y_train=np.arange(60) % 10, x_test=x[:30], y_test=np.arange(30) % 10)
    cards = {}
    for preset in ("full", "classification"):
        cfg = load_config(write_config(tmp_path / f"{preset}.yaml", preset=preset, max_steps=2,
                                       data={"dataset": "npz", "path": str(npz), "image_size": None,
                                             "max_eval_images": 25}))
        cfg.output_dir = str(tmp_path / preset)
        train(cfg)
        cards[preset] = render_card(tmp_path / preset, repo_id="tester/x")
    full = cards["full"]
    result = full.data.eval_results[0]
    assert result.dataset_type == "my_subset" and result.dataset_split == "test"
    assert result.dataset_name == "my_subset (local file my_subset.npz, 25 test images)"
    assert "Data: local file my_subset.npz." in full.text and "(25 images)" in full.text
    assert "trained semi-supervised" in full.text and "semi-supervised" in full.data.tags
    base = cards["classification"]
    assert "semi-supervised" not in base.data.tags and "trained semi-supervised" not in base.text
    assert "uses no unlabeled" in base.text and base.data.eval_results[0].task_name == "Image classification"


@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="../shared/data/cifar10.npz not present")
def test_the_shared_cifar_copy_is_called_a_jpeg_copy():
    from hybridwrap.data.sources import describe_source

    source = describe_source({"dataset": "cifar10", "path": str(SHARED_CIFAR)})
    assert source == {"source": "local file cifar10.npz", "hub_id": None, "copy": "CIFAR-10 test (JPEG copy)"}
    assert describe_source({"dataset": "cifar10", "path": None})["hub_id"] == "uoft-cs/cifar10"


def test_a_data_file_is_hashed_once_until_it_changes(tmp_path):
    import hashlib
    import os

    from hybridwrap.data.sources import _sha256, describe_source

    f = tmp_path / "d.npz"
    f.write_bytes(b"first")
    hits = _sha256.cache_info().hits
    for _ in range(3):
        assert describe_source({"dataset": "npz", "path": str(f)})["copy"] is None
    assert _sha256.cache_info().hits == hits + 2
    f.write_bytes(b"second!")
    os.utime(f, ns=(1, 1))
    stat = f.stat()
    assert _sha256(str(f), stat.st_size, stat.st_mtime_ns) == hashlib.sha256(b"second!").hexdigest()


def test_hf_hub_timm_checkpoint_initialises_both_encoders(hub, tmp_path):
    """An ImageNet-style (1000-class) timm checkpoint on the Hub: wrap("hf-hub:...", pretrained=True) for 10 classes
    gives E_c and E_u its weights, with a new 10-way head; unsupervised_init="scratch" leaves E_u random."""
    from hybridwrap.hub import upload_folder

    net = timm.create_model("resnet18", num_classes=1000)
    timm.models.save_for_hf(net, str(tmp_path / "r18"), safe_serialization="both")
    upload_folder(tmp_path / "r18", "tester/resnet18-imagenet", HUB_TOKEN, False, "upload", None)
    model = hybridwrap.wrap("hf-hub:tester/resnet18-imagenet", num_classes=10, input_size=64, pretrained=True)
    assert_encoders_hold(model, net)
    assert model.backbone.fc.out_features == 10
    scratch = hybridwrap.wrap("hf-hub:tester/resnet18-imagenet", num_classes=10, input_size=64, pretrained=True,
                              unsupervised_init="scratch")
    assert torch.equal(scratch.backbone.conv1.weight, net.conv1.weight)
    assert not torch.equal(scratch.encoder_u.conv1.weight, net.conv1.weight)
