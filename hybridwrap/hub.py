"""Hugging Face Hub: ``save_pretrained`` / ``push_to_hub`` / ``from_pretrained`` with the file layout and
arguments of huggingface_hub's ``PyTorchModelHubMixin`` (``config.json`` + ``model.safetensors``,
``revision``, ``token``, ``cache_dir``, ``local_files_only``), and ``push_run`` for a training run
(weights + generated model card + reconstruction picture).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
import shutil
import tempfile
from pathlib import Path

from huggingface_hub import HfApi, constants, get_token, hf_hub_download
from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError,
                                    RepositoryNotFoundError, RevisionNotFoundError)

from .card import render_card
from .errors import CheckpointError, ConfigError, HubError, UnknownBackboneError
from .network import hub_endpoint, hub_reachable
from .serialization import CONFIG_NAME, WEIGHTS_NAME, load_model, read_config, require_finished_run, save_model

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
TEACHER_NAME = "teacher.safetensors"


def _network_errors() -> tuple[type[BaseException], ...]:
    """What the Hub client raises when the endpoint cannot be reached (OfflineModeIsEnabled is a ConnectionError)."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, name in (("httpx2", "TransportError"), ("httpx", "TransportError"),
                         ("requests", "ConnectionError"), ("requests", "Timeout")):
        try:
            errors.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def unreachable(exc: BaseException, action: str, offline_alternative: str) -> HubError:
    """The error for a Hub that cannot be reached: the endpoint, the cause in one line, what works offline."""
    cause = (str(exc).splitlines() or [type(exc).__name__])[0]
    return HubError(f"{action} failed: the Hugging Face Hub at {constants.ENDPOINT} cannot be reached "
                    f"({type(exc).__name__}: {cause}). Check the network (or HF_ENDPOINT / HF_HUB_OFFLINE); "
                    f"{offline_alternative} Nothing local was changed.")


def validate_repo_id(repo_id: str) -> str:
    if not isinstance(repo_id, str) or not REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise ConfigError(f"Repo id {repo_id!r} is not of the form namespace/name (e.g. "
                          "me/hybridnet-convlarge-cifar10-4000).")
    return repo_id


def resolve_token(token: str | None) -> str:
    """The explicit token, else the usual locations (HF_TOKEN, the token file written by `hf auth login`)."""
    if token:
        return token
    found = get_token()
    if not found:
        raise ConfigError("No Hugging Face token: pass --token, set HF_TOKEN, or log in once with `hf auth login`.")
    return found


def _download(repo_id: str, filename: str, *, revision, token, cache_dir, local_files_only, force_download,
              optional: bool = False) -> Path | None:
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, token=token, cache_dir=cache_dir,
                                    local_files_only=local_files_only, force_download=force_download))
    except LocalEntryNotFoundError as exc:  # (a subclass of EntryNotFoundError: test it first)
        if optional:
            return None
        why = "local_files_only=True" if local_files_only else f"the Hub at {constants.ENDPOINT} cannot be reached"
        raise HubError(f"{filename} of {repo_id} is not in the local cache and {why}. Download it once online "
                       "(or check HF_ENDPOINT / HF_HUB_OFFLINE), or load a local directory written by "
                       "save_pretrained() instead.") from exc
    except EntryNotFoundError as exc:
        if optional:
            return None
        raise CheckpointError(f"{repo_id} has no {filename}: it is not a hybridwrap model repo.") from exc
    except RevisionNotFoundError as exc:
        raise HubError(f"{repo_id} has no revision {revision!r}. Check the branch, tag or commit.") from exc
    except RepositoryNotFoundError as exc:
        raise HubError(f"{repo_id}: no such run directory, and no such Hub repo (or it is private and no valid "
                       "token was given: pass token=..., or log in with `hf auth login`).") from exc
    except _network_errors() as exc:
        raise unreachable(exc, f"Downloading {filename} of {repo_id}", "offline, load a local directory written "
                          "by save_pretrained() instead.") from exc


def not_local_nor_reachable(name: str) -> HubError:
    """A name that is no local directory and, as a Hub repo id, cannot be reached: both, in one line."""
    return HubError(f"{name}: no such run directory; as a Hub repo id it cannot be reached (offline: "
                    f"{hub_endpoint()} did not answer within seconds) and it is not in the local cache. Check the "
                    "path, or download the repo once online.")


def download_model(repo_id: str, *, revision: str | None = None, token: str | None = None,
                   cache_dir: str | Path | None = None, local_files_only: bool = False,
                   force_download: bool = False) -> Path:
    """Download (or find in the cache) a model repo's config and weights; returns their folder.

    The Hub is probed first (a connection within seconds, as ``--pretrained`` does): offline, only the cache is
    read, so a wrong local path gets its answer at once instead of after a minute of retries."""
    validate_repo_id(repo_id)
    if not local_files_only and not force_download and not hub_reachable():
        try:
            return download_model(repo_id, revision=revision, token=token, cache_dir=cache_dir, local_files_only=True)
        except HubError:
            raise not_local_nor_reachable(repo_id) from None
    kw = dict(revision=revision, token=token, cache_dir=cache_dir, local_files_only=local_files_only,
              force_download=force_download)
    config_file = _download(repo_id, CONFIG_NAME, **kw)
    _download(repo_id, WEIGHTS_NAME, **kw)
    _download(repo_id, TEACHER_NAME, optional=True, **kw)
    return config_file.parent


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def from_pretrained(repo_id_or_dir: str | Path, *, revision: str | None = None, token: str | None = None,
                    cache_dir: str | Path | None = None, local_files_only: bool = False,
                    force_download: bool = False, with_teacher: bool = False):
    """Load a HybridNet from a local directory or a Hub repo (strict: every key must match).

    ``with_teacher=True`` returns ``(model, teacher_backbone_or_None)``. Models come back in eval mode, as
    Hugging Face models do: call ``.train()`` to fine-tune.
    """
    path = Path(repo_id_or_dir)
    text = str(repo_id_or_dir)
    if not path.is_dir() and (text.startswith((".", "/", "~")) or text.count("/") != 1 or path.exists()):
        raise CheckpointError(f"{text!r} is not a directory, and not a Hub repo id (namespace/name) either. Pass a "
                              "directory written by save_pretrained() or a training run (RUN_DIR or RUN_DIR/model).")
    if path.is_dir():
        directory = path / "model" if (path / "model" / CONFIG_NAME).is_file() else path
    else:
        directory = download_model(str(repo_id_or_dir), revision=revision, token=token, cache_dir=cache_dir,
                                   local_files_only=local_files_only, force_download=force_download)
    cfg = read_config(directory)
    try:
        model, teacher = load_model(directory)
    except UnknownBackboneError as exc:
        name, pkg = cfg["model"]["backbone"], cfg.get("backbone_package")
        if pkg and _installed(pkg):
            raise CheckpointError(f"This model needs the backbone {name!r}, which the installed {pkg} does not register "
                                  f"(config.json says it came from {pkg} {cfg.get('backbone_version') or ''}). Check the "
                                  "name (`hybridwrap backbones` lists the registered ones), or install the version of "
                                  f"{pkg} that wrote it.") from exc
        raise CheckpointError(f"This model needs the backbone {name!r}, which is not installed: "
                              f"pip install {pkg or 'the plugin package that provides it'}") from exc
    model.eval()
    if teacher is not None:
        teacher.eval()
    return (model, teacher) if with_teacher else model


def save_pretrained(model, directory: str | Path, teacher=None) -> Path:
    return save_model(model, directory, teacher=teacher)


def upload_folder(staging: Path, repo_id: str, token: str, private: bool, commit_message: str,
                  revision: str | None, offline: str = "offline, save the model locally with save_pretrained() and "
                                                        "push it later.") -> str:
    """Create ``repo_id`` if needed and upload the folder ``staging`` to it; returns the commit URL. Hub refusals
    and unreachable networks become a :class:`~hybridwrap.errors.HubError` that says what to do (``offline``)."""
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=str(staging), commit_message=commit_message,
                                 revision=revision)
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        hint = " Check that the token has write access to this namespace." if status in (401, 403) else ""
        raise HubError(f"Pushing to {repo_id} failed (HTTP {status}): {str(exc).splitlines()[0]}.{hint} "
                       "Nothing local was changed.") from exc
    except _network_errors() as exc:
        raise unreachable(exc, f"Pushing to {repo_id}", offline) from exc
    return str(getattr(info, "commit_url", info))


def push_to_hub(model, repo_id: str, *, token: str | None = None, private: bool = False, teacher=None,
                commit_message: str = "Upload HybridNet with hybridwrap", revision: str | None = None) -> str:
    validate_repo_id(repo_id)
    token = resolve_token(token)
    with tempfile.TemporaryDirectory(prefix="hybridwrap-push-") as tmp:
        save_model(model, tmp, teacher=teacher)
        return upload_folder(Path(tmp), repo_id, token, private, commit_message, revision)


def push_run(run_dir: str | Path, repo_id: str, *, token: str | None = None, private: bool = False,
             commit_message: str | None = None, revision: str | None = None, picture: bool = True) -> str:
    """Push a finished run: weights, config, generated model card, metrics and reconstruction picture.

    Everything is staged in a temporary folder; the run directory is only read.
    """
    validate_repo_id(repo_id)
    run_dir = Path(run_dir)
    model_dir = run_dir / "model"
    require_finished_run(run_dir)
    if not (model_dir / WEIGHTS_NAME).is_file():
        raise CheckpointError(f"{model_dir} has no {WEIGHTS_NAME}: push a finished run, or restore its weights.")
    token = resolve_token(token)
    with tempfile.TemporaryDirectory(prefix="hybridwrap-push-") as tmp:
        staging = Path(tmp)
        for f in model_dir.iterdir():
            if f.is_file():
                shutil.copy2(f, staging / f.name)
        for name in ("metrics.json", "train_config.json", "labels.json"):
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, staging / name)
        card = render_card(run_dir, repo_id=repo_id, picture_dir=staging if picture else None)
        card.save(staging / "README.md")
        message = commit_message or f"Upload {json.loads((model_dir / CONFIG_NAME).read_text())['model']['backbone']} " \
                                    f"HybridNet run {run_dir.name}"
        offline = (f"offline, {run_dir} keeps everything: push it later with the same command, or write the "
                   f"classifier to a folder with `hybridwrap export {run_dir} --output-dir DIR`.")
        return upload_folder(staging, repo_id, token, private, message, revision, offline)
