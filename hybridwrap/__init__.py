"""hybridwrap: any timm-style CNN as a HybridNet (Robert, Thome & Cord, ECCV 2018)."""

from .errors import (CheckpointError, ConfigError, DataError, HybridWrapError, InputSizeError, TrainingError,
                     UnknownBackboneError, UnsupportedBackboneError)
from .model import HybridNet, HybridOutput, IntermediatePair, ModelConfig, build_from_config, wrap
from .registry import list_backbones, register_backbone

__version__ = "0.1.0"

__all__ = [
    "wrap", "HybridNet", "HybridOutput", "IntermediatePair", "ModelConfig", "build_from_config",
    "register_backbone", "list_backbones", "HybridWrapError", "UnknownBackboneError", "UnsupportedBackboneError",
    "InputSizeError", "ConfigError", "CheckpointError", "DataError", "TrainingError", "__version__",
]
