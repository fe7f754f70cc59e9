"""Images in folders: ``root/train/<class>/``, ``root/test/<class>/`` and an optional ``root/unlabeled/``, every file
opened once before training so that all unreadable ones are reported together (or left out, ``skip_bad``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ..errors import DataError
from .images import FileReader, ImageData, LazyImages, check_files

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def load_imagefolder(root: str, skip_bad: bool = False) -> ImageData:
    """``root/train/<class>/*``, ``root/test/<class>/*`` and optional ``root/unlabeled/**``, decoded when read.
    ``skip_bad``: leave out the files PIL cannot open (listed in ``meta["skipped_images"]`` as (path, why))."""
    root_path = Path(root or "")
    if not root:
        raise DataError("--dataset imagefolder needs --data-path ROOT (data.path in a config), a folder with "
                        "train/<class>/ and test/<class>/ sub-folders.")
    if not root_path.is_dir():
        raise DataError(f"ImageFolder root {root!r} does not exist: pass --data-path with the folder that holds "
                        "train/<class>/ and test/<class>/.")
    if not (root_path / "train").is_dir() or not (root_path / "test").is_dir():
        raise DataError(f"ImageFolder root {root!r} must contain train/<class>/ and test/<class>/ folders.")
    classes = sorted(p.name for p in (root_path / "train").iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DataError(f"{root_path / 'train'} must have one sub-folder per class (found {classes}).")

    skipped: list[tuple[str, str]] = []

    def image_files(folder: Path) -> list[Path]:
        found = sorted(f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
        if not skip_bad or not found:
            return found
        bad = check_files(found, limit=len(found))["bad"]
        skipped.extend(bad)
        unreadable = {path for path, _ in bad}
        return [f for f in found if str(f) not in unreadable]

    def split(name):
        files, labels = [], []
        for c, cls in enumerate(classes):
            found = image_files(root_path / name / cls) if (root_path / name / cls).is_dir() else []
            files += found
            labels += [c] * len(found)
        if not files:
            raise DataError(f"No images under {root_path / name}/<class>/ (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}). "
                            "Put the images in one sub-folder per class.")
        return LazyImages(FileReader(files)), torch.tensor(labels, dtype=torch.long)

    tx, ty = split("train")
    vx, vy = split("test")
    for name, labels in (("train", ty), ("test", vy)):
        counts = torch.bincount(labels, minlength=len(classes))
        empty = [classes[c] for c in range(len(classes)) if counts[c] == 0]
        if empty:
            fix = ("put images in them or remove them: a class without training images cannot be learned"
                   if name == "train" else "add test images for them, or remove them from train/: every class is scored")
            raise DataError(f"{len(empty)} class(es) of {root_path / 'train'} have no image in {root_path / name}/: "
                            f"{', '.join(empty[:10])}{' ...' if len(empty) > 10 else ''}; {fix}.")
    unl = None
    if (root_path / "unlabeled").is_dir():
        files = image_files(root_path / "unlabeled")
        unl = LazyImages(FileReader(files)) if files else None
    meta = {"unlabeled_source": "the unlabeled/ folder"} if unl is not None else {}
    if skipped:
        meta["skipped_images"] = skipped
    if not skip_bad:  # every file opened once now, not found broken one at a time mid-training
        files = [f for x in (tx, vx, unl) if x is not None for f in x.reader.files]
        meta["file_check"] = report = check_files(files)
        if report["bad"]:
            raise unreadable_files(report)
    return ImageData(root_path.name, tx, ty, vx, vy, classes, unl, meta)


def unreadable_files(report: dict) -> DataError:
    """The error for the unreadable files of a :func:`~hybridwrap.data.images.check_files` report: the count, the
    first ten named, every one with its reason in a file (nothing of the run is written before it)."""
    bad = report["bad"]
    with tempfile.NamedTemporaryFile("w", prefix="hybridwrap-unreadable-", suffix=".txt", delete=False) as f:
        f.write("".join(f"{path}\t{why}\n" for path, why in bad))
    sampled = f" (of {report['checked']} checked of {report['total']})" if report["checked"] < report["total"] else ""
    return DataError(f"{len(bad)} unreadable image file(s){sampled}: {'; '.join(p for p, _ in bad[:10])}"
                     f"{' ...' if len(bad) > 10 else ''} (every one, with the reason: {f.name}). Remove or replace "
                     "them, or pass --skip-bad-images to train without them.")
