"""Model cards rendered from a run directory (never from numbers typed by hand)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from . import budget
from .data.sources import describe_source
from .errors import CheckpointError, HybridWrapError
from .preprocess import describe
from .presets import PRESETS
from .registry import get_backbone
from .saved_configs import label_names, model_config_from_dict
from .serialization import require_finished_run
from .visualize import visualize_run

TEMPLATE = Path(__file__).parent / "model_cards" / "hybridnet.md"
PICTURE = "reconstructions.png"


def _read_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def labels_phrase(data: dict, labels: dict, num_labels: int | None, num_classes: int) -> str:
    """How the labeled images were chosen, from the run's own labels.json and config."""
    if num_labels is None:
        return "all of its labeled training images"
    seed = labels.get("labels_seed", data.get("labels_seed"))
    if data.get("fold") is not None:
        return f"**{num_labels}** labeled images (the dataset's predefined fold {data['fold']})"
    if data.get("num_labels") is None:  # own data: every train/<class>/ image outside validation is labeled
        held_out = data.get("val_size") or 0
        where = f"outside the {held_out} images of the validation hold-out" if held_out else "no validation hold-out"
        return f"**{num_labels}** labeled images (every labeled training image; {where})"
    return (f"**{num_labels}** labeled images ({num_labels // num_classes} per class, a balanced subset drawn with "
            f"seed {seed}; the indices are in `labels.json`)")


def unlabeled_phrase(data: dict, pool: dict | None) -> str:
    """What the unlabeled stream held: the trainer's record of it (metrics.json), or, for runs written before
    hybridwrap 0.3.1 recorded it, what the config implies."""
    if pool is None:
        parts = ["the training images without a label"]
        if data.get("unlabeled_includes_labeled", True):
            parts.append("the labeled images themselves")
        if data.get("unlabeled_extra") or data.get("dataset") in ("imagefolder", "npz"):
            parts.append("the dataset's extra unlabeled images, if it has any")
        return " and ".join(parts) + " (outside the validation hold-out)"
    parts = []
    if pool.get("unlabeled_train"):
        parts.append(f"the {pool['unlabeled_train']} training images without a label")
    if pool.get("labeled_train"):
        parts.append(f"the {pool['labeled_train']} labeled images themselves")
    if pool.get("extra"):
        parts.append(f"the {pool['extra']} images of {pool.get('extra_source') or 'the extra unlabeled split'}")
    if pool.get("stream"):
        parts.append(f"the stream of {pool['stream']}")
    return " and ".join(parts) or "no image"


def render_card(run_dir: str | Path, repo_id: str | None = None, picture_dir: str | Path | None = None):
    """A ``huggingface_hub.ModelCard`` for the run; with ``picture_dir`` the Fig. 4 picture is drawn there."""
    run_dir = Path(run_dir)
    cfg = _read_json(run_dir / "train_config.json")
    model_cfg = _read_json(run_dir / "model" / "config.json")
    if cfg is None or model_cfg is None:
        require_finished_run(run_dir)
        raise CheckpointError(f"{run_dir} has a model but no train_config.json, which the card is written from: "
                              "restore it from the run, or pass the run directory itself.")
    metrics = _read_json(run_dir / "metrics.json")
    labels = _read_json(run_dir / "labels.json") or {}
    data, model = cfg["data"], cfg["model"]
    dataset = (metrics or {}).get("dataset", data["dataset"])
    num_labels = len(labels["labeled"]) if labels.get("labeled") is not None else data["num_labels"]
    repo_id = repo_id or f"your-name/hybridnet-{model['backbone']}-{dataset}-{num_labels or 'all'}"
    name = repo_id.split("/")[-1]

    source = describe_source(data)
    test_images = (metrics or {}).get("test_images") or data.get("max_eval_images")
    split_name = source["copy"] or "test"
    preset_uses_unlabeled = PRESETS[cfg["preset"]].reconstruction or PRESETS[cfg["preset"]].stability
    eval_results = []
    if metrics and "test_acc" in metrics:
        for key, label in (("test_acc", "top-1 accuracy (student)"), ("teacher_test_acc", "top-1 accuracy (teacher)")):
            if key in metrics:
                eval_results.append(EvalResult(
                    task_type="image-classification",
                    task_name=("Semi-supervised image classification" if preset_uses_unlabeled
                               else "Image classification"),
                    dataset_type=source["hub_id"] or dataset,
                    dataset_name=f"{dataset} ({source['source']}" + (f", {test_images} test images)" if test_images else ")"),
                    dataset_split=split_name,
                    metric_type="accuracy", metric_name=label, metric_value=round(float(metrics[key]), 4),
                    metric_config=f"{num_labels} labels, seed {cfg['seed']}"))
    backbone_kwargs = model.get("backbone_kwargs") or {}
    checkpoint = str(backbone_kwargs.get("checkpoint_path", ""))
    card_data = ModelCardData(
        library_name="hybridwrap", license="apache-2.0", model_name=name,
        tags=(["semi-supervised"] if preset_uses_unlabeled else []) + ["hybridnet", "image-classification",
                                                                        model["backbone"], "pytorch", "timm"],
        datasets=[source["hub_id"]] if source["hub_id"] else None,
        base_model=checkpoint[len("hf://"):].rsplit("/", 1)[0] if checkpoint.startswith("hf://") else None,
        eval_results=eval_results or None, pipeline_tag="image-classification",
    )

    branch_rows = []
    if metrics:
        for key, label, fmt in (("branch/energy_share_c", "energy share of x̂_c", "{:.1%}"),
                                ("branch/energy_share_u", "energy share of x̂_u", "{:.1%}"),
                                ("branch/psnr_x_hat_c", "PSNR of x̂_c (dB)", "{:.2f}"),
                                ("branch/psnr_x_hat_u", "PSNR of x̂_u (dB)", "{:.2f}"),
                                ("branch/psnr_x_hat", "PSNR of x̂ (dB)", "{:.2f}")):
            if key in metrics:
                branch_rows.append((label, fmt.format(metrics[key])))

    # every sentence first: a card that cannot be written must not leave a picture behind in the run
    labeled_text = labels_phrase(data, labels, num_labels, model["num_classes"])
    unlabeled_text = unlabeled_phrase(data, (metrics or {}).get("unlabeled_pool"))
    picture = None
    if picture_dir is not None and model["discriminative_decoder"]:
        try:
            visualize_run(run_dir, Path(picture_dir) / PICTURE)
            picture = PICTURE
        except HybridWrapError:  # data not available here: the card says nothing about a picture
            picture = None

    try:
        entry = get_backbone(model["backbone"])
        timm_name, package = entry.timm_name or model["backbone"], entry.package
    except Exception:
        timm_name, package = model["backbone"], ""
    plugin_import = None
    if package == "hybridwrap" and timm_name != "resnet50":
        plugin_import = "hybridwrap_plugins." + ("shakeshake" if "shakeshake" in timm_name else "convlarge")

    saved = model_config_from_dict(model_cfg["model"])  # what the weights expect, as config.json records it
    fmt_acc = (lambda k: f"{metrics[k]:.2f}%" if metrics and k in metrics else None)
    size = model.get("input_size") or [None, None]
    return ModelCard.from_template(
        card_data, template_path=str(TEMPLATE), model_name=name, repo_id=repo_id, backbone=model["backbone"],
        dataset=dataset, labels_phrase=labeled_text,
        val_size=data.get("val_size", 0),
        preset=cfg["preset"], preset_description=PRESETS[cfg["preset"]].description, seed=cfg["seed"],
        steps=(metrics or {}).get("steps", "an unknown number of"), has_metrics=bool(metrics and "test_acc" in metrics),
        test_acc=fmt_acc("test_acc"), teacher_test_acc=fmt_acc("teacher_test_acc"),
        test_images=(f"{test_images} images" if test_images else "all images"), source=source["source"],
        split_name=split_name, uses_unlabeled=preset_uses_unlabeled,
        data_license=source.get("license"),
        dataset_note=(f"The test split of this file is the {source['copy']}, not the original files: compare with "
                      "runs evaluated on the same copy." if source["copy"] else None),
        branch_rows=branch_rows, picture=picture, plugin_import=plugin_import, timm_name=timm_name,
        in_chans=model["in_chans"], input_h=size[0], input_w=size[1],
        inputs_sentence=describe(saved), class_names=", ".join(label_names(saved)),
        unlabeled_phrase=unlabeled_text,
        reconstruction_note=(budget.MAP.get("reconstruction") or {}).get("conclusion"),
        config_yaml=yaml.safe_dump(cfg, sort_keys=False),
    )
