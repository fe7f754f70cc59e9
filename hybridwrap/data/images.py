"""Image collections read on access, so that memory does not grow with the number of images.

``LazyImages`` behaves like the uint8 tensor (N, C, H, W) an in-memory source holds: ``x[i]``, ``x[a:b]``
and ``x[index_tensor]`` return uint8 tensors, ``x.shape`` and ``len(x)`` are known, but an image is only
decoded (and resized) when it is read. A *reader* turns one index into one HWC or CHW uint8 array; readers
are small picklable objects, so DataLoader workers can use them under any start method.

``StreamedImages`` is a pool that is never indexed: a Hugging Face ``datasets`` stream (``streaming=True``)
for unlabeled pools that do not fit on disk. Each process reads its own part of it (``split_dataset_by_node``).
"""

from __future__ import annotations

import copy
import io
import itertools
import os
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import DataError


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) resized to size x size (bilinear, antialiased), unchanged if it already is."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    y = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return y.round().clamp(0, 255).to(torch.uint8)


def to_chw(a: np.ndarray) -> torch.Tensor:
    """One image, HW / HWC (as PIL gives) or an already-CHW tensor, as a uint8 CHW tensor."""
    if isinstance(a, torch.Tensor):
        return a
    a = np.asarray(a, dtype=np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


class FileReader:
    """Image files decoded with PIL, converted to ``mode`` ("RGB" or "L")."""

    def __init__(self, files: Sequence[Path | str], mode: str = "RGB"):
        # one numpy array, not a list of str: worker processes share it instead of copying every page that a
        # reference count touches (a list of a million paths would be copied into each worker)
        self.files = np.array([os.fsencode(f) for f in files], dtype=bytes)
        self.mode = mode

    def __len__(self) -> int:
        return len(self.files)

    def __call__(self, i: int) -> torch.Tensor:
        path = os.fsdecode(self.files[i])
        try:
            with Image.open(path) as img:
                return to_chw(np.asarray(img.convert(self.mode), dtype=np.uint8))
        except OSError as exc:
            raise DataError(f"Cannot read image {path} ({exc}). Remove or replace the file.") from exc

    def describe(self) -> str:
        return str(Path(os.fsdecode(self.files[0])).parent) if len(self.files) else "an empty file list"


HEADER_CHECK_LIMIT = 20_000  # files opened before training; a larger set is sampled evenly, and the note says so


def check_files(files: Sequence[Path | str], limit: int = HEADER_CHECK_LIMIT) -> dict:
    """Open every file (``limit`` evenly spaced ones of a larger set) and check its structure with PIL, without
    decoding the pixels: ``{"bad": [(path, why), ...], "checked": n, "total": N, "modes": {"RGB": n, ...}}``."""
    files = list(files)
    picked = files if len(files) <= limit else [files[round(i * (len(files) - 1) / (limit - 1))] for i in range(limit)]
    bad, modes = [], {}
    for f in picked:
        path = os.fsdecode(f)
        try:
            with Image.open(path) as img:
                modes[img.mode] = modes.get(img.mode, 0) + 1
                img.verify()
        except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for a broken file; each is a bad file
            bad.append((path, f"{type(exc).__name__}: {exc}"))
    return {"bad": bad, "checked": len(picked), "total": len(files), "modes": modes}


class ArrowReader:
    """Rows of a Hugging Face ``datasets.Dataset`` (memory-mapped Arrow), the image decoded on access."""

    def __init__(self, ds, column: str, mode: str):
        self.ds, self.column, self.mode = ds, column, mode

    def __len__(self) -> int:
        return len(self.ds)

    def __call__(self, i: int) -> torch.Tensor:
        return to_chw(np.asarray(self.ds[int(i)][self.column].convert(self.mode), dtype=np.uint8))

    def describe(self) -> str:
        return f"the {self.column!r} column of a datasets.Dataset"


class ArrayReader:
    """A uint8 (N, C, H, W) tensor, typically over a memory-mapped file: pages are read when used."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __call__(self, i: int) -> torch.Tensor:
        return self.x[int(i)].contiguous()

    def describe(self) -> str:
        return "a memory-mapped array"


class LazyImages:
    """N images read on access (optionally resized to ``size`` x ``size``), indexed like a uint8 tensor."""

    def __init__(self, reader, size: int | None = None, indices: Sequence[int] | None = None,
                 shape: tuple[int, int, int] | None = None):
        self.reader, self.size = reader, size
        self.indices = None if indices is None else torch.as_tensor(indices, dtype=torch.long)
        self._shape = shape

    def __len__(self) -> int:
        return len(self.reader) if self.indices is None else len(self.indices)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        if self._shape is None:  # from the first image: channels always, sides when not resized
            self._shape = tuple(self.read_one(0).shape) if len(self) else (3, self.size or 1, self.size or 1)
        return (len(self),) + tuple(self._shape)

    def read_one(self, i: int) -> torch.Tensor:
        j = int(self.indices[i]) if self.indices is not None else int(i)
        x = self.reader(j)
        return resize(x[None], self.size)[0] if self.size else x

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, (int, np.integer)) or (isinstance(key, torch.Tensor) and key.ndim == 0):
            return self.read_one(int(key) % len(self))
        if isinstance(key, slice):
            positions = range(*key.indices(len(self)))
        else:
            positions = torch.as_tensor(key, dtype=torch.long).reshape(-1).tolist()
        images = [self.read_one(i) for i in positions]
        if not images:
            return torch.zeros((0,) + self.shape[1:], dtype=torch.uint8)
        sizes = {tuple(x.shape) for x in images}
        if len(sizes) > 1:
            raise DataError(f"Images read from {self.reader.describe()} have different sizes {sorted(sizes)[:3]}: "
                            "set data.image_size (e.g. --image-size 224) to resize every image to one size.")
        return torch.stack(images)

    def select(self, indices: Sequence[int]) -> "LazyImages":
        """A view of some of the images (still read on access)."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        base = indices if self.indices is None else self.indices[indices]
        return LazyImages(self.reader, self.size, base, self._shape)

    def resized(self, size: int | None) -> "LazyImages":
        known = (self._shape[0], size, size) if size and self._shape else None  # channels stay, sides are set
        return LazyImages(self.reader, size, self.indices, known)

    def check_sizes(self, sample: int = 8) -> None:
        """Fail at load time, not at step 1000, when the images differ in size and no resize is set."""
        if not self.size and len(self):
            self[torch.linspace(0, len(self) - 1, min(sample, len(self))).round().long()]


class ConcatImages:
    """Training images followed by extra unlabeled ones, in one index space, still read on access."""

    def __init__(self, parts: Sequence):
        self.parts = list(parts)
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def shape(self):
        return (len(self),) + tuple(self.parts[0].shape[1:])

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, (int, np.integer)) or (isinstance(key, torch.Tensor) and key.ndim == 0):
            return self[[int(key) % len(self)]][0]
        positions = torch.as_tensor(range(*key.indices(len(self))) if isinstance(key, slice) else key,
                                    dtype=torch.long).reshape(-1)
        out = None
        for k, part in enumerate(self.parts):
            lo, hi = int(self.offsets[k]), int(self.offsets[k + 1])
            where = ((positions >= lo) & (positions < hi)).nonzero().flatten()
            if len(where):
                images = part[positions[where] - lo]
                if out is None:
                    out = torch.empty((len(positions),) + tuple(images.shape[1:]), dtype=torch.uint8)
                out[where] = images
        return out if out is not None else torch.zeros((0,) + tuple(self.shape[1:]), dtype=torch.uint8)


def is_lazy(images) -> bool:
    return not isinstance(images, torch.Tensor)


def concat(parts: Sequence):
    """torch.cat for in-memory images; a lazy concatenation when any part is read on access."""
    return ConcatImages(parts) if any(is_lazy(p) for p in parts) else torch.cat(list(parts))


def take(images, indices):
    """Some of the images: a tensor for in-memory ones, a view for lazy ones (nothing is read)."""
    return images.select(indices) if is_lazy(images) else images[indices]


class StreamedImages:
    """An unlabeled pool read as a stream (Hugging Face ``datasets`` with ``streaming=True``).

    The order is a function of the seed only: the stream is shuffled with ``seed`` (shards, then a
    ``buffer_size`` buffer), re-shuffled each pass with ``set_epoch``, and split between processes with
    ``split_dataset_by_node``. ``items(rank, world, seed, start)`` yields this process's images from position
    ``start`` on, so a resumed run skips what it had read (without decoding it) and sees the same images.
    """

    def __init__(self, stream, column: str, mode: str, size: int | None, buffer_size: int, name: str):
        from datasets import Image as ImageFeature

        self.stream = stream.cast_column(column, ImageFeature(decode=False))  # decode only what this worker uses
        self.column, self.mode, self.size, self.buffer_size, self.name = column, mode, size, buffer_size, name

    def resized(self, size: int | None) -> "StreamedImages":
        other = copy.copy(self)
        other.size = size
        return other

    def records(self, rank: int, world: int, seed: int, start: int = 0) -> Generator[dict, None, None]:
        """Undecoded records of this process's stream from position ``start``, pass after pass."""
        from datasets.distributed import split_dataset_by_node

        mine = split_dataset_by_node(self.stream.shuffle(seed=seed, buffer_size=self.buffer_size), rank, world)

        def passes():
            skip = start
            for epoch in itertools.count():
                mine.set_epoch(epoch)
                empty = True
                # .iter(), not iter(): inside a DataLoader worker, datasets' __iter__ would read only that worker's
                # shards, and the stream would then depend on the number of workers
                for batch in mine.iter(batch_size=1):
                    empty = False
                    if skip:
                        skip -= 1
                        continue
                    yield {key: values[0] for key, values in batch.items()}
                if empty:
                    raise DataError(f"The streamed unlabeled split of {self.name} gives no images to process {rank} "
                                    f"of {world}. Check the split, or use fewer processes.")

        return passes()  # a generator: close() it when done, so that datasets' reader threads stop in order

    def decode(self, record: dict) -> torch.Tensor:
        value = record[self.column]
        source = io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"]
        with Image.open(source) as img:
            x = to_chw(np.asarray(img.convert(self.mode), dtype=np.uint8))
        return resize(x[None], self.size)[0] if self.size else x


@dataclass
class ImageData:
    name: str
    train_x: torch.Tensor | LazyImages  # uint8 (N, C, H, W), or read on access
    train_y: torch.Tensor  # int64 (N,)
    test_x: torch.Tensor | LazyImages
    test_y: torch.Tensor
    class_names: list[str]
    # extra unlabeled images (SVHN extra, STL-10 unlabeled), or a stream of them (data.streaming)
    unlabeled_x: torch.Tensor | LazyImages | StreamedImages | None = None
    meta: dict = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return self.train_x.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.train_x.shape[-2:])

    @property
    def in_memory(self) -> bool:
        return not any(is_lazy(x) for x in (self.train_x, self.test_x, self.unlabeled_x) if x is not None)
