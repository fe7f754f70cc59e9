"""Image sources, all loaded into memory as uint8 tensors (N, C, H, W).

* ``digits``: scikit-learn's 8x8 handwritten digits (1,797 images, shipped inside the package: the
  embedded default that trains with no internet).
* ``cifar10``, ``svhn``, ``stl10``: the Hugging Face ``datasets`` hub ids below (downloads for users who
  are online); ``cifar10`` with ``path=`` reads a local ``.npz`` instead, ``stl10`` with ``path=`` the
  official binary release folder ``stl10_binary/`` (memory-mapped, with its unlabeled images and folds).
* ``npz``: a file laid out like ``../shared/data/cifar10.npz`` (x_train, y_train, x_test, y_test uint8 HWC;
  optional x_unlabeled, class_names).
* ``imagefolder``: ``root/train/<class>/*``, ``root/test/<class>/*`` and optionally ``root/unlabeled/**``.
* ``disk``: a ``datasets.DatasetDict`` written with ``save_to_disk`` (splits train, test, optional unlabeled).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError

# name -> (hub id, config name, image column, label column, unlabeled split)
HF_DATASETS = {
    "cifar10": ("uoft-cs/cifar10", None, "img", "label", None),
    "svhn": ("ufldl-stanford/svhn", "cropped_digits", "image", "label", "extra"),
    "stl10": ("tanganke/stl10", None, "image", "label", None),
}
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class ImageData:
    name: str
    train_x: torch.Tensor  # uint8 (N, C, H, W)
    train_y: torch.Tensor  # int64 (N,)
    test_x: torch.Tensor
    test_y: torch.Tensor
    class_names: list[str]
    unlabeled_x: torch.Tensor | None = None  # extra unlabeled images (SVHN extra, STL-10 unlabeled)
    meta: dict = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return self.train_x.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.train_x.shape[-2:])


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
    except Exception as exc:
        raise DataError(f"{path} is not a readable .npz file ({exc}). Re-create it with numpy.savez.") from exc
    missing = {"x_train", "y_train", "x_test", "y_test"} - set(arrays)
    if missing:
        raise DataError(f"{path} lacks arrays {sorted(missing)}; expected x_train, y_train, x_test, y_test.")
    y_train = arrays["y_train"].astype(np.int64).reshape(-1)
    names = [str(c) for c in arrays["class_names"]] if "class_names" in arrays else \
        [str(i) for i in range(int(y_train.max()) + 1)]
    unl = _to_nchw(arrays["x_unlabeled"]) if "x_unlabeled" in arrays else None
    return ImageData(name, _to_nchw(arrays["x_train"]), torch.from_numpy(y_train), _to_nchw(arrays["x_test"]),
                     torch.from_numpy(arrays["y_test"].astype(np.int64).reshape(-1)), names, unl)


def _pil_to_array(img, mode: str) -> np.ndarray:
    return np.asarray(img.convert(mode), dtype=np.uint8)


def _hf_split_to_arrays(ds, image_col: str | None, label_col: str | None):
    from datasets import Image as ImageFeature

    if image_col is None or image_col not in ds.features:
        image_col = next((k for k, v in ds.features.items() if isinstance(v, ImageFeature)), None)
        if image_col is None:
            raise DataError(f"No image column in dataset features {list(ds.features)}.")
    if label_col is None or label_col not in ds.features:
        label_col = next((k for k in ("label", "labels", "fine_label") if k in ds.features), None)
    first = ds[0][image_col]
    mode = "L" if first.mode in ("L", "1", "I;16") else "RGB"
    x = np.stack([_pil_to_array(img, mode) for img in ds[image_col]])
    y = np.asarray(ds[label_col], dtype=np.int64) if label_col else np.full(len(x), -1, dtype=np.int64)
    names = getattr(ds.features.get(label_col), "names", None) if label_col else None
    return x, y, names


def _from_dataset_dict(dd, name: str, image_col=None, label_col=None, unlabeled_split=None) -> ImageData:
    for split in ("train", "test"):
        if split not in dd:
            raise DataError(f"Dataset {name!r} has splits {list(dd)}; it needs 'train' and 'test'.")
    tx, ty, names = _hf_split_to_arrays(dd["train"], image_col, label_col)
    vx, vy, _ = _hf_split_to_arrays(dd["test"], image_col, label_col)
    unl = None
    for split in [s for s in (unlabeled_split, "unlabeled") if s]:
        if split in dd:
            unl = _to_nchw(_hf_split_to_arrays(dd[split], image_col, None)[0])
            break
    names = names or [str(i) for i in range(int(ty.max()) + 1)]
    return ImageData(name, _to_nchw(tx), torch.from_numpy(ty), _to_nchw(vx), torch.from_numpy(vy), list(names), unl)


STL10_SIDE = 96
STL10_FILES = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin")


def is_stl10_binary(path: str | None) -> bool:
    return bool(path) and Path(path).is_dir() and all((Path(path) / f).is_file() for f in STL10_FILES)


def _stl10_images(path: Path) -> torch.Tensor:
    """uint8 (N, 3, 96, 96), memory-mapped: pages are read when an image is used, not at load time."""
    size = path.stat().st_size
    if size % (3 * STL10_SIDE * STL10_SIDE):
        raise DataError(f"{path} is {size} bytes, not a whole number of 3x96x96 images: the download is incomplete. "
                        "Download stl10_binary.tar.gz again.")
    flat = np.memmap(path, dtype=np.uint8, mode="c")  # copy-on-write: writable for torch, the file stays as is
    # each image is stored channel by channel, column-major: (3, W, H) in C order; swap to (3, H, W)
    return torch.from_numpy(flat.reshape(-1, 3, STL10_SIDE, STL10_SIDE)).transpose(2, 3)


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
    meta = {}
    folds_file = root / "fold_indices.txt"
    if folds_file.is_file():
        meta["folds"] = [[int(i) for i in line.split()] for line in folds_file.read_text().splitlines() if line.strip()]
    return ImageData("stl10", *labels["train"], *labels["test"], names, unl, meta)


def load_hub(name: str, hub_id: str | None = None, unlabeled_extra: bool = False) -> ImageData:
    """Download (or read from the local cache) a dataset with ``datasets.load_dataset``."""
    import datasets

    repo, config, image_col, label_col, unl_split = HF_DATASETS[name]
    repo = hub_id or repo
    splits = ["train", "test"] + ([unl_split] if unlabeled_extra and unl_split else [])
    try:
        dd = {s: datasets.load_dataset(repo, config, split=s) for s in splits}
    except Exception as exc:
        raise DataError(
            f"Could not load {name!r} from the Hugging Face hub ({repo}): {exc}. Check your internet connection "
            f"or HF_DATASETS_OFFLINE, or pass a local copy with --dataset npz|imagefolder|disk and --data-path ..."
        ) from exc
    return _from_dataset_dict(dd, name, image_col, label_col, unl_split if unlabeled_extra else None)


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


def load_imagefolder(root: str, image_size: int | None = None) -> ImageData:
    from PIL import Image

    root_path = Path(root or "")
    if not root:
        raise DataError("--dataset imagefolder needs --data-path ROOT (data.path in a config), a folder with "
                        "train/<class>/ and test/<class>/ sub-folders.")
    if not (root_path / "train").is_dir() or not (root_path / "test").is_dir():
        raise DataError(f"ImageFolder root {root!r} must contain train/<class>/ and test/<class>/ folders.")
    classes = sorted(p.name for p in (root_path / "train").iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DataError(f"{root_path / 'train'} must have one sub-folder per class (found {classes}).")

    def read(files):
        arrays = []
        for f in files:
            img = Image.open(f).convert("RGB")
            if image_size:
                img = img.resize((image_size, image_size), Image.BILINEAR)
            arrays.append(np.asarray(img, dtype=np.uint8))
        sizes = {a.shape for a in arrays}
        if len(sizes) > 1:
            raise DataError(f"Images under {root} have different sizes {sorted(sizes)[:3]}; set data.image_size.")
        return np.stack(arrays) if arrays else np.zeros((0, 1, 1, 3), np.uint8)

    def split(name):
        files, labels = [], []
        for c, cls in enumerate(classes):
            for f in sorted((root_path / name / cls).rglob("*")):
                if f.suffix.lower() in IMAGE_EXTENSIONS:
                    files.append(f)
                    labels.append(c)
        return _to_nchw(read(files)), torch.tensor(labels, dtype=torch.long)

    tx, ty = split("train")
    vx, vy = split("test")
    for name, y in (("train", ty), ("test", vy)):
        if len(y) == 0:
            raise DataError(f"No images under {root_path / name}/<class>/ (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}). "
                            "Put the images in one sub-folder per class.")
    unl = None
    if (root_path / "unlabeled").is_dir():
        files = sorted(f for f in (root_path / "unlabeled").rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
        unl = _to_nchw(read(files))
    return ImageData(root_path.name, tx, ty, vx, vy, classes, unl)


# Local copies whose test split is not the original files (sha256 of the file -> what to call its test split)
KNOWN_COPIES = {
    "d3efad3454a8f728970e97fbe0eb99643bc20ab964f2d74edb085f5a0b2ec6bd": "CIFAR-10 test (JPEG copy)",
}


def describe_source(data_cfg: dict) -> dict:
    """Where a run's images came from, as they were: for model cards (``data_cfg`` is train_config's data)."""
    name, path = data_cfg.get("dataset"), data_cfg.get("path")
    if name == "digits":
        return {"source": "scikit-learn's 8x8 digits (embedded in the package)", "hub_id": None, "copy": None}
    if name in HF_DATASETS and not (path and str(path).endswith(".npz")):
        hub_id = path or HF_DATASETS[name][0]
        return {"source": f"Hugging Face dataset {hub_id}", "hub_id": hub_id, "copy": None}
    kind = {"imagefolder": "ImageFolder", "disk": "save_to_disk folder"}.get(name, "local file")
    copy = None
    if path and str(path).endswith(".npz") and os.path.isfile(path):
        import hashlib

        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        copy = KNOWN_COPIES.get(digest.hexdigest())
    return {"source": f"{kind} {Path(str(path)).name}", "hub_id": None, "copy": copy}


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    y = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return y.round().clamp(0, 255).to(torch.uint8)


def load_data(cfg) -> ImageData:
    """The :class:`ImageData` a :class:`~hybridwrap.config.DataConfig` names."""
    name = cfg.dataset
    if name == "digits":
        data = load_digits()
    elif name == "npz" or (name in HF_DATASETS and cfg.path and cfg.path.endswith(".npz")):
        data = load_npz(cfg.path, name="cifar10" if name == "cifar10" else Path(cfg.path or "npz").stem)
    elif name == "stl10" and cfg.path and Path(cfg.path).is_dir():
        if not is_stl10_binary(cfg.path):
            raise DataError(f"{cfg.path} is not the STL-10 binary release: it needs {', '.join(STL10_FILES)} (and "
                            "unlabeled_X.bin, fold_indices.txt). Pass the extracted stl10_binary/ folder.")
        data = load_stl10_binary(cfg.path, unlabeled=cfg.unlabeled_extra)
    elif name in HF_DATASETS:
        data = load_hub(name, hub_id=cfg.path, unlabeled_extra=cfg.unlabeled_extra)
    elif name == "imagefolder":
        data = load_imagefolder(cfg.path, cfg.image_size)
    elif name == "disk":
        data = load_from_disk(cfg.path)
    else:
        raise DataError(f"Unknown dataset {name!r}. Use digits, cifar10, svhn, stl10, npz, imagefolder or disk.")
    if cfg.max_train_images:
        data.train_x, data.train_y = data.train_x[: cfg.max_train_images], data.train_y[: cfg.max_train_images]
    if cfg.max_eval_images and cfg.max_eval_images < len(data.test_y):
        # evenly spaced, not the first N: test sets stored grouped by class (the CIFAR-10 JPEG copy) stay balanced
        keep = torch.linspace(0, len(data.test_y) - 1, cfg.max_eval_images).round().long()
        data.test_x, data.test_y = data.test_x[keep], data.test_y[keep]
    if cfg.image_size:
        data.train_x, data.test_x = resize(data.train_x, cfg.image_size), resize(data.test_x, cfg.image_size)
        if data.unlabeled_x is not None:
            data.unlabeled_x = resize(data.unlabeled_x, cfg.image_size)
    return data
