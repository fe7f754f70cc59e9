"""Semi-supervised splits and two-stream batches.

Every batch is a pure function of (seed, step): resuming at step k draws exactly the batch an
uninterrupted run would have drawn, with no sampler state to save.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..errors import DataError


@dataclass
class Split:
    """Indices into the training set: the labeled subset, the validation hold-out and the unlabeled pool."""

    num_labels: int
    labels_seed: int
    val_size: int
    labeled: list[int]
    val: list[int]

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "Split":
        return cls(**json.loads(path.read_text()))


def make_split(train_y: torch.Tensor, num_classes: int, num_labels: int | None, seed: int, val_size: int = 0) -> Split:
    """A validation hold-out (random, seeded) and a balanced labeled subset of N/num_classes per class
    (``num_labels=None``: every image outside the hold-out is labeled)."""
    n = len(train_y)
    if train_y.numel() and (int(train_y.min()) < 0 or int(train_y.max()) >= num_classes):
        bad = train_y[(train_y < 0) | (train_y >= num_classes)][:5].tolist()
        fix = (f"Set model.num_classes={int(train_y.max()) + 1}" if int(train_y.min()) >= 0 else
               "Labels must be 0..num_classes-1 (-1 is not a label: put unlabeled images in the unlabeled split)")
        raise DataError(f"Training labels {bad} are outside 0..{num_classes - 1}. {fix}.")
    if num_labels is None:  # all labeled: the hold-out, then every other training image
        if val_size < 0 or val_size >= n:
            raise DataError(f"data.val_size={val_size} must be between 0 and the {n} training images.")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        return Split(n - val_size, seed, val_size, sorted(order[val_size:].tolist()), sorted(order[:val_size].tolist()))
    if val_size < 0 or val_size >= n:
        raise DataError(f"data.val_size={val_size} must be between 0 and the {n} training images.")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g)
    val = order[:val_size]
    rest = order[val_size:]
    if num_labels <= 0 or num_labels % num_classes:  # suggest a count these images can give
        available = min(int((train_y[rest] == k).sum()) for k in range(num_classes))
        fitting = num_classes * max(1, min(max(num_labels, 1) // num_classes, available))
        raise DataError(f"data.num_labels={num_labels} must be a positive multiple of the {num_classes} classes "
                        f"(N/num_classes labeled images per class), e.g. {fitting} (at most "
                        f"{num_classes * available} with these images).")
    per_class = num_labels // num_classes
    labeled = []
    for c in range(num_classes):
        idx = rest[train_y[rest] == c]
        if len(idx) < per_class:
            raise DataError(f"data.num_labels={num_labels} asks for {per_class} labeled images of class {c}, but only "
                            f"{len(idx)} exist outside the validation hold-out. Lower data.num_labels "
                            f"(at most {num_classes * min(int((train_y[rest] == k).sum()) for k in range(num_classes))}).")
        labeled += idx[:per_class].tolist()
    return Split(num_labels, seed, val_size, sorted(labeled), sorted(val.tolist()))


def fold_split(folds: list[list[int]] | None, fold: int, n: int, seed: int, val_size: int = 0) -> Split:
    """A predefined labeled fold (STL-10's fold_indices.txt) and a seeded validation hold-out from the rest."""
    if not folds:
        raise DataError("data.fold needs a dataset with predefined folds: the STL-10 binary release (--dataset stl10 "
                        "--data-path stl10_binary/, with fold_indices.txt). Unset data.fold to draw a balanced subset.")
    if not 0 <= fold < len(folds):
        raise DataError(f"data.fold={fold} must be between 0 and {len(folds) - 1} ({len(folds)} folds).")
    labeled = sorted(set(folds[fold]))
    if labeled and (labeled[0] < 0 or labeled[-1] >= n):
        raise DataError(f"Fold {fold} names training images outside 0..{n - 1}: fold_indices.txt does not match "
                        "train_X.bin (or data.max_train_images cut the training set).")
    taken = set(labeled)
    rest = torch.tensor([i for i in range(n) if i not in taken], dtype=torch.long)
    if val_size < 0 or val_size >= len(rest):
        raise DataError(f"data.val_size={val_size} must be between 0 and the {len(rest)} training images outside "
                        f"fold {fold}.")
    val = rest[torch.randperm(len(rest), generator=torch.Generator().manual_seed(seed))[:val_size]]
    return Split(len(labeled), seed, val_size, labeled, sorted(val.tolist()))


class TwoStreamBatches:
    """n_s labeled + n_u unlabeled indices per step, each stream cycling through seeded permutations."""

    def __init__(self, labeled: list[int], unlabeled: list[int], n_s: int, n_u: int, seed: int):
        batch = n_s + n_u
        for name, v, pool in (("labeled_batch_size", n_s, labeled), ("unlabeled_batch_size", n_u, unlabeled)):
            if v <= 0 or v > batch:
                raise DataError(f"data.{name}={v} must be at least 1 (the paper uses n_s=20, n_u=80).")
            if not pool:
                raise DataError(f"No images for data.{name}: the {name.split('_')[0]} pool is empty.")
        self.labeled = torch.as_tensor(labeled, dtype=torch.long)
        self.unlabeled = torch.as_tensor(unlabeled, dtype=torch.long)
        self.n_s, self.n_u, self.seed = n_s, n_u, seed
        self._cache: dict[tuple[str, int], torch.Tensor] = {}

    def _perm(self, stream: str, cycle: int, n: int) -> torch.Tensor:
        key = (stream, cycle)
        if key not in self._cache:
            if len(self._cache) > 4:  # a step spans at most two cycles per stream; a perm is 8 bytes per image
                self._cache.clear()
            salt = 1 if stream == "l" else 2
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + salt * 7_919 + cycle)
            self._cache[key] = torch.randperm(n, generator=g)
        return self._cache[key]

    def _take(self, stream: str, pool: torch.Tensor, step: int, k: int) -> torch.Tensor:
        n = len(pool)
        positions = torch.arange(step * k, (step + 1) * k)
        out = torch.empty(k, dtype=torch.long)
        for i, p in enumerate(positions.tolist()):
            cycle, offset = divmod(p, n)
            out[i] = pool[self._perm(stream, cycle, n)[offset]]
        return out

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._take("l", self.labeled, step, self.n_s), self._take("u", self.unlabeled, step, self.n_u)
