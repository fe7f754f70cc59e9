"""Semi-supervised data: sources, balanced labeled subsets, two-stream batches, augmentation."""

from . import augment
from .semisup import Split, TwoStreamBatches, make_split
from .sources import HF_DATASETS, ImageData, load_data

__all__ = ["ImageData", "load_data", "HF_DATASETS", "Split", "make_split", "TwoStreamBatches", "augment"]
