"""ResNet-50 initialised from the CSAIL Places365 checkpoint (HybridNet's STL-10 backbone, §4.2).

Source: Zhou et al., "Places: A 10 million Image Database for Scene Recognition" (TPAMI 2017); weights
``resnet50_places365.pth.tar`` from the CSAIL Places365 release. The network is the torchvision/timm
ResNet-50 layout (224 px), so timm's ``resnet50`` is the architecture and the classifier exports as one.

The released file is a Python-2 pickle of ``{"epoch", "arch", "state_dict", "best_prec1"}`` whose
``state_dict`` keys carry a ``module.`` prefix (DataParallel) and whose head is 365-way. We load it with
``torch.load(weights_only=True, encoding="latin1")``: the weights-only unpickler reads the Python-2 strings
without ever executing pickled code; anything else in the file is refused.
"""

from __future__ import annotations

import os
import pickle
import warnings

import torch
import torch.nn as nn

from hybridwrap.errors import CheckpointError
from hybridwrap.plugin_utils import load_backbone_state

VERSION = "0.1.0"
_PREFIXES = ("module.",)


def _resolve(path: str) -> str:
    """A local file, or ``hf://owner/repo/path/in/repo`` downloaded with huggingface_hub."""
    if path.startswith("hf://"):
        parts = path[len("hf://"):].split("/")
        if len(parts) < 3:
            raise CheckpointError(f"{path!r} is not of the form hf://owner/repo/filename.")
        from huggingface_hub import hf_hub_download

        return hf_hub_download("/".join(parts[:2]), "/".join(parts[2:]))
    if not os.path.isfile(path):
        raise CheckpointError(
            f"Places365 checkpoint {path!r} not found. Download resnet50_places365.pth.tar from the CSAIL "
            "Places365 release and pass its path, or pass checkpoint_path='hf://owner/repo/filename'."
        )
    return path


def load_places365_state_dict(path: str) -> dict[str, torch.Tensor]:
    """The backbone weights of a Places365 checkpoint, ``module.`` prefix stripped, head removed."""
    path = _resolve(path)
    try:
        with warnings.catch_warnings():
            # torch warns that pickle args are for weights_only=False, yet it does pass `encoding` to its
            # weights-only unpickler, which needs it for the Python-2 strings of the release file.
            warnings.filterwarnings("ignore", message="pickle_load_args only works")
            obj = torch.load(path, map_location="cpu", weights_only=True, encoding="latin1")
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path} holds Python objects that only unsafe unpickling could load ({str(exc).splitlines()[0]}). "
            "hybridwrap never unpickles arbitrary code: re-save the checkpoint as a plain state_dict "
            "(torch.save(model.state_dict(), ...)) or as safetensors."
        ) from exc
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({exc}). Re-download it.") from exc
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path} holds no state_dict of tensors; expected the Places365 ResNet-50 release file.")
    out = {}
    for key, value in state.items():
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def create_places365_resnet50(pretrained: bool = False, num_classes: int = 365, in_chans: int = 3,
                              checkpoint_path: str | None = None, **kwargs) -> nn.Module:
    import timm

    if pretrained and not checkpoint_path:
        raise CheckpointError(
            "places365_resnet50 weights are not bundled: pass checkpoint_path='/path/resnet50_places365.pth.tar' "
            "(or 'hf://owner/repo/filename')."
        )
    model = timm.create_model("resnet50", num_classes=num_classes, in_chans=in_chans, **kwargs)
    if checkpoint_path:
        if in_chans != 3:
            raise CheckpointError("The Places365 ResNet-50 weights expect 3-channel RGB input; use in_chans=3.")
        # the 365-way head is never loaded; a 2017 file has no BatchNorm num_batches_tracked counters
        state = {k: v for k, v in load_places365_state_dict(checkpoint_path).items() if not k.startswith("fc.")}
        load_backbone_state(model, state, checkpoint_path, mismatch="is not a ResNet-50 checkpoint",
                            fix="Use resnet50_places365.pth.tar, not another Places365 architecture.")
    return model


def register():
    from hybridwrap.registry import register_backbone

    register_backbone("places365_resnet50", create_places365_resnet50, default_input_size=(3, 224, 224),
                      description="ResNet-50 with CSAIL Places365 weights (checkpoint_path=...)",
                      package="hybridwrap", version=VERSION, timm_name="resnet50")
