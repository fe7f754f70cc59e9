"""Data sources, balanced labeled subsets, two-stream batches and augmentation."""

from pathlib import Path

import numpy as np
import pytest
import torch

from hybridwrap import DataError
from hybridwrap.config import DataConfig
from hybridwrap.data import TwoStreamBatches, load_data, make_split
from hybridwrap.data import augment as aug

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10.npz"


def _tiny_arrays(n_train=40, n_test=10, size=8, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        x_train=rng.integers(0, 256, (n_train, size, size, 3), dtype=np.uint8),
        y_train=np.arange(n_train) % classes,
        x_test=rng.integers(0, 256, (n_test, size, size, 3), dtype=np.uint8),
        y_test=np.arange(n_test) % classes,
    )


def test_embedded_digits():
    data = load_data(DataConfig(dataset="digits", image_size=16))
    assert data.train_x.shape == (1442, 1, 16, 16) and data.test_x.shape == (355, 1, 16, 16)  # 20% per class
    assert data.train_x.dtype == torch.uint8 and set(data.train_y.tolist()) == set(range(10))


def test_npz_source(tmp_path):
    path = tmp_path / "tiny.npz"
    np.savez(path, **_tiny_arrays())
    data = load_data(DataConfig(dataset="npz", path=str(path)))
    assert data.train_x.shape == (40, 3, 8, 8) and data.test_y.tolist()[:4] == [0, 1, 2, 3]


def test_max_eval_images_keeps_a_class_grouped_test_set_balanced(tmp_path):
    arrays = _tiny_arrays()
    order = np.argsort(arrays["y_test"], kind="stable")  # stored grouped by class, like the CIFAR-10 JPEG copy
    arrays["x_test"], arrays["y_test"] = arrays["x_test"][order], arrays["y_test"][order]
    path = tmp_path / "grouped.npz"
    np.savez(path, **arrays)
    n_classes = len(set(arrays["y_test"].tolist()))
    data = load_data(DataConfig(dataset="npz", path=str(path), max_eval_images=n_classes))
    assert len(data.test_y) == n_classes and sorted(data.test_y.tolist()) == list(range(n_classes))
    assert len(load_data(DataConfig(dataset="npz", path=str(path), max_eval_images=10_000)).test_y) == len(order)


@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="../shared/data/cifar10.npz not present")
def test_real_cifar10_npz():
    data = load_data(DataConfig(dataset="cifar10", path=str(SHARED_CIFAR), max_train_images=1000))
    assert data.train_x.shape == (1000, 3, 32, 32) and data.test_x.shape == (10000, 3, 32, 32)
    assert data.class_names[0] == "airplane" and len(data.class_names) == 10


def _dataset_dict(tmp_path):
    import datasets
    from PIL import Image

    arrays = _tiny_arrays()
    feats = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=list("abcd"))})

    def split(x, y):
        return datasets.Dataset.from_dict({"img": [Image.fromarray(a) for a in x], "label": y.tolist()}, features=feats)

    return datasets.DatasetDict(train=split(arrays["x_train"], arrays["y_train"]),
                                test=split(arrays["x_test"], arrays["y_test"]))


def test_save_to_disk_source(tmp_path):
    _dataset_dict(tmp_path).save_to_disk(str(tmp_path / "ds"))
    data = load_data(DataConfig(dataset="disk", path=str(tmp_path / "ds")))
    assert data.train_x.shape == (40, 3, 8, 8) and data.class_names == list("abcd")


def test_hub_source_code_path_against_local_parquet(tmp_path):
    """The real `datasets.load_dataset` download code, pointed at a local folder instead of the hub."""
    dd = _dataset_dict(tmp_path)
    (tmp_path / "hub").mkdir()
    for name, split in dd.items():
        split.to_parquet(str(tmp_path / "hub" / f"{name}.parquet"))
    data = load_data(DataConfig(dataset="cifar10", path=str(tmp_path / "hub")))
    assert data.train_x.shape == (40, 3, 8, 8) and data.test_y.tolist()[:4] == [0, 1, 2, 3]


def test_imagefolder_source(tmp_path):
    from PIL import Image

    arrays = _tiny_arrays(n_train=8, n_test=4, classes=2)
    for split, xs, ys in (("train", arrays["x_train"], arrays["y_train"]), ("test", arrays["x_test"], arrays["y_test"])):
        for i, (x, y) in enumerate(zip(xs, ys)):
            d = tmp_path / split / f"class{y}"
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x).save(d / f"{i}.png")
    (tmp_path / "unlabeled").mkdir()
    Image.fromarray(arrays["x_train"][0]).save(tmp_path / "unlabeled" / "u.png")
    data = load_data(DataConfig(dataset="imagefolder", path=str(tmp_path)))
    assert data.train_x.shape == (8, 3, 8, 8) and data.unlabeled_x.shape == (1, 3, 8, 8)
    assert data.class_names == ["class0", "class1"]


@pytest.mark.parametrize("cfg,match", [
    (DataConfig(dataset="npz", path="/no/such.npz"), "not found. Pass --data-path"),
    (DataConfig(dataset="npz"), "read from a .npz file: pass --data-path"),
    (DataConfig(dataset="imagefolder"), "--dataset imagefolder needs --data-path ROOT"),
    (DataConfig(dataset="disk", path="/no/such/dir"), "not found.*save_to_disk"),
    (DataConfig(dataset="imagefolder", path="/no/such/dir"), "'/no/such/dir' does not exist: pass --data-path"),
])
def test_missing_or_unknown_data(cfg, match):
    with pytest.raises(DataError, match=match):
        load_data(cfg)


def test_an_unknown_dataset_is_a_config_error():
    from hybridwrap.errors import ConfigError

    with pytest.raises(ConfigError, match="Unknown dataset 'mnist-typo'. Use mnist5k"):
        load_data(DataConfig(dataset="mnist-typo"))


@pytest.mark.parametrize("empty_in, match", [("train", "have no image in .*train/: dog; put images in them"),
                                             ("test", "have no image in .*test/: dog; add test images")])
def test_a_class_folder_without_images_is_refused(tmp_path, empty_in, match):
    from PIL import Image

    for split in ("train", "test"):
        for cls in ("cat", "dog", "fox"):
            (tmp_path / split / cls).mkdir(parents=True)
            if not (split == empty_in and cls == "dog"):
                Image.new("RGB", (8, 8)).save(tmp_path / split / cls / "a.png")
    with pytest.raises(DataError, match=match):
        load_data(DataConfig(dataset="imagefolder", path=str(tmp_path)))


def test_imagefolder_with_empty_class_folders(tmp_path):
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
    with pytest.raises(DataError, match=r"No images under .*train/<class>/ \(looked for"):
        load_data(DataConfig(dataset="imagefolder", path=str(tmp_path)))


def test_unreadable_npz(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="is not a .npz file of numeric arrays.*numpy.savez"):
        load_data(DataConfig(dataset="npz", path=str(bad)))


# ----------------------------------------------------------------------------- splits and batches


def test_balanced_split_is_seeded_and_disjoint_from_validation():
    y = torch.arange(200) % 10
    a = make_split(y, 10, 40, seed=3, val_size=50)
    b = make_split(y, 10, 40, seed=3, val_size=50)
    c = make_split(y, 10, 40, seed=4, val_size=50)
    assert a == b and a.labeled != c.labeled
    assert torch.bincount(y[a.labeled], minlength=10).tolist() == [4] * 10
    assert not set(a.labeled) & set(a.val) and len(a.val) == 50


@pytest.mark.parametrize("num_labels,match", [
    (45, "must be a positive multiple of the 10 classes"),
    (0, "must be a positive multiple"),
    (400, "asks for 40 labeled images of class 0, but only 20 exist"),
])
def test_bad_label_counts(num_labels, match):
    with pytest.raises(DataError, match=match):
        make_split(torch.arange(200) % 10, 10, num_labels, seed=0)


def test_labels_outside_num_classes():
    with pytest.raises(DataError, match=r"outside 0..4.*model.num_classes"):
        make_split(torch.arange(50) % 7, 5, 10, seed=0)


def test_two_stream_batches_are_a_function_of_the_step():
    batches = TwoStreamBatches(list(range(10)), list(range(100, 150)), 4, 6, seed=0)
    again = TwoStreamBatches(list(range(10)), list(range(100, 150)), 4, 6, seed=0)
    for step in (0, 7, 3):
        lab, unl = batches(step)
        assert len(lab) == 4 and len(unl) == 6
        assert torch.equal(lab, again(step)[0]) and torch.equal(unl, again(step)[1])
    seen = torch.cat([batches(s)[0] for s in range(5)])[:10]  # the first cycle visits every labeled image once
    assert sorted(seen.tolist()) == list(range(10))


@pytest.mark.parametrize("n_s,n_u,match", [(0, 8, "labeled_batch_size=0 must be at least 1"),
                                           (4, 0, "unlabeled_batch_size=0 must be at least 1")])
def test_bad_batch_sizes(n_s, n_u, match):
    with pytest.raises(DataError, match=match):
        TwoStreamBatches([1, 2], [3, 4], n_s, n_u, seed=0)


def test_augmentation_translates_flips_and_is_reproducible():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.uint8).view(2, 1, 6, 6)
    a = aug.augment(x, "translate_flip", 2, torch.Generator().manual_seed(0))
    b = aug.augment(x, "translate_flip", 2, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape and a.dtype == torch.uint8
    assert torch.equal(aug.augment(x, "none", 2, torch.Generator()), x)
    assert aug.resolve("auto", "svhn") == "translate"  # never flip digits
    assert aug.resolve("auto", "cifar10") == "translate_flip"


@pytest.mark.parametrize("size,expected", [((16, 16), 2), ((32, 32), 4), ((96, 96), 12), ((33, 45), 4)])
def test_translation_is_one_eighth_of_the_image_side_unless_set(size, expected):
    assert aug.translation(None, size) == expected
    assert aug.translation(3, size) == 3


def test_dataset_statistics_normalisation():
    x = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)
    x[:, 1] = 255
    x[:2, 2] = 255
    mean, std = aug.image_statistics(x, chunk=3)
    assert mean == pytest.approx((0.0, 1.0, 0.5)) and std[2] == pytest.approx(0.5)
    assert std[0] == pytest.approx(1e-3)  # a constant channel is not divided by zero
    y = aug.normalize(x, mean, std)
    assert y[:, 2].mean().item() == pytest.approx(0.0, abs=1e-6) and y[:, 2].std(unbiased=False).item() == pytest.approx(1.0)


def test_stl10_binary_release_with_unlabeled_images_and_folds(tmp_path):
    from conftest import make_stl10_binary

    made = make_stl10_binary(tmp_path / "stl10_binary")
    data = load_data(DataConfig(dataset="stl10", path=str(tmp_path / "stl10_binary"), unlabeled_extra=True))
    assert data.train_x.shape == (30, 3, 96, 96) and data.unlabeled_x.shape == (40, 3, 96, 96)
    assert torch.equal(data.train_x[:], torch.from_numpy(made["train"]))  # column-major storage undone
    assert torch.equal(data.unlabeled_x[[39, 0]], torch.from_numpy(made["unlabeled"][[39, 0]]))
    assert torch.equal(data.test_y, torch.from_numpy(made["test_y"])) and data.class_names[2] == "car"
    assert data.meta["folds"] == made["folds"]
    assert load_data(DataConfig(dataset="stl10", path=str(tmp_path / "stl10_binary"))).unlabeled_x is None

    from hybridwrap.data.semisup import fold_split

    split = fold_split(data.meta["folds"], 3, 30, seed=0, val_size=5)
    assert split.labeled == sorted(made["folds"][3]) and not set(split.val) & set(split.labeled)
    with pytest.raises(DataError, match="between 0 and 9"):
        fold_split(data.meta["folds"], 10, 30, seed=0)
    with pytest.raises(DataError, match="STL-10 binary release"):
        fold_split(None, 0, 30, seed=0)
    (tmp_path / "stl10_binary" / "test_X.bin").write_bytes(b"\0" * 100)
    with pytest.raises(DataError, match="not a whole number of 3x96x96 images"):
        load_data(DataConfig(dataset="stl10", path=str(tmp_path / "stl10_binary")))
    with pytest.raises(DataError, match="not the STL-10 binary release"):
        load_data(DataConfig(dataset="stl10", path=str(tmp_path)))
