"""Export the deployed classifier (E_c + C, or the Mean Teacher) as a plain timm checkpoint.

The folder holds timm's ``config.json`` (``architecture``, ``num_classes``, ``num_features``,
``pretrained_cfg`` with input size / mean / std, ``model_args``) and ``model.safetensors``, so that
``timm.create_model("local-dir:DIR", pretrained=True)`` or ``"hf-hub:owner/name"`` rebuilds it. A plugin
backbone must be registered in timm first: the config names the one import that does it.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import ConfigError
from .preprocess import describe
from .registry import get_backbone
from .serialization import atomic_write_text, save_state_dict

PLUGIN_MODULES = {"convlarge": "hybridwrap_plugins.convlarge", "convlarge_stl10": "hybridwrap_plugins.convlarge",
                  "shakeshake26_2x96d": "hybridwrap_plugins.shakeshake"}


def timm_config(model) -> dict:
    cfg = model.config
    entry = get_backbone(cfg.backbone)
    if not entry.timm_name:
        raise ConfigError(f"Backbone {cfg.backbone!r} is not registered in timm, so its classifier cannot be exported "
                          "as a timm checkpoint. Register it with timm's @register_model in its plugin.")
    model_args = {k: v for k, v in (cfg.backbone_kwargs or {}).items() if k != "checkpoint_path"}
    model_args["in_chans"] = cfg.in_chans
    backbone = model.backbone
    out = {
        "architecture": entry.timm_name,
        "num_classes": cfg.num_classes,
        "num_features": int(getattr(backbone, "num_features", 0)),
        "global_pool": "avg",
        "model_args": model_args,
        "pretrained_cfg": {
            "input_size": [cfg.in_chans, *cfg.input_size],
            "fixed_input_size": False,
            "interpolation": "bilinear",
            "crop_pct": 1.0,
            "crop_mode": "center",
            "mean": list(cfg.mean),
            "std": list(cfg.std),
            "num_classes": cfg.num_classes,
            "label_names": model.label_names,
            "pool_size": None,
            "first_conv": getattr(backbone, "pretrained_cfg", {}).get("first_conv"),
            "classifier": getattr(backbone, "pretrained_cfg", {}).get("classifier", "fc"),
        },
    }
    if entry.timm_name in PLUGIN_MODULES:
        out["hybridwrap_import"] = PLUGIN_MODULES[entry.timm_name]
    return out


def export_classifier(model, directory: str | Path, teacher=None) -> Path:
    """Write E_c + C (or ``teacher``, the Mean Teacher backbone) as a timm checkpoint folder."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    net = teacher if teacher is not None else model.backbone
    save_state_dict(net.state_dict(), directory / "model.safetensors", {"format": "pt"})
    cfg = timm_config(model)
    atomic_write_text(directory / "config.json", json.dumps(cfg, indent=2))
    how = f"import {cfg['hybridwrap_import']}\n" if "hybridwrap_import" in cfg else ""
    atomic_write_text(directory / "README.md", (
        "---\nlibrary_name: timm\ntags: [image-classification, timm, hybridnet, semi-supervised]\nlicense: apache-2.0\n---\n\n"
        f"# {cfg['architecture']} classifier exported from a hybridwrap HybridNet\n\n"
        f"The encoder E_c and classifier C only ({'Mean Teacher weights' if teacher is not None else 'student weights'}); "
        "same parameters and cost as the bare timm model.\n\n"
        f"```python\n{how}import timm\n\nmodel = timm.create_model(\"hf-hub:OWNER/NAME\", pretrained=True)\n```\n"
        f"{describe(model.config)}\n\nClasses, in label order: {', '.join(model.label_names)}.\n"))
    return directory
