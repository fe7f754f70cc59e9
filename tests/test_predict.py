"""Use the trained model: class names, `hybridwrap predict`, ONNX export, a card that states the inputs."""

import csv
import json
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

import hybridwrap
from conftest import ENV_TESTS, HUB_TOKEN, cli, write_config
from hybridwrap import CheckpointError, ConfigError
from hybridwrap.config import ModelConfig, TrainConfig, load_config, to_dict
from hybridwrap.saved_configs import label_names, model_config_from_dict
from hybridwrap.hub import push_run
from hybridwrap.registry import get_backbone
from hybridwrap.serialization import config_dict, load_model
from hybridwrap.train import train

CLASSES = ["cat", "dog"]


def _image(rng, label: int, size=12, mode="RGB"):
    base = np.full((size, size, 3), 40 + 160 * label, dtype=np.uint8)  # dark cats, bright dogs
    noisy = np.clip(base.astype(int) + rng.integers(-30, 30, base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy).convert(mode)


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    """A finished tiny run on an ImageFolder whose classes are cat/ and dog/ (Mean Teacher, so it has a teacher)."""
    root = tmp_path_factory.mktemp("pets")
    rng = np.random.default_rng(0)
    for split, n in (("train", 10), ("test", 4)):
        for label, name in enumerate(CLASSES):
            (root / "data" / split / name).mkdir(parents=True)
            for i in range(n):
                _image(rng, label).save(root / "data" / split / name / f"{i}.png")
    cfg = load_config(write_config(root / "cfg.yaml", max_steps=2, eval_every=100, checkpoint_every=100,
                                   model={"in_chans": 3, "num_classes": 2},
                                   data={"dataset": "imagefolder", "path": str(root / "data"), "num_labels": 4,
                                         "labeled_batch_size": 2, "unlabeled_batch_size": 4, "max_eval_images": None}))
    cfg.output_dir = str(root / "run")
    train(cfg)
    new = root / "new"
    new.mkdir()
    for i in range(3):
        _image(rng, i % 2).save(new / f"rgb{i}.png")
    _image(rng, 1, size=20, mode="L").save(new / "gray.png")  # another size and one channel
    (new / "broken.png").write_bytes(b"not an image")
    (new / "notes.txt").write_text("not an image either, and not an image extension")
    return root


def test_class_names_are_kept_in_config_json_the_export_and_from_pretrained(pets, tmp_path):
    saved = json.loads((pets / "run" / "model" / "config.json").read_text())
    assert saved["model"]["label_names"] == CLASSES
    assert saved["id2label"] == {"0": "cat", "1": "dog"}
    assert hybridwrap.from_pretrained(pets / "run").label_names == CLASSES
    hybridwrap.export_classifier(hybridwrap.from_pretrained(pets / "run"), tmp_path / "timm")
    exported = json.loads((tmp_path / "timm" / "config.json").read_text())
    assert exported["pretrained_cfg"]["label_names"] == CLASSES
    import timm

    net = timm.create_model(f"local-dir:{tmp_path / 'timm'}", pretrained=True)
    assert list(net.pretrained_cfg["label_names"]) == CLASSES


def test_configs_written_before_class_names_get_numbered_names():
    old = model_config_from_dict({"backbone": "convlarge", "num_classes": 3, "input_size": [32, 32]})
    assert old.label_names is None and label_names(old) == ["0", "1", "2"]
    with pytest.raises(ConfigError, match="label_names has 1 names but num_classes=2"):
        hybridwrap.wrap("convlarge", num_classes=2, width=0.125, label_names=("cat",))


def test_class_names_round_trip_through_the_local_hub(hub, pets):
    push_run(pets / "run", "tester/pets", token=HUB_TOKEN)
    assert hybridwrap.from_pretrained("tester/pets").label_names == CLASSES
    done = subprocess.run(cli("predict", "tester/pets", str(pets / "new" / "rgb0.png"), "--top-k", "2"),
                          capture_output=True, text=True, env=ENV_TESTS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(pets / "new" / "rgb0.png") + ": ") and "cat" in done.stdout and "dog" in done.stdout


def test_predict_from_a_classifier_exported_to_the_hub(hub, pets, tmp_path):
    done = subprocess.run(cli("export", str(pets / "run"), "--output-dir", str(tmp_path / "c"), "--repo-id",
                              "tester/pets-classifier", "--token", HUB_TOKEN), capture_output=True, text=True,
                          env=ENV_TESTS)
    assert done.returncode == 0, done.stderr
    image = pets / "new" / "rgb1.png"
    via_hub = hybridwrap.predict("hf-hub:tester/pets-classifier", [image])[0]["top_k"]
    local = hybridwrap.predict(pets / "run", [image])[0]["top_k"]
    assert [t["label"] for t in via_hub] == [t["label"] for t in local]
    assert via_hub[0]["probability"] == pytest.approx(local[0]["probability"], abs=1e-6)


def _predict(*args):
    return subprocess.run(cli("predict", *map(str, args), "--no-progress"), capture_output=True, text=True,
                          env=ENV_TESTS)


def test_predict_a_folder_with_a_broken_file_names_it_predicts_the_rest_and_exits_3(pets, tmp_path):
    out = tmp_path / "preds.csv"
    done = _predict(pets / "run", pets / "new", "--top-k", "2", "--output", out)
    assert done.returncode == 3
    assert f"hybridwrap: warning: cannot read {pets / 'new' / 'broken.png'}" in done.stderr
    assert "hybridwrap: error: 1 of 5 image(s) could not be read" in done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 4 and all(("cat" in line and "dog" in line) for line in lines)
    assert any(line.startswith(str(pets / "new" / "gray.png")) and "(converted L->RGB)" in line for line in lines)
    rows = list(csv.DictReader(out.open()))
    assert [r["image"].rsplit("/", 1)[-1] for r in rows] == ["broken.png", "gray.png", "rgb0.png", "rgb1.png", "rgb2.png"]
    assert rows[0]["error"] and not rows[0]["label"]
    assert {r["label"] for r in rows[1:]} <= set(CLASSES)
    assert all(abs(sum(float(t.split(":")[1]) for t in r["top_k"].split(";")) - 1) < 1e-4 for r in rows[1:])


def test_predict_from_the_model_dir_with_the_teacher_and_jsonl_matches_the_python_api(pets, tmp_path):
    out = tmp_path / "preds.jsonl"
    images = sorted((pets / "new").glob("rgb*.png"))
    done = _predict(pets / "run" / "model", *images, "--teacher", "--output", out)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    model, teacher = load_model(pets / "run" / "model")
    api = hybridwrap.predict(model, images, teacher=teacher)
    assert [r["top_k"][0]["label"] for r in records] == [r["top_k"][0]["label"] for r in api]
    for a, b in zip(records, api):
        assert a["top_k"][0]["probability"] == pytest.approx(b["top_k"][0]["probability"], abs=1e-6)
    pil = hybridwrap.predict(model, [Image.open(images[0])], top_k=1)  # PIL images too
    assert pil[0]["top_k"][0]["label"] in CLASSES and len(pil[0]["top_k"]) == 1


def test_predict_from_an_export_and_from_onnx_give_the_pytorch_answer(pets, tmp_path):
    export = tmp_path / "export"
    done = subprocess.run(cli("export", str(pets / "run"), "--output-dir", str(export), "--onnx"),
                          capture_output=True, text=True, env=ENV_TESTS)
    assert done.returncode == 0, done.stderr
    assert "onnxruntime matches PyTorch" in done.stdout
    images = sorted((pets / "new").glob("*.png"))[1:]  # gray.png, rgb*.png
    expected = [r["top_k"] for r in hybridwrap.predict(pets / "run", images)]
    for source in (export, export / "model.onnx"):
        got = [r["top_k"] for r in hybridwrap.predict(source, images)]
        assert [[t["label"] for t in g] for g in got] == [[t["label"] for t in e] for e in expected]
        for g, e in zip(got, expected):
            assert g[0]["probability"] == pytest.approx(e[0]["probability"], abs=1e-4)
    with pytest.raises(ConfigError, match="holds one classifier"):
        hybridwrap.predict(export / "model.onnx", images, teacher=True)


@pytest.mark.parametrize("name,kwargs,size", [("convlarge", {"width": 0.125}, 32), ("resnet18", {}, 32)])
def test_onnx_export_matches_pytorch_within_1e_4(name, kwargs, size, tmp_path):
    from hybridwrap.onnx_export import export_onnx
    import onnxruntime

    torch.manual_seed(0)
    model = hybridwrap.wrap(name, num_classes=10, input_size=size, **kwargs)
    check = export_onnx(model, tmp_path / "model.onnx")
    assert check["max_abs_diff"] <= 1e-4 and check["dynamic_height_width"]
    assert oct((tmp_path / "model.onnx").stat().st_mode & 0o777) == "0o644"
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(4, 3, 40, 48)  # another batch size and image size
    with torch.no_grad():
        expected = model.eval().classify(x).numpy()
    assert np.abs(session.run(None, {"pixel_values": x.numpy()})[0] - expected).max() <= 1e-4
    record = json.loads(session.get_modelmeta().custom_metadata_map["hybridwrap"])
    assert record["label_names"] == [str(i) for i in range(10)] and record["input_size"] == [size, size]


def test_onnx_without_the_extra_names_the_extra(pets, tmp_path):
    blocker = tmp_path / "blocked"
    blocker.mkdir()
    (blocker / "onnxruntime.py").write_text("raise ImportError('onnxruntime is not installed')\n")
    env = {**ENV_TESTS, "PYTHONPATH": f"{blocker}:{ENV_TESTS['PYTHONPATH']}"}
    out = tmp_path / "export"
    done = subprocess.run(cli("export", str(pets / "run"), "--output-dir", str(out), "--onnx"),
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == "hybridwrap: error: ONNX export needs onnx and onnxruntime: pip install 'hybridwrap[onnx]'."
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize("args,match,code", [
    (["{run}", "/no/such/image.png"], "does not exist", 3),
    (["{run}", "{new}/*.jpeg"], "matches no file", 3),
    (["{run}", "{new}", "--top-k", "0"], "--top-k must be at least 1", 2),
    (["{run}", "{new}", "--output", "{tmp}/preds.xlsx"], "--output must end in .csv or .jsonl", 2),
    (["/no/such/run", "{new}"], "neither a run directory nor a Hub repo id", 4),
])
def test_predict_bad_input_is_one_line_with_the_fix(pets, tmp_path, args, match, code):
    filled = [a.format(run=pets / "run", new=pets / "new", tmp=tmp_path) for a in args]
    done = _predict(*filled)
    assert done.returncode == code, done.stderr
    assert match in done.stderr and "Traceback" not in done.stderr


def _card_sentence(name: str, tmp_path, **kwargs) -> tuple[str, dict]:
    """The card of a run whose config.json records ``name``'s own input size and normalisation."""
    from hybridwrap.card import render_card

    entry = get_backbone(name)
    net = entry.factory(num_classes=10, **kwargs)
    pcfg = net.pretrained_cfg
    mcfg = ModelConfig(backbone=name, num_classes=10, in_chans=3, input_size=tuple(entry.default_input_size[-2:]),
                       mean=tuple(pcfg["mean"]), std=tuple(pcfg["std"]), label_names=tuple(f"class{i}" for i in range(10)),
                       backbone_kwargs=kwargs)
    run = tmp_path / name
    (run / "model").mkdir(parents=True)
    (run / "model" / "config.json").write_text(json.dumps(config_dict(mcfg)))
    cfg = TrainConfig()
    cfg.model = mcfg
    (run / "train_config.json").write_text(json.dumps(to_dict(cfg), default=list))
    card = str(render_card(run))
    saved = json.loads((run / "model" / "config.json").read_text())["model"]
    return card, saved


@pytest.mark.parametrize("name,kwargs,expect", [
    ("convlarge", {"width": 0.125}, ["RGB images of 3x32x32", "scaled to [-1, 1]"]),
    ("resnet18", {}, ["RGB images of 3x224x224", "mean [0.485, 0.456, 0.406] and std [0.229, 0.224, 0.225]"]),
    ("places365_resnet50", {}, ["RGB images of 3x224x224", "mean [0.485, 0.456, 0.406]"]),
])
def test_the_card_states_the_preprocessing_config_json_records(name, kwargs, expect, tmp_path):
    from hybridwrap.preprocess import describe

    card, saved = _card_sentence(name, tmp_path, **kwargs)
    assert describe(model_config_from_dict(saved)) in card
    for text in expect:
        assert text in card
    assert "(x / 255 - 0.5) / 0.5" not in card or saved["mean"] == [0.5, 0.5, 0.5]
    assert "class0, class1" in card
    assert "Unlabeled: the training images without a label (outside the validation hold-out)." in card


def test_predict_refuses_teacher_when_the_run_has_none(tmp_path):
    model = hybridwrap.wrap("convlarge", num_classes=2, width=0.125)
    hybridwrap.save_pretrained(model, tmp_path / "m")
    with pytest.raises(CheckpointError, match="no Mean Teacher weights"):
        hybridwrap.predict(tmp_path / "m", [], teacher=True)
