"""Semi-supervised data: sources, images read on access, balanced labeled subsets, the step-indexed loader,
augmentation."""

from . import augment
from .images import LazyImages, StreamedImages
from .loader import StepBatches
from .semisup import Split, TwoStreamBatches, make_split
from .sources import HF_DATASETS, ImageData, load_data

__all__ = ["ImageData", "load_data", "HF_DATASETS", "LazyImages", "StreamedImages", "Split", "make_split",
           "TwoStreamBatches", "StepBatches", "augment"]
