"""Predict the classes of new images with a trained model: ``hybridwrap predict`` and ``hybridwrap.predict``.

A source is a run directory, a saved model directory, a Hub repo id (``from_pretrained``), an exported timm
classifier (a directory, or ``hf-hub:owner/name``) or an ``.onnx`` file. Each becomes a :class:`Classifier`:
a function from a normalised batch to logits, and the model's record of what it expects (channels, size,
mean/std, class names), which the preprocessing follows (:mod:`hybridwrap.preprocess`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import preprocess
from .config import ModelConfig
from .errors import CheckpointError, ConfigError, DataError
from .evaluate import resolve_model_dir
from .onnx_export import ONNX_METADATA_KEY
from .registry import list_backbones
from .saved_configs import label_names
from .serialization import CONFIG_NAME, load_model


@dataclass
class Classifier:
    forward: Callable[[torch.Tensor], torch.Tensor]  # normalised float batch (B, C, H, W) -> logits (B, classes)
    config: ModelConfig  # in_chans, input_size, mean, std, num_classes, label_names
    source: str

    @property
    def label_names(self) -> list[str]:
        return label_names(self.config)


def _from_model(net: torch.nn.Module, config: ModelConfig, source: str) -> Classifier:
    net = net.eval()

    @torch.no_grad()
    def forward(x):
        return net(x)

    return Classifier(forward, config, source)


def from_hybridnet(model, teacher: torch.nn.Module | None = None, source: str = "model") -> Classifier:
    """The deployed classifier of a HybridNet (E_c + C), or its Mean Teacher."""
    return _from_model(teacher if teacher is not None else model.backbone, model.config, source)


def _timm_config(pretrained_cfg: dict, num_classes: int) -> ModelConfig:
    c, h, w = pretrained_cfg["input_size"]
    names = pretrained_cfg.get("label_names")
    return ModelConfig(backbone="timm", num_classes=num_classes, in_chans=c, input_size=(h, w),
                       mean=tuple(pretrained_cfg["mean"]), std=tuple(pretrained_cfg["std"]),
                       label_names=tuple(names) if names else None)


def _from_timm(name: str, source: str) -> Classifier:
    import timm

    list_backbones()  # first-party and third-party plugins register their timm models
    try:
        net = timm.create_model(name, pretrained=True)
    except RuntimeError as exc:  # timm: unknown model name
        raise CheckpointError(f"timm cannot build {source} ({exc}). Install the plugin package that registers its "
                              "architecture (the export's config.json names it as hybridwrap_import).") from exc
    return _from_model(net, _timm_config(dict(net.pretrained_cfg), net.num_classes), source)


def _from_onnx(path: Path) -> Classifier:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ConfigError("Predicting with an .onnx file needs onnxruntime: pip install 'hybridwrap[onnx]'.") from exc
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map.get(ONNX_METADATA_KEY)
    if meta is None:
        raise CheckpointError(f"{path} was not exported by hybridwrap (no '{ONNX_METADATA_KEY}' metadata with its "
                              "input size, normalisation and class names): export it with hybridwrap export --onnx.")
    record = json.loads(meta)
    config = ModelConfig(backbone=record["backbone"], num_classes=record["num_classes"], in_chans=record["in_chans"],
                         input_size=tuple(record["input_size"]), mean=tuple(record["mean"]), std=tuple(record["std"]),
                         label_names=tuple(record["label_names"]))
    name = session.get_inputs()[0].name

    def forward(x):
        return torch.from_numpy(session.run(None, {name: x.numpy()})[0])

    return Classifier(forward, config, str(path))


def load_classifier(source: str, teacher: bool = False) -> Classifier:
    """The :class:`Classifier` of a run, a saved model, a Hub repo id, a timm export or an .onnx file."""
    path = Path(source)
    if path.suffix == ".onnx" and path.is_file():
        if teacher:
            raise ConfigError("An .onnx file holds one classifier: export the teacher with hybridwrap export --teacher "
                              "--onnx and predict with that file, without --teacher.")
        return _from_onnx(path)
    if source.startswith("hf-hub:") or (path.is_dir() and _is_timm_export(path)):
        if teacher:
            raise ConfigError("An exported classifier holds one set of weights: drop --teacher (export the teacher "
                              "with hybridwrap export --teacher).")
        return _from_timm(source if source.startswith("hf-hub:") else f"local-dir:{path}", source)
    model_dir, _ = resolve_model_dir(source)
    model, mean_teacher = load_model(model_dir)
    if teacher and mean_teacher is None:
        raise CheckpointError(f"{source} has no Mean Teacher weights (it was not trained with loss.stability="
                              "mean_teacher): predict with the student, without --teacher.")
    return from_hybridnet(model, mean_teacher if teacher else None, source)


def _is_timm_export(directory: Path) -> bool:
    config = directory / CONFIG_NAME
    if not config.is_file():
        return False
    try:
        return "architecture" in json.loads(config.read_text())
    except json.JSONDecodeError:
        return False


def predict(model, images: Iterable, top_k: int = 5, teacher=None, batch_size: int = 64,
            progress: bool = False) -> list[dict]:
    """Top-k classes of ``images`` (paths, or PIL images) with ``model``: a HybridNet, a :class:`Classifier`
    or a source :func:`load_classifier` takes. One record per image, in order:
    ``{"image", "top_k": [{"label", "index", "probability"}, ...], "converted"}``; an unreadable image gets
    ``{"image", "error"}`` instead."""
    classifier = _as_classifier(model, teacher)
    return list(_predict(classifier, list(images), top_k, batch_size, progress))


def _as_classifier(model, teacher=None) -> Classifier:
    if isinstance(model, Classifier):
        return model
    if isinstance(model, (str, Path)):
        return load_classifier(str(model), teacher=bool(teacher))
    return from_hybridnet(model, teacher)


def _predict(classifier: Classifier, images: list, top_k: int, batch_size: int, progress: bool):
    if top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {top_k}.")
    cfg = classifier.config
    to_tensor = preprocess.transform(cfg)
    names = classifier.label_names
    k = min(top_k, cfg.num_classes)
    bar = tqdm(total=len(images), disable=not progress, desc="predict", unit="image")
    for start in range(0, len(images), batch_size):
        chunk, rows, tensors = images[start:start + batch_size], [], []
        for item in chunk:
            label = str(item) if isinstance(item, (str, Path)) else getattr(item, "filename", "") or "<image>"
            try:
                if isinstance(item, (str, Path)):
                    image, converted = preprocess.load_image(item, cfg.in_chans)
                else:
                    image, converted = preprocess.to_channels(item, cfg.in_chans)
            except DataError as exc:
                rows.append({"image": label, "error": str(exc)})
                continue
            rows.append({"image": label, "converted": converted})
            tensors.append(to_tensor(image))
        if tensors:
            probs = torch.softmax(classifier.forward(torch.stack(tensors)).float(), dim=1)
            top_p, top_i = probs.topk(k, dim=1)
            done = iter(zip(top_p.tolist(), top_i.tolist()))
            for row in rows:
                if "error" not in row:
                    p, i = next(done)
                    row["top_k"] = [{"label": names[j], "index": j, "probability": q} for q, j in zip(p, i)]
        bar.update(len(chunk))
        yield from rows
    bar.close()


def write_predictions(records: list[dict], path: str | Path) -> Path:
    """Write one row per image: ``.csv`` (image, label, index, probability, top_k as "label:p;...", converted,
    error) or ``.jsonl`` (the records as they are)."""
    path = Path(path)
    if path.suffix not in (".csv", ".jsonl"):
        raise ConfigError(f"--output must end in .csv or .jsonl, got {path.name!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        if path.suffix == ".jsonl":
            for r in records:
                f.write(json.dumps(r) + "\n")
        else:
            w = csv.writer(f)
            w.writerow(["image", "label", "index", "probability", "top_k", "converted", "error"])
            for r in records:
                top = r.get("top_k") or [{}]
                w.writerow([r["image"], top[0].get("label", ""), top[0].get("index", ""),
                            f"{top[0]['probability']:.6f}" if "probability" in top[0] else "",
                            ";".join(f"{t['label']}:{t['probability']:.6f}" for t in r.get("top_k", [])),
                            r.get("converted") or "", r.get("error", "")])
    tmp.replace(path)
    return path
