"""The deployed classifier (E_c + C, or the Mean Teacher) as ONNX, checked against PyTorch before it is kept.

HybridNet's deployed classifier is the backbone alone, a plain CNN, so it exports with torch's TorchScript-based
exporter: the batch axis is always dynamic, height and width too where the backbone runs at another size (any
CNN with global pooling). The file carries the model's record (input size, channels, mean/std, class names) in
its metadata, which ``hybridwrap predict model.onnx`` reads. Needs the ``onnx`` extra (onnx, onnxruntime).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from .saved_configs import label_names
from .errors import ConfigError, TrainingError
from .serialization import usual_mode

ONNX_METADATA_KEY = "hybridwrap"
TOLERANCE = 1e-4  # max |logit difference| against PyTorch that a kept export may have
OPSET = 17


def require_onnx():
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise ConfigError("ONNX export needs onnx and onnxruntime: pip install 'hybridwrap[onnx]'.") from exc
    return onnx, onnxruntime


def _runs_at(net: torch.nn.Module, shape: tuple[int, ...]) -> bool:
    try:
        with torch.no_grad():
            net(torch.zeros(shape))
        return True
    except RuntimeError:
        return False


def export_onnx(model, path: str | Path, teacher: torch.nn.Module | None = None) -> dict:
    """Write the classifier of ``model`` (or ``teacher``) to ``path`` and check it with onnxruntime on two batch
    sizes (and another image size when height and width are dynamic). Returns what was checked; a difference
    above ``TOLERANCE`` removes the file and raises."""
    onnx, onnxruntime = require_onnx()
    cfg = model.config
    net = (teacher if teacher is not None else model.backbone).eval().float()
    c, (h, w) = cfg.in_chans, tuple(cfg.input_size)
    other = (3, c, h + h // 2, w + w // 4)  # another batch size and another image size
    dynamic_hw = _runs_at(net, other)
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic_hw else {0: "batch"}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    example = torch.randn(2, c, h, w, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():  # the TorchScript exporter's notices about its successor
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (example,), str(tmp), dynamo=False, opset_version=OPSET, input_names=["pixel_values"],
                          output_names=["logits"], dynamic_axes={"pixel_values": axes, "logits": {0: "batch"}})
    proto = onnx.load(str(tmp))
    record = {"backbone": cfg.backbone, "num_classes": cfg.num_classes, "in_chans": c, "input_size": [h, w],
              "mean": list(cfg.mean), "std": list(cfg.std), "label_names": label_names(cfg),
              "weights": "teacher" if teacher is not None else "student"}
    entry = proto.metadata_props.add()
    entry.key, entry.value = ONNX_METADATA_KEY, json.dumps(record)
    onnx.save(proto, str(tmp))

    session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    shapes = [(2, c, h, w)] + ([other] if dynamic_hw else [(3, c, h, w)])
    worst = 0.0
    for shape in shapes:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected = net(x).numpy()
        got = session.run(None, {"pixel_values": x.numpy()})[0]
        worst = max(worst, float(np.abs(got - expected).max()))
    if worst > TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise TrainingError(f"The ONNX export of {cfg.backbone} differs from PyTorch by {worst:.2e} in the logits "
                            f"(tolerance {TOLERANCE:g}); nothing was written. Report this with the backbone name.")
    tmp.replace(path)
    usual_mode(path)
    return {"path": str(path), "max_abs_diff": worst, "checked_shapes": [list(s) for s in shapes],
            "dynamic_height_width": dynamic_hw, "opset": OPSET}
