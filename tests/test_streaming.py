"""The data pipeline that reads on access: lazy sources, DataLoader workers, a stream per process, resume."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hybridwrap import ConfigError, DataError
from hybridwrap.config import DataConfig, load_config
from hybridwrap.data import augment as aug
from hybridwrap.data import load_data
from hybridwrap.data.images import ArrayReader, LazyImages, concat
from hybridwrap.data.loader import StepBatches, step_loader
from hybridwrap.data.semisup import TwoStreamBatches
from hybridwrap.train import train

CLASSES = 4


@pytest.fixture(autouse=True)
def _no_pause_after_each_pass(monkeypatch):
    """datasets sleeps 5 s when a pass over shuffled parquet shards ends (a pyarrow thread-shutdown workaround):
    once per pass of a real pool, but once per few steps of these 30-image ones."""
    import datasets

    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0.0)


def _images(n, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def make_imagefolder(root: Path, n_train=24, n_test=8, n_unlabeled=30, size=16) -> Path:
    from PIL import Image

    for split, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        for i, x in enumerate(_images(n, size, seed)):
            folder = root / split / f"class{i % CLASSES}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x).save(folder / f"{i:04d}.png")
    (root / "unlabeled" / "a").mkdir(parents=True)
    for i, x in enumerate(_images(n_unlabeled, size, 2)):
        Image.fromarray(x).save(root / "unlabeled" / "a" / f"{i:04d}.png")
    return root


def make_parquet_hub(root: Path, n_train=24, n_test=8, n_unlabeled=30, size=16, shards=2) -> Path:
    """A folder laid out as the Hub's parquet export (data/<split>-0000k-of-0000n.parquet), so that
    ``datasets.load_dataset(folder, split=..., streaming=True)`` runs its real code on it."""
    import datasets
    from PIL import Image

    feats = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=list("abcd"))})
    (root / "data").mkdir(parents=True)
    for split, n, seed, k in (("train", n_train, 0, 1), ("test", n_test, 1, 1), ("unlabeled", n_unlabeled, 2, shards)):
        x = _images(n, size, seed)
        labels = [i % CLASSES for i in range(n)] if split != "unlabeled" else [-1] * n
        rows = {"img": [Image.fromarray(a) for a in x], "label": labels}
        f = feats if split != "unlabeled" else datasets.Features({"img": datasets.Image(), "label": datasets.Value("int64")})
        ds = datasets.Dataset.from_dict(rows, features=f)
        for i in range(k):
            ds.shard(k, i, contiguous=True).to_parquet(str(root / "data" / f"{split}-{i:05d}-of-{k:05d}.parquet"))
    return root


class CountingReader(ArrayReader):
    def __init__(self, x):
        super().__init__(x)
        self.read = []

    def __call__(self, i):
        self.read.append(int(i))
        return super().__call__(i)


def _steps(images, n_s=4, n_u=8, rank=0, world=1, start=0, end=6, teacher=True, stream=None, labeled=None):
    n = len(images)
    labeled = labeled if labeled is not None else list(range(0, n, 3))
    batches = TwoStreamBatches(labeled, list(range(n)), n_s, n_u, seed=5)
    labels = torch.arange(n) % CLASSES
    return StepBatches(images, labels, batches, "translate_flip", 2, teacher, seed=5, rank=rank, world=world,
                       start=start, end=end, stream=stream)


def _collect(steps, workers):
    return list(step_loader(steps, workers))


def _same(a, b):
    assert [x.step for x in a] == [y.step for y in b]
    for x, y in zip(a, b):
        for u, v in zip(x[1:], y[1:]):
            assert (u is None and v is None) or torch.equal(u, v), x.step


def test_batches_are_a_function_of_the_step_whatever_the_workers_and_the_start():
    images = LazyImages(ArrayReader(torch.from_numpy(_images(40)).permute(0, 3, 1, 2)))
    one = _collect(_steps(images), 0)
    assert [b.step for b in one] == list(range(6)) and one[0].images.shape == (12, 3, 16, 16)
    # as many workers as this process may use (at least 2, so that they interleave; torch warns above that)
    workers = max(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2))
    _same(one, _collect(_steps(images), workers))  # several workers: steps still in order, same images
    _same(one[4:], _collect(_steps(images, start=4), 2))  # a resumed run makes the same batches
    assert not torch.equal(one[0].images, one[0].teacher_images)  # the teacher's own augmentation draw
    assert (one[0].labels[:4] >= 0).all() and (one[0].labels[4:] == -1).all()


def test_each_process_reads_and_decodes_only_its_share():
    raw = torch.from_numpy(_images(40)).permute(0, 3, 1, 2)
    whole = _collect(_steps(LazyImages(ArrayReader(raw)), world=1, end=3), 0)
    for step in range(3):
        parts = []
        for rank in range(2):
            reader = CountingReader(raw)
            share = _steps(LazyImages(reader), rank=rank, world=2).make(step)
            assert len(reader.read) == 6  # 2 labeled + 4 unlabeled of the global 4 + 8, nothing else
            assert sorted(reader.read) == sorted(share.index.tolist())
            parts.append(share)
        # two processes see exactly the images (and augmentations) one process would
        order = lambda f: torch.cat([f(parts[0])[:2], f(parts[1])[:2], f(parts[0])[2:], f(parts[1])[2:]])
        assert torch.equal(order(lambda b: b.images), whole[step].images)
        assert torch.equal(order(lambda b: b.index), whole[step].index)


def test_in_memory_images_keep_the_global_batch_stream():
    """digits / npz: one generator per step over the global batch, then each process's slice (the stream every
    published result was trained on); N processes together still see what one process sees."""
    raw = torch.from_numpy(_images(40)).permute(0, 3, 1, 2).contiguous()
    steps = _steps(raw)
    assert not steps.per_image
    b = steps.make(2)
    lab, unl = steps.batches(2)
    g = torch.Generator().manual_seed(5 * 1_000_003 + 2 * 7_919 + 17)
    expected = aug.augment(raw[torch.cat([lab, unl])], "translate_flip", 2, g)
    assert torch.equal(b.images, expected)
    halves = [_steps(raw, rank=r, world=2).make(2) for r in range(2)]
    assert torch.equal(torch.cat([halves[0].images[:2], halves[1].images[:2]]), b.images[:4])


def test_lazy_imagefolder_reads_only_a_sample_at_load_and_resizes_on_access(tmp_path, monkeypatch):
    from hybridwrap.data import images as images_module

    root = make_imagefolder(tmp_path / "folder")
    opened = []
    original = images_module.FileReader.__call__
    monkeypatch.setattr(images_module.FileReader, "__call__", lambda self, i: opened.append(i) or original(self, i))
    data = load_data(DataConfig(dataset="imagefolder", path=str(root), image_size=24))
    assert len(opened) <= 9 and not data.in_memory  # a size check on a sample, not 62 decodes
    assert data.train_x.shape == (24, 3, 24, 24) and data.unlabeled_x.shape == (30, 3, 24, 24)
    assert data.train_x[[0, 5]].shape == (2, 3, 24, 24) and data.train_y[:4].tolist() == [0, 0, 0, 0]
    assert data.class_names == [f"class{c}" for c in range(CLASSES)]
    both = concat([data.train_x, data.unlabeled_x])  # one index space: training images, then unlabeled ones
    assert both.shape == (54, 3, 24, 24) and torch.equal(both[[25, 1]], torch.stack([data.unlabeled_x[1], data.train_x[1]]))
    assert torch.equal(both[-1], data.unlabeled_x[29]) and torch.equal(both[2:4], data.train_x[2:4])


def test_images_of_different_sizes_need_image_size(tmp_path):
    from PIL import Image

    root = make_imagefolder(tmp_path / "folder")
    Image.fromarray(_images(1, 20)[0]).save(root / "train" / "class0" / "0000.png")
    with pytest.raises(DataError, match=r"different sizes .*set data.image_size"):
        load_data(DataConfig(dataset="imagefolder", path=str(root)))
    assert load_data(DataConfig(dataset="imagefolder", path=str(root), image_size=16)).train_x[:].shape[-1] == 16
    other = make_imagefolder(tmp_path / "other")
    for f in (other / "unlabeled" / "a").glob("*.png"):
        Image.fromarray(_images(1, 20)[0]).save(f)
    with pytest.raises(DataError, match=r"unlabeled images are \(3, 20, 20\).*training images \(3, 16, 16\).*--image-size 16"):
        load_data(DataConfig(dataset="imagefolder", path=str(other)))


def test_hub_dataset_is_decoded_on_access(tmp_path):
    hub = make_parquet_hub(tmp_path / "hub")
    data = load_data(DataConfig(dataset="cifar10", path=str(hub), unlabeled_extra=True))
    assert not data.in_memory and data.train_x.shape == (24, 3, 16, 16) and data.unlabeled_x.shape == (30, 3, 16, 16)
    assert torch.equal(data.train_x[3], torch.from_numpy(_images(24)[3]).permute(2, 0, 1))


def test_streamed_unlabeled_pool_is_split_between_processes_and_resumes_exactly(tmp_path):
    hub = make_parquet_hub(tmp_path / "hub")
    data = load_data(DataConfig(dataset="cifar10", path=str(hub), streaming=True, shuffle_buffer=8))
    stream = data.unlabeled_x
    labeled = list(range(0, 24, 3))
    kw = dict(images=data.train_x, n_s=2, n_u=4, labeled=labeled, end=12, stream=stream)
    one = _collect(_steps(**kw), 0)  # 12 steps x 4 = 48 images: the 30-image stream is read in a second pass
    assert (one[0].index[2:] == -1).all() and one[0].images.shape == (6, 3, 16, 16)
    _same(one, _collect(_steps(**kw), 2))
    _same(one[7:], _collect(_steps(**{**kw, "start": 7}), 2))

    def first_pass(rank, world):
        return [(r["img"]["bytes"]) for r, _ in zip(stream.records(rank, world, seed=5), range(15 if world == 2 else 30))]

    both = first_pass(0, 2) + first_pass(1, 2)
    assert len(set(both)) == 30 and set(both) == set(first_pass(0, 1))  # disjoint shares, the whole pool


def _lazy_config(tiny_config, root, **data):
    return tiny_config(model={"in_chans": 3, "num_classes": CLASSES}, data={"dataset": "imagefolder", "path": str(root), "num_labels": 8,
                                                    "max_eval_images": None, **data})


def _weights(run: Path) -> dict:
    return {**load_file(str(run / "model" / "model.safetensors")),
            **{"teacher." + k: v for k, v in load_file(str(run / "model" / "teacher.safetensors")).items()}}


def test_training_from_disk_with_workers_pauses_and_resumes_bit_identically(tiny_config, tmp_path):
    root = make_imagefolder(tmp_path / "folder")
    config = load_config(_lazy_config(tiny_config, root, num_workers=2))
    config.output_dir = str(tmp_path / "a")
    train(config)
    config = load_config(_lazy_config(tiny_config, root, num_workers=0))
    config.output_dir = str(tmp_path / "b")
    train(config, stop_at=2)
    train(config, resume=True)
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log = (tmp_path / "b" / "train.log").read_text()
    assert "read from disk on access" in log and "no loader workers" in log


def test_training_on_a_streamed_pool_resumes_bit_identically(tiny_config, tmp_path):
    hub = make_parquet_hub(tmp_path / "hub")
    data = {"dataset": "cifar10", "path": str(hub), "streaming": True, "shuffle_buffer": 8, "num_labels": 8,
            "max_eval_images": None, "num_workers": 1}
    runs = []
    for name, stop in (("a", None), ("b", 2)):
        config = load_config(tiny_config(model={"in_chans": 3, "num_classes": CLASSES}, data=data))
        config.output_dir = str(tmp_path / name)
        if stop:
            train(config, stop_at=stop)
        train(config, resume=bool(stop))
        runs.append(_weights(tmp_path / name))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert "the unlabeled stream of" in (tmp_path / "a" / "train.log").read_text()


def test_random_resized_crop_is_the_default_at_224_px():
    assert aug.resolve("auto", "stl10", (224, 224)) == "crop_flip"
    assert aug.resolve("auto", "stl10", (96, 96)) == "translate_flip"
    x = torch.from_numpy(_images(3, 64)).permute(0, 3, 1, 2).contiguous()
    a = aug.augment(x, "crop_flip", 0, torch.Generator().manual_seed(0))
    b = aug.augment(x, "crop_flip", 0, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and a.dtype == torch.uint8 and torch.equal(a, b) and not torch.equal(a, x)
    assert aug._crop_box(2, 100, torch.Generator().manual_seed(0)) == (0, 48, 2, 3)  # nothing fits: centre, 4/3
    for seed in range(50):
        top, left, h, w = aug._crop_box(30, 20, torch.Generator().manual_seed(seed))
        assert 0 <= top and top + h <= 30 and 0 <= left and left + w <= 20 and h * w >= 0.05 * 600


@pytest.mark.parametrize("data,loss,error,match", [
    ({"streaming": True}, {}, DataError, "streams the unlabeled split of a Hugging Face hub dataset"),
    ({"num_workers": -1}, {}, ConfigError, "data.num_workers must be >= 0"),
    ({"augment": "rrc"}, {}, ConfigError, "data.augment must be auto, translate_flip"),
    ({"streaming": True}, {"stability": "temporal_ensembling"}, ConfigError, "use loss.stability=mean_teacher"),
])
def test_bad_pipeline_settings(data, loss, error, match, tiny_config, tmp_path):
    config = load_config(tiny_config(data=data, loss=loss))
    config.output_dir = str(tmp_path / "run")
    with pytest.raises(error, match=match):
        train(config)
    assert not (tmp_path / "run").exists()


def test_streaming_a_dataset_without_an_unlabeled_split(tmp_path):
    hub = make_parquet_hub(tmp_path / "hub")
    for f in (hub / "data").glob("unlabeled-*"):
        f.unlink()
    with pytest.raises(DataError, match="has no such split"):
        load_data(DataConfig(dataset="cifar10", path=str(hub), streaming=True))
    with pytest.raises(DataError, match="unset data.unlabeled_extra"):
        load_data(DataConfig(dataset="cifar10", path=str(hub), unlabeled_extra=True))


def test_an_unreadable_image_met_by_a_worker_is_one_clear_error(tiny_config, tmp_path):
    import subprocess

    from conftest import ENV_TESTS, cli

    import struct
    import zlib

    def scrambled_pixels(png: bytes) -> bytes:
        """The same PNG with its compressed pixels scrambled and every checksum right: it opens and passes the
        check before training (headers and chunk CRCs), and fails only when decoded."""
        out, i = bytearray(png[:8]), 8
        while i < len(png):
            n = struct.unpack(">I", png[i:i + 4])[0]
            kind, data = png[i + 4:i + 8], png[i + 8:i + 8 + n]
            if kind == b"IDAT":
                data = bytes(b ^ 0x5A for b in data)
            out += struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
            i += 12 + n
        return bytes(out)

    root = make_imagefolder(tmp_path / "folder")
    for f in sorted((root / "unlabeled" / "a").glob("*.png"))[1:]:  # the first is read at load (its size)
        f.write_bytes(scrambled_pixels(f.read_bytes()))
    config = _lazy_config(tiny_config, root, num_workers=1, image_size=16)  # no size check at load: a worker meets it
    done = subprocess.run(cli("train", "--config", str(config), "--output-dir", str(tmp_path / "run"), "--no-progress"),
                          capture_output=True, text=True, env=ENV_TESTS)
    assert done.returncode == 3, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("hybridwrap: error:")]
    assert len(errors) == 1 and "Cannot read image" in errors[0] and "Remove or replace the file" in errors[0]
    assert "Traceback" not in done.stderr and "1 loader worker" in done.stderr  # met in training, by the worker


def test_the_model_records_the_size_it_trained_at_and_eval_of_another_size_warns(tiny_config, tmp_path):
    import subprocess

    from conftest import ENV_TESTS, cli

    root = make_imagefolder(tmp_path / "folder")
    config = load_config(_lazy_config(tiny_config, root, image_size=20))
    config.model.input_size = None  # unset: resolved from the training images, not the backbone's default 32
    config.max_steps, config.output_dir = 2, str(tmp_path / "run")
    train(config)
    saved = json.loads((tmp_path / "run" / "model" / "config.json").read_text())["model"]
    assert saved["input_size"] == [20, 20]
    own = subprocess.run(cli("eval", str(tmp_path / "run")), capture_output=True, text=True, env=ENV_TESTS)
    assert own.returncode == 0 and "test_acc" in own.stdout and "warning" not in own.stderr, own.stderr
    other = subprocess.run(cli("eval", str(tmp_path / "run"), "--image-size", "24"), capture_output=True, text=True,
                           env=ENV_TESTS)
    assert other.returncode == 0 and "test_acc" in other.stdout, other.stderr
    assert "the test images are 24x24 but the model was trained at 20x20; pass --image-size 20" in other.stderr


def test_streamed_images_of_another_size_need_image_size(tmp_path):
    hub = make_parquet_hub(tmp_path / "hub")
    data = load_data(DataConfig(dataset="cifar10", path=str(hub), streaming=True))
    small = LazyImages(ArrayReader(torch.zeros(24, 3, 8, 8, dtype=torch.uint8)))  # labeled images of 8 px, stream 16
    with pytest.raises(DataError, match=r"differ in size .*set data.image_size"):
        _steps(small, n_s=2, n_u=4, labeled=[0, 3], stream=data.unlabeled_x).make(0, data.unlabeled_x.records(0, 1, 5))
    data = load_data(DataConfig(dataset="cifar10", path=str(hub), streaming=True, image_size=8))
    assert _steps(data.train_x, n_s=2, n_u=4, labeled=[0, 3], stream=data.unlabeled_x).make(
        0, data.unlabeled_x.records(0, 1, 5)).images.shape == (6, 3, 8, 8)


def test_an_error_raised_in_any_loader_worker_keeps_its_one_line_message():
    """Evaluation loaders too: DataLoader re-raises a worker's error with the worker's traceback as its message."""
    from torch.utils.data import DataLoader, Dataset

    class Unreadable(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            raise DataError("Cannot read image x.png (truncated). Remove or replace the file.")

    with pytest.raises(DataError) as info:
        list(DataLoader(Unreadable(), num_workers=1))
    assert str(info.value) == "Cannot read image x.png (truncated). Remove or replace the file."
