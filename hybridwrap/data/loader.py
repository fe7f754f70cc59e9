"""Training batches made in DataLoader worker processes, each a pure function of (seed, step).

``StepBatches`` yields, for every step from ``start`` to ``end``, this process's share of the global batch:
n_s/world labeled and n_u/world unlabeled images, augmented (two draws when a Mean Teacher needs its own
view). Worker w of k makes steps start+w, start+w+k, ...; the DataLoader takes their outputs in turn, so the
steps arrive in order whatever the number of workers, and a run resumed at step s makes exactly the batches an
uninterrupted run would have made from s on.

Two ways to draw the augmentation, chosen by where the images are:

* In memory (digits, npz): the whole global batch is read and augmented with one generator seeded by
  (seed, step), then each process takes its slice. This is the stream of every result published so far.
* Read on access (ImageFolder, Hugging Face datasets, STL-10 binary): each image draws its augmentation from
  a generator seeded by (seed, step, its position in the global batch, view), so that a process reads and
  decodes only its own share.

A streamed unlabeled pool (``StreamedImages``) gives each process its next n_u/world images in stream order;
a worker reads past the other workers' images without decoding them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from ..errors import DataError
from . import augment as aug
from .images import StreamedImages, concat, is_lazy
from .semisup import TwoStreamBatches


class StepBatch(NamedTuple):
    step: int
    index: torch.Tensor  # pool index of each image (-1 for streamed images): Temporal Ensembling's key
    images: torch.Tensor  # uint8 (n, C, H, W), labeled images first
    labels: torch.Tensor  # -1 for unlabeled images
    teacher_images: torch.Tensor | None  # another augmentation draw, for a Mean Teacher


class StepBatches(IterableDataset):
    def __init__(self, images, labels: torch.Tensor, batches: TwoStreamBatches, mode: str, translate: int,
                 teacher_view: bool, seed: int, rank: int = 0, world: int = 1, start: int = 0, end: int = 0,
                 stream: StreamedImages | None = None):
        self.images, self.labels, self.batches = images, labels, batches
        self.mode, self.translate, self.teacher_view = mode, translate, teacher_view
        self.seed, self.rank, self.world, self.start, self.end = seed, rank, world, start, end
        self.stream = stream
        self.pool_parts: dict = {}  # what the unlabeled pool holds (step_batches fills it in)
        self.per_image = is_lazy(images) or stream is not None
        self.n_s, self.n_u = batches.n_s // world, batches.n_u // world

    # -- one step ------------------------------------------------------------------------------
    def make(self, step: int, unlabeled_stream: Iterator | None = None) -> StepBatch:
        """This process's share of step ``step``'s batch (``unlabeled_stream``: its streamed images)."""
        if not self.per_image:
            return self._make_global(step)
        lab, unl = self.batches(step)
        labeled = lab[self.rank * self.n_s:(self.rank + 1) * self.n_s]
        positions = list(range(self.rank * self.n_s, (self.rank + 1) * self.n_s))
        if unlabeled_stream is None:
            unlabeled = unl[self.rank * self.n_u:(self.rank + 1) * self.n_u]
            raw = self.images[torch.cat([labeled, unlabeled])]
            index = torch.cat([labeled, unlabeled])
        else:
            streamed = [self.stream.decode(next(unlabeled_stream)) for _ in range(self.n_u)]
            own = self.images[labeled]
            sizes = {tuple(x.shape) for x in streamed} | {tuple(own.shape[1:])}
            if len(sizes) > 1:
                raise DataError(f"The streamed images of {self.stream.name} and the labeled ones differ in size "
                                f"{sorted(sizes)[:3]}: set data.image_size (e.g. --image-size 224) to resize them all.")
            raw = torch.cat([own, torch.stack(streamed)])
            index = torch.cat([labeled, torch.full((self.n_u,), -1, dtype=torch.long)])
        positions += [len(lab) + p for p in range(self.rank * self.n_u, (self.rank + 1) * self.n_u)]
        views = [self._augment_each(raw, step, positions, view) for view in range(1 + self.teacher_view)]
        labels = torch.cat([self.labels[labeled], torch.full((self.n_u,), -1, dtype=torch.long)])
        return StepBatch(step, index, views[0], labels, views[1] if self.teacher_view else None)

    def _augment_each(self, raw: torch.Tensor, step: int, positions: list[int], view: int) -> torch.Tensor:
        out = torch.empty_like(raw)
        for i, p in enumerate(positions):
            g = torch.Generator().manual_seed(((self.seed * 1_000_003 + step) * 7_919 + p) * 4 + view)
            out[i] = aug.augment(raw[i:i + 1], self.mode, self.translate, g)[0]
        return out

    def _make_global(self, step: int) -> StepBatch:
        lab, unl = self.batches(step)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step * 7_919 + 17)
        raw = self.images[torch.cat([lab, unl])]
        views = [aug.augment(raw, self.mode, self.translate, g)]
        if self.teacher_view:  # the teacher sees another draw of the augmentation
            views.append(aug.augment(raw, self.mode, self.translate, g))
        ns, nu = self.n_s, self.n_u
        mine = torch.cat([torch.arange(self.rank * ns, (self.rank + 1) * ns),
                          len(lab) + torch.arange(self.rank * nu, (self.rank + 1) * nu)])
        index = torch.cat([lab, unl])[mine]
        labels = torch.cat([self.labels[index[:ns]], torch.full((nu,), -1, dtype=torch.long)])
        return StepBatch(step, index, views[0][mine], labels, views[1][mine] if self.teacher_view else None)

    # -- the stream of steps -------------------------------------------------------------------
    def __iter__(self) -> Iterator[StepBatch]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        records = None
        if self.stream is not None:  # this process's stream from the first image of step `start`
            records = self.stream.records(self.rank, self.world, self.seed, self.start * self.n_u)
        try:
            for step in range(self.start, self.end):
                if (step - self.start) % workers != worker:  # the DataLoader asks worker 0 first
                    if records is not None:  # another worker's images: read past them, undecoded
                        for _ in range(self.n_u):
                            next(records)
                    continue
                yield self.make(step, records)
        finally:
            if records is not None:
                records.close()


def step_batches(data, split, data_cfg, seed: int, teacher_view: bool, rank: int = 0, world: int = 1) -> StepBatches:
    """The training batches of ``data`` (an ImageData) with ``split``'s labeled subset and validation hold-out.

    The unlabeled pool is every training image outside validation and outside the labeled subset (with
    ``data_cfg.unlabeled_includes_labeled`` the labeled ones too), followed by the extra unlabeled images, in
    one index space; or, when those are streamed, the stream."""
    left_out = set(split.val) | (set() if data_cfg.unlabeled_includes_labeled else set(split.labeled))
    pool = [i for i in range(len(data.train_y)) if i not in left_out]
    images, stream = data.train_x, None
    if isinstance(data.unlabeled_x, StreamedImages):
        stream = data.unlabeled_x
    elif data.unlabeled_x is not None:
        images = concat([data.train_x, data.unlabeled_x])
        pool += list(range(len(data.train_x), len(images)))
    if not pool and stream is None and data_cfg.num_labels is None:
        # every training image is labeled (own data, data.num_labels unset) and there is no unlabeled folder: the
        # reconstruction and stability terms see the labeled images, as unlabeled_includes_labeled would do
        pool = sorted(split.labeled)
    if not pool and stream is None:
        raise DataError(f"Every training image of {data.name} outside validation is labeled (data.num_labels="
                        f"{len(split.labeled)}), so no unlabeled image is left for the unlabeled stream. Lower "
                        "data.num_labels, add unlabeled images, or set data.unlabeled_includes_labeled=true.")
    labels = torch.cat([data.train_y, torch.full((len(images) - len(data.train_y),), -1)])
    batches = TwoStreamBatches(split.labeled, pool, data_cfg.labeled_batch_size, data_cfg.unlabeled_batch_size, seed)
    mode = aug.resolve(data_cfg.augment, data_cfg.dataset, data.image_size)
    steps = StepBatches(images, labels, batches, mode, aug.translation(data_cfg.translate, data.image_size),
                        teacher_view, seed, rank, world, stream=stream)
    steps.pool_parts = pool_parts(data, split, pool, stream)
    return steps


def pool_parts(data, split, pool: list[int], stream: StreamedImages | None) -> dict:
    """What the unlabeled stream is made of, for the record (metrics.json) and the model card."""
    labeled, n_train = set(split.labeled), len(data.train_y)
    in_train = [i for i in pool if i < n_train]
    return {"unlabeled_train": sum(i not in labeled for i in in_train), "labeled_train": sum(i in labeled for i in in_train),
            "extra": len(pool) - len(in_train), "extra_source": data.meta.get("unlabeled_source"),
            "stream": stream.name if stream is not None else None}


def default_workers(in_memory: bool, world: int = 1) -> int:
    """No workers for in-memory images (nothing to decode); else half of this process's CPU cores, up to 8."""
    if in_memory:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    return max(1, min(8, cores // max(world, 1) // 2))


def step_loader(batches: StepBatches, num_workers: int) -> DataLoader:
    return DataLoader(batches, batch_size=None, num_workers=num_workers, prefetch_factor=4 if num_workers else None,
                      pin_memory=torch.cuda.is_available())  # page-locked batches copy to the GPU faster


class LabeledImages(Dataset):
    """(image, label) pairs for evaluation, read on access when the images are."""

    def __init__(self, images, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i:i + 1][0], self.labels[i]


def eval_loader(images, labels: torch.Tensor, batch_size: int, num_workers: int) -> DataLoader:
    return DataLoader(LabeledImages(images, labels), batch_size=batch_size, shuffle=False, num_workers=num_workers)
