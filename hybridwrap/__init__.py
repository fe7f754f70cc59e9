"""hybridwrap: any timm-style CNN as a HybridNet (Robert, Thome & Cord, ECCV 2018)."""

from .errors import (CheckpointError, ConfigError, DataError, HybridWrapError, InputSizeError, TrainingError,
                     UnknownBackboneError, UnsupportedBackboneError)

# The model's names load on first use (PEP 562), so that `hybridwrap --help` and the commands that need no model
# start without importing torch and timm.
_LAZY = {"HybridNet": ".model", "HybridOutput": ".model", "IntermediatePair": ".model", "ModelConfig": ".config",
         "build_from_config": ".builder", "wrap": ".builder", "list_backbones": ".registry",
         "register_backbone": ".registry"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hybridwrap' has no attribute {name!r}")


def from_pretrained(repo_id_or_dir, **kwargs):
    """Load a HybridNet from a Hub repo or a local directory (a run's ``model/`` or a ``save_pretrained`` folder).

    Args:
        repo_id_or_dir: ``owner/name`` on the Hugging Face Hub, or a local directory.
        **kwargs: ``revision``, ``token``, ``cache_dir``, ``local_files_only``, ``with_teacher`` (also return the
            Mean Teacher) and ``strict`` (see `from_pretrained`).

    Returns:
        The `HybridNet` in eval mode, or ``(model, teacher)`` with ``with_teacher=True``.

    Examples:
        >>> model = hybridwrap.from_pretrained("me/hybridnet-convlarge-cifar10-4000")
        >>> model.label_names[0]
        'airplane'
    """
    from .hub import from_pretrained as _from_pretrained

    return _from_pretrained(repo_id_or_dir, **kwargs)


def save_pretrained(model, directory, teacher=None):
    """Write ``config.json`` + ``model.safetensors`` (+ ``teacher.safetensors``) into ``directory``.

    Functions, not methods: as in timm, the Hub code knows the model and the model knows nothing of the Hub.

    Args:
        model: a `HybridNet`.
        directory: the folder to write (created if needed).
        teacher: the Mean Teacher's E_c + C, saved beside it.

    Examples:
        >>> hybridwrap.save_pretrained(model, "my-model")
        >>> hybridwrap.from_pretrained("my-model")
    """
    from .hub import save_pretrained as _save

    return _save(model, directory, teacher=teacher)


def push_to_hub(model, repo_id, **kwargs):
    """Push a HybridNet to the Hugging Face Hub, as timm's ``push_to_hf_hub``.

    Args:
        model: a `HybridNet`.
        repo_id: ``owner/name``; the repo is created if needed.
        **kwargs: ``token`` (default: ``HF_TOKEN`` or the ``hf auth login`` token, never written anywhere),
            ``private``, ``teacher``, ``commit_message``, ``revision``.

    Returns:
        The commit URL.

    Examples:
        >>> hybridwrap.push_to_hub(model, "me/hybridnet-resnet18-my-images", private=True)
    """
    from .hub import push_to_hub as _push

    return _push(model, repo_id, **kwargs)


def predict(model, images, top_k: int = 5, teacher=None, batch_size: int = 64):
    """The top-k classes, by name, of each image.

    Args:
        model: a `HybridNet`, or a run or model directory, a Hub repo id, an exported classifier or a
            ``model.onnx`` file.
        images: image paths or PIL images; each is read as the model's ``config.json`` says (channels, size,
            mean/std).
        top_k: classes per image.
        teacher: predict with the Mean Teacher (a run or saved model that has one).
        batch_size: images per forward pass.

    Returns:
        One record per image, a dict with the keys ``image``, ``top_k`` (a list of dicts with ``label``, ``index``
        and ``probability``) and ``converted``.

    Examples:
        >>> best = hybridwrap.predict("runs/my_images-resnet18", ["photo.jpg"], top_k=3)[0]["top_k"][0]
        >>> best["label"], round(best["probability"], 2)
        ('cat', 0.93)
    """
    from .prediction import predict as _predict

    return _predict(model, images, top_k=top_k, teacher=teacher, batch_size=batch_size)


def export_classifier(model, directory, teacher=None):
    """Write E_c + C as a timm checkpoint folder (see `export`)."""
    from .export import export_classifier as _export

    return _export(model, directory, teacher=teacher)

from .version import __version__  # noqa: E402 (one definition: hybridwrap/version.py)

__all__ = [
    "wrap", "from_pretrained", "save_pretrained", "push_to_hub", "export_classifier", "predict", "HybridNet", "HybridOutput", "IntermediatePair", "ModelConfig", "build_from_config",
    "register_backbone", "list_backbones", "HybridWrapError", "UnknownBackboneError", "UnsupportedBackboneError",
    "InputSizeError", "ConfigError", "CheckpointError", "DataError", "TrainingError", "__version__",
]
