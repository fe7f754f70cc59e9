"""Weights as ``model.safetensors`` + ``config.json``; strict, atomic, never pickled."""

from __future__ import annotations

import copy
import difflib
import json
import os
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .builder import build_from_config
from .config import ModelConfig
from .errors import CheckpointError
from .registry import get_backbone
from .saved_configs import label_names, model_config_from_dict
from .version import __version__
from .weights import state_dict_mismatch

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
FORMAT_VERSION = 1


def usual_mode(path: Path) -> None:
    """Give a written file the mode any new file gets here (0644 under the usual umask): safetensors writes its
    files 0600, which other users and containers then cannot read."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_state_dict(state: dict[str, torch.Tensor], path: Path, metadata: dict | None = None) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp),
              metadata={k: str(v) for k, v in (metadata or {}).items()})
    usual_mode(tmp)
    os.replace(tmp, path)


def config_dict(model_config: ModelConfig, extra: dict | None = None) -> dict:
    entry = get_backbone(model_config.backbone)
    d = {
        "format_version": FORMAT_VERSION,
        "hybridwrap_version": __version__,
        "model": {**model_config.__dict__, "input_size": list(model_config.input_size or [])},
        # Hugging Face's convention for class names, beside the model's own label_names
        "id2label": {str(i): name for i, name in enumerate(label_names(model_config))},
        "backbone_package": entry.package,
        "backbone_version": entry.version,
    }
    d.update(extra or {})
    return d


def save_model(model, directory: str | Path, extra_config: dict | None = None, teacher=None) -> Path:
    """Write ``model.safetensors`` (+ ``teacher.safetensors``) and ``config.json`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_state_dict(model.state_dict(), directory / WEIGHTS_NAME, {"format": "pt"})
    if teacher is not None:
        save_state_dict(teacher.state_dict(), directory / "teacher.safetensors", {"format": "pt"})
    atomic_write_text(directory / CONFIG_NAME, json.dumps(config_dict(model.config, extra_config), indent=2))
    return directory


def require_finished_run(run_dir: str | Path) -> Path:
    """``run_dir`` if it holds a trained model, else an error that says how to get one."""
    run_dir = Path(run_dir)
    if (run_dir / "model" / CONFIG_NAME).is_file():
        return run_dir
    seeds = sorted(p.name for p in run_dir.glob("seed-*") if p.is_dir())
    if seeds:
        raise CheckpointError(f"{run_dir} holds several seeds: pass one of them, e.g. {run_dir / seeds[0]}.")
    if (run_dir / "train_config.json").is_file() or (run_dir / "checkpoints").is_dir():
        raise CheckpointError(f"{run_dir} has not finished training (no model/{CONFIG_NAME} yet). Finish it with "
                              f"`hybridwrap train --resume --output-dir {run_dir}`.")
    raise CheckpointError(f"{run_dir} is not a hybridwrap run directory (no train_config.json, no model/): pass the "
                          "--output-dir of a finished `hybridwrap train`.")


def read_config(directory: str | Path) -> dict:
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{directory} has no {CONFIG_NAME}: it is not a saved HybridNet. Pass the run's "
                              "model directory (RUN_DIR/model) or a directory written by save_pretrained().")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); the save was interrupted or the file edited.") from exc
    written_by = str(cfg.get("hybridwrap_version", "unknown"))
    newer = _version_tuple(written_by) > _version_tuple(__version__)
    if cfg.get("format_version", 0) > FORMAT_VERSION:
        why = (f"it was written by hybridwrap {written_by}, newer than this {__version__}: upgrade with "
               "`pip install -U hybridwrap`" if newer else
               f"hybridwrap {__version__} reads format_version <= {FORMAT_VERSION}, and the file says it was written "
               f"by hybridwrap {written_by}, which never wrote that format: the file was edited; restore it")
        raise CheckpointError(f"{path} has format_version {cfg.get('format_version')}: {why}.")
    if newer:
        warnings.warn(f"{path} was written by hybridwrap {written_by}, newer than this {__version__}; if loading "
                      "fails, upgrade with `pip install -U hybridwrap`.", stacklevel=2)
    if not isinstance(cfg.get("model"), dict) or not cfg["model"].get("backbone"):
        raise CheckpointError(f"{path} names no model.backbone: it is not a complete hybridwrap config. Restore the "
                              "file written with the weights (save_pretrained / the training run).")
    if not newer:  # a newer hybridwrap may know keys this one does not: config.py says so when building
        _check_model_keys(cfg["model"], path)
    return cfg


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _check_model_keys(model: dict, path: Path) -> None:
    """Keys this hybridwrap does not know, in a config it could have written: a typo, named with its fix."""
    known = list(ModelConfig.__dataclass_fields__)
    for key in sorted(set(model) - set(known)):
        close = difflib.get_close_matches(key, known, n=1)
        fix = f"rename it to {close[0]!r}" if close else "remove it"
        raise CheckpointError(f"{path}: unknown key model.{key!r}; {fix}. (Valid keys: {', '.join(known)}.)")


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path} not found: the directory has a config but no weights.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, Exception) as exc:
        raise CheckpointError(f"{path} is truncated or corrupted ({exc}). Re-download or re-save it.") from exc


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    missing, unexpected, wrong = state_dict_mismatch(module.state_dict(), state)
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"The weights in {source} do not fit the model its config describes: {len(missing)} missing "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), {len(wrong)} with other "
            f"shapes (e.g. {wrong[:3]}). The config and weights come from different models; re-save them together."
        )
    module.load_state_dict(state, strict=True)


def load_model(directory: str | Path):
    """Rebuild the HybridNet saved in ``directory`` (strict) and its teacher backbone if one was saved."""
    directory = Path(directory)
    cfg = read_config(directory)
    model_cfg = model_config_from_dict(cfg["model"])
    model = build_from_config(model_cfg)
    load_strict(model, load_weights(directory / WEIGHTS_NAME), str(directory / WEIGHTS_NAME))
    teacher = None
    if (directory / "teacher.safetensors").is_file():
        teacher = copy.deepcopy(model.backbone)
        load_strict(teacher, load_weights(directory / "teacher.safetensors"), str(directory / "teacher.safetensors"))
    return model, teacher
