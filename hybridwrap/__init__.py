"""hybridwrap: any timm-style CNN as a HybridNet (Robert, Thome & Cord, ECCV 2018)."""

from .errors import (CheckpointError, ConfigError, DataError, HybridWrapError, InputSizeError, TrainingError,
                     UnknownBackboneError, UnsupportedBackboneError)

# The model's names load on first use (PEP 562), so that `hybridwrap --help` and the commands that need no model
# start without importing torch and timm.
_LAZY = {"HybridNet": ".model", "HybridOutput": ".model", "IntermediatePair": ".model", "ModelConfig": ".config",
         "build_from_config": ".model", "wrap": ".model", "list_backbones": ".registry",
         "register_backbone": ".registry"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hybridwrap' has no attribute {name!r}")


def from_pretrained(repo_id_or_dir, **kwargs):
    """Load a HybridNet from a Hub repo or a local directory (see :func:`hybridwrap.hub.from_pretrained`)."""
    from .hub import from_pretrained as _from_pretrained

    return _from_pretrained(repo_id_or_dir, **kwargs)


def save_pretrained(model, directory, teacher=None):
    """Write ``config.json`` + ``model.safetensors`` (+ ``teacher.safetensors``) (see :mod:`hybridwrap.hub`).

    Functions, not methods: as in timm, the Hub code knows the model and the model knows nothing of the Hub."""
    from .hub import save_pretrained as _save

    return _save(model, directory, teacher=teacher)


def push_to_hub(model, repo_id, **kwargs):
    """Push a HybridNet to the Hub (``token=``, ``private=``, ``teacher=``, ``revision=``); returns the commit URL."""
    from .hub import push_to_hub as _push

    return _push(model, repo_id, **kwargs)


def predict(model, images, top_k: int = 5, teacher=None, batch_size: int = 64):
    """Top-k classes with names of ``images`` (paths or PIL images), one record per image (see
    :func:`hybridwrap.prediction.predict`); ``model``: a HybridNet, or a run / model directory, Hub repo id, exported
    classifier or .onnx file."""
    from .prediction import predict as _predict

    return _predict(model, images, top_k=top_k, teacher=teacher, batch_size=batch_size)


def export_classifier(model, directory, teacher=None):
    """Write E_c + C as a timm checkpoint folder (see :mod:`hybridwrap.export`)."""
    from .export import export_classifier as _export

    return _export(model, directory, teacher=teacher)

from .version import __version__  # noqa: E402 (one definition: hybridwrap/version.py)

__all__ = [
    "wrap", "from_pretrained", "save_pretrained", "push_to_hub", "export_classifier", "predict", "HybridNet", "HybridOutput", "IntermediatePair", "ModelConfig", "build_from_config",
    "register_backbone", "list_backbones", "HybridWrapError", "UnknownBackboneError", "UnsupportedBackboneError",
    "InputSizeError", "ConfigError", "CheckpointError", "DataError", "TrainingError", "__version__",
]
