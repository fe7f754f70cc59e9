"""Typed configuration: one dataclass per concern, one source of truth for every default.

YAML files under ``configs/`` hold experiments; they may set any field below (nested by section) and
nothing else: an unknown key is an error that names it. ``--set section.field=value`` overrides on the
command line.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config_values import coerce, read_only
from .errors import ConfigError


# decoder families (hybridwrap.decoders builds them) and how a decoder undoes a downsampling: upsampling (the paper's
# D_c), unpooling with switches (D_u), or the official ResNet code's strided transposed blocks (`mirror` decoders).
DECODERS = ("generic", "light", "mirror")
DECODER_MODES = ("nearest", "bilinear", "unpool", "transposed")


class Section:
    """A part of a config that `freeze` makes read-only: a run resolves its config once, then only reads it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_frozen"):
            raise dataclasses.FrozenInstanceError(
                f"cannot assign {type(self).__name__}.{name}: a run's config is resolved once, then read only "
                "(hybridwrap.config.replaced makes a writable copy)")
        object.__setattr__(self, name, value)


@dataclass
class ModelConfig(Section):
    """Everything needed to rebuild a HybridNet (saved as ``config.json`` next to the weights): the ``model:``
    section of a config. Each field's comment says what it does.

    Examples:
        >>> build_from_config(ModelConfig(backbone="resnet18", num_classes=10, input_size=(64, 64)))
    """

    backbone: str = "convlarge"
    num_classes: int = 10
    in_chans: int = 3
    input_size: tuple[int, int] | None = None  # None: the backbone's default
    discriminative_decoder: bool = True  # D_c (False: plain classifier, Table 1 "classification")
    unsupervised_branch: bool = True  # E_u + D_u (False: auto-encoder E_c+D_c+C)
    decoder_c_mode: str = "nearest"  # paper: upsampling in D_c ("transposed": the official ResNet code's strides)
    decoder_u_mode: str = "unpool"  # paper: unpooling with E_u's switches in D_u
    # convolutions after each upsampling/unpooling. None: the encoder's own block depth per level (a
    # backbone declares it as `block_depth` in feature_info, e.g. 3 for ConvLarge), else 2
    decoder_depth: int | None = None
    decoder_norm: str = "batch"  # "batch" or "none" (BatchNorm in the generated decoders)
    # "mirror": the convolutions between the last level and the features (ConvLarge's 3x3-valid/1x1/1x1 tail)
    # are undone one by one; "single": one layer (transposed conv or 1x1) stands for all of them
    decoder_tail: str = "mirror"
    # Eq. 5 pairs. "stages": one per stage output in feature_info, none where h_l *is* h_c (that pair would
    # only ask a layer to copy its input); "downsampling": one per downsampling point (hybridwrap < 0.2)
    pairs: str = "stages"
    # decoder blocks: "mirror" (the encoder's residual blocks, bottleneck for bottleneck: ResNet/timm default),
    # "light" (few narrow convolutions per level: the cheapest), "generic" (full-width 3x3 convolutions: the
    # ConvLarge/shake-shake default, where it is their mirror). None: the backbone's registered default
    decoder: str | None = None
    # `mirror` decoder blocks: "own" (the encoder's own kind: ResNet blocks for ResNets, shake-shake blocks for
    # shake-shake, copies of the encoder's block otherwise) | "resnet" (bottleneck/basic for every family: < 0.3)
    mirror_blocks: str = "own"
    # Mean Teacher's second head: the stability cost acts on it, and a logit-distance cost ties it to the
    # class head (Tarvainen & Valpola 2017, ResNet results; official HybridNet code). Not deployed.
    stability_head: bool = False
    # E_u's initial weights with pretrained=True / checkpoint_path: "same" as E_c (the paper duplicates the
    # encoder), or "scratch" (random; the unsupervised branch then owes nothing to the labeled task's weights)
    unsupervised_init: str = "same"
    # input normalisation the model expects, (x/255 - mean) / std per channel. None: the backbone's
    # pretrained_cfg (timm), filled in when the model is built; the trainer sets it for data.normalize=dataset
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    # class names in label order (timm's pretrained_cfg label_names, HF's id2label). None: the trainer takes them
    # from the data (digits 0-9, CIFAR-10/SVHN/STL-10 names, ImageFolder folders, a ClassLabel's names)
    label_names: tuple[str, ...] | None = None
    backbone_kwargs: dict = field(default_factory=dict)
    # the backbone's pretrained weights (timm's, or the plugin's) for E_c and E_u, or a local weights file
    pretrained: bool = False
    checkpoint_path: str | None = None
    # multi-GPU training: BatchNorm statistics computed over every process's share of the batch (timm's
    # --sync-bn, torch's SyncBatchNorm) in the student's branches and the Mean Teacher; the saved weights are the
    # same as without it. Needs several processes on GPUs.
    sync_bn: bool = False


# data.dataset values whose images are the user's own: their defaults are sized for their data, not the demo's
# (dataset_configs.OWN_DATA_DEFAULTS), and their budget is checked against the budget map (hybridwrap.budget)
OWN_DATA = ("imagefolder", "npz", "disk")


@dataclass
class DataConfig(Section):
    """The ``data:`` section of a config: which images, how many labeled, the batch of each step, augmentation.

    Examples:
        >>> load_data(DataConfig(dataset="imagefolder", path="my_images"))
    """

    # digits (embedded, scikit-learn) | cifar10 | svhn | stl10 (Hugging Face hub) | npz | imagefolder | disk
    dataset: str = "digits"
    path: str | None = None  # npz file, ImageFolder root or save_to_disk folder; for cifar10 a local .npz
    num_labels: int | None = 100  # N labeled training images, N / num_classes per class (§4); None: all of them
    labels_seed: int = 0  # which balanced subset (saved to labels.json in the run directory)
    labeled_batch_size: int = 20  # n_s (paper: 20)
    unlabeled_batch_size: int = 80  # n_u (paper: 80)
    val_size: int = 0  # images held out of the *training* set for hyperparameter selection
    image_size: int | None = None  # resize images to this (e.g. 224 for STL-10 with Places ResNet-50)
    # auto | translate_flip | translate | crop_flip | none. auto: crop_flip (random-resized crop + flip, timm's
    # ImageNet recipe) for images of 128 px or more, else by dataset (translate only for digits and SVHN)
    augment: str = "auto"
    # max translation in pixels (reflect padding). None: 1/8 of the image side, the Mean Teacher / official
    # HybridNet protocol: 4 px at 32 px (CIFAR-10, SVHN), 12 px at 96 px (STL-10); the digits quickstart sets 2 px
    translate: int | None = None  # each shipped config sets it from its protocol (docs/paper_mapping.md)
    # "backbone": the mean/std of the backbone's pretrained_cfg (ImageNet for timm / Places365 ResNets, 0.5
    # for ConvLarge); "dataset": per-channel statistics of the training images
    normalize: str = "backbone"
    unlabeled_extra: bool = False  # extra unlabeled images: SVHN's `extra` split, STL-10's 100k `unlabeled`
    # STL-10's predefined folds (0-9): the labeled images are fold k's 1000, not a seeded balanced subset
    fold: int | None = None
    # stream the unlabeled split of a Hugging Face hub dataset (datasets' streaming=True) instead of downloading
    # it: for pools larger than the disk. The stream is shuffled with `shuffle_buffer` images and split between
    # processes; the labeled and test images are still downloaded (memory-mapped, decoded when read).
    streaming: bool = False
    shuffle_buffer: int = 10_000
    # the unlabeled stream: False (default) draws it from the images *without* a label, as the paper ("the rest
    # of the data is kept unlabeled", §4) and both official samplers (TwoStreamBatchSampler over unlabeled_idxs)
    # do; True also puts the labeled images in it (hybridwrap < 0.3)
    unlabeled_includes_labeled: bool = False
    # processes that decode, resize and augment batches while the model trains. None: none for in-memory
    # images (digits, npz), else up to 8 (half the CPU cores of each training process)
    num_workers: int | None = None
    eval_batch_size: int = 256
    # train without the image files PIL cannot open (ImageFolder), listed in RUN/skipped_images.txt; without it an
    # unreadable file stops the command before the first step, with the list of every such file
    skip_bad_images: bool = False
    max_train_images: int | None = None  # use only the first N training images (quick runs)
    max_eval_images: int | None = None  # use N evenly spaced test images (quick runs)


@dataclass
class LossConfig(Section):
    """The ``loss:`` section of a config, Eq. 2: which terms are on (set by the preset) and their weights λ, the
    stability target and its ramps.

    Examples:
        >>> load_config("configs/quickstart.yaml", ["loss.lambda_rec=0.5"]).loss.lambda_rec
        0.5
    """

    classification: bool = True  # Eq. 3
    reconstruction: bool = True  # Eq. 4 (Eq. 6 when `balance`)
    intermediate: bool = True  # Eq. 5
    balance: bool = True  # Eq. 6 branch balancing
    # how Eq. 6 is computed: "paper" (as written) | "official_code" (the official step as it ran, with x̂_c + x̂_u
    # where Eq. 6 has x̂_c, a tensor aliasing: hybridwrap.losses.balanced_reconstruction_loss, docs/paper_mapping.md)
    balance_rule: str = "paper"
    stability: str = "mean_teacher"  # Eq. 7 target: mean_teacher | temporal_ensembling | none
    lambda_cls: float = 1.0
    # λ_rec, λ_rec_inter: the setting chosen on validation (§4.2's procedure; RESULTS.md "Choosing the
    # reconstruction weights", select-official over select-paper), which is also the official code's. The
    # paper's literal §4.1 setting (every λ = 1, targets not detached) is the overlay configs/paper_literal.yaml.
    lambda_rec: float = 0.25
    lambda_rec_inter: float = 0.5  # same weight for every level and branch
    lambda_stability: float = 100.0
    ce_average: str = "labeled"  # labeled: (1/n_s) sum over labeled (Eq. 3) | batch: (1/n) (official code)
    detach_intermediate_targets: bool = True  # official code: h_{b,l}.detach() (paper silent); measured setting
    norm: str = "mean"  # ||.||^2 of Eq. 4, 5, 7 as per-element means (λ=1 scale) or "sum" (literal norm)
    ema_decay: float = 0.97  # Mean Teacher α (decay min(1 - 1/(step+1), α)); 0.97 as the official HybridNet code
    # the teacher's BatchNorm statistics: "own" (Mean Teacher: only parameters are averaged; the statistics come
    # from the teacher's own forward passes in train mode) | "ema" (averaged like parameters: hybridwrap < 0.3)
    teacher_buffers: str = "own"
    # where the teacher starts: "student" (a copy of the student's initial weights) | "own" (its own initialisation,
    # drawn like the student's: Mean Teacher's code and the official HybridNet code, create_model(ema=True))
    teacher_init: str = "student"
    lambda_logit_distance: float = 0.01  # Mean Teacher's two-head cost (only with model.stability_head)
    te_alpha: float = 0.6  # Temporal Ensembling momentum
    stability_rampup_steps: int = 0  # sigmoid ramp-up exp(-5 (1 - t)^2) of λ_s
    rec_rampup_steps: int = 0  # same ramp-up for λ_rec (and λ_rec_inter unless rec_inter_rampup_steps is set)
    rec_inter_rampup_steps: int | None = None  # official 3_hybrid: 2 epochs for λ_rec_inter, 5 for λ_rec
    rec_rampdown: bool = False  # cosine ramp-down of λ_rec, λ_rec_inter to 0 over the run (official code)


@dataclass
class OptimConfig(Section):
    """The ``optim:`` section of a config: the optimiser, its learning rate and their schedules.

    Examples:
        >>> load_config(overrides=["optim.lr=0.001"]).optim.lr
        0.001
    """

    optimizer: str = "adam"  # adam (paper §4.1) | sgd (Mean Teacher ResNet protocol)
    lr: float = 3e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True
    beta1: float = 0.9
    lr_rampup_steps: int = 0
    lr_rampdown_steps: int = 0  # ramp-down of the learning rate over the last N steps
    # cosine: 0.5 (cos(pi t) + 1); gaussian: exp(-12.5 t^2), Temporal Ensembling's ramp-down (Laine & Aila 2017);
    # linear: 1 - t (the official HybridNet shake-shake run, experiments.yml 3_hybrid)
    lr_rampdown_shape: str = "cosine"
    beta1_rampdown: float | None = None  # Temporal Ensembling anneals Adam's beta1 to 0.5 during the ramp-down
    grad_clip: float | None = None


@dataclass
class TrainConfig(Section):
    """A whole experiment: the preset, the four sections, the budget, seeds and run directory. YAML files under
    ``configs/`` set any field (nested by section); ``--set section.field=value`` overrides one.

    Examples:
        >>> cfg = load_config(["configs/cifar10_convlarge.yaml", "configs/paper_literal.yaml"], ["max_steps=1000"])
        >>> cfg.model.backbone, cfg.data.num_labels
        ('convlarge', 4000)
    """

    preset: str = "full"  # Table 1 / Table 2 row (see hybridwrap.presets)
    # the source protocol of this setting, in one line (each shipped config names its own; printed at start-up)
    protocol: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    max_steps: int = 300
    # size max_steps at start-up to this many passes over the run's unlabeled pool, every ramp scaled to it
    # (hybridwrap.budget; the default of runs on own images, from the budget map). None: max_steps as it is.
    budget_passes: float | None = None
    eval_every: int = 100
    log_every: int = 20
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    seed: int = 0
    output_dir: str = "runs/quickstart"
    # auto | no | bf16 | fp16 (Accelerate). auto: bf16 on GPUs that support it (else fp16), and on CPUs that compute
    # bf16 natively (AVX512-BF16, AMX); fp32 on other CPUs, where bf16 is emulated and many times slower
    mixed_precision: str = "auto"
    channels_last: bool = False  # NHWC memory format (measured faster on CPU: benchmarks/step_options.py)
    progress_bar: bool = True
    # console: quiet (warnings, errors) | info (start-up summary, evaluations, checkpoints, end) | verbose (also
    # the training losses every log_every steps); RUN/train.log always gets everything
    log_level: str = "info"
    compare_baseline: bool = False  # also train the labeled-only "classification" preset and print both
    # overrides (section.field=value) for that baseline only: its own settings, chosen by its own `tune`
    baseline_overrides: list = field(default_factory=list)
    seeds: int = 1  # train seeds seed, seed+1, ... (each with its own labeled subset) and report mean ± std
    # several runs of one command (seeds, the baseline) at once: 0 decides from the hardware (on a CPU-only machine
    # with 2+ cores, one process per run up to the cores, the cores shared out as threads), 1 one run after
    # another, N at most N at once (hybridwrap.train.concurrent)
    run_processes: int = 0
    selected_by: str = ""  # how the settings were chosen (written by `hybridwrap tune`; printed with results)
    evaluate_test: bool = True  # False: never load the test split (hybridwrap tune's trials)
    check_replicas_every: int = 0  # multi-process: every N steps verify that all processes hold equal weights


SECTIONS = {"model": ModelConfig, "data": DataConfig, "loss": LossConfig, "optim": OptimConfig}


def fields_of(cls) -> dict[str, dataclasses.Field]:
    """The fields of a config dataclass by name."""
    return {f.name: f for f in dataclasses.fields(cls)}


def _unknown(key: str, section: str, source: str, known) -> ConfigError:
    prefix = f"{section}." if section else ""
    close = [prefix + c for c in difflib.get_close_matches(key, list(known), n=3)]
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    where = f" ({section} section)" if section else ""
    return ConfigError(f"Unknown config key {prefix + key!r} in {source}.{hint} Valid keys{where}: "
                       f"{', '.join(sorted(known))}.")


def apply_dict(cfg: TrainConfig, values: dict, source: str = "config") -> TrainConfig:
    top = fields_of(TrainConfig)
    for key, value in (values or {}).items():
        if key not in top:
            raise _unknown(key, "", source, top)
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"In {source}: {key!r} must be a mapping of fields, got {value!r}.")
            section = getattr(cfg, key)
            known = fields_of(SECTIONS[key])
            for sub, subval in value.items():
                if sub not in known:
                    raise _unknown(sub, key, source, known)
                setattr(section, sub, coerce(subval, getattr(section, sub), f"{key}.{sub}"))
        else:
            setattr(cfg, key, coerce(value, getattr(cfg, key), key))
    return cfg


def load_config(path: str | Path | list | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Defaults, then each YAML file in order (later files override earlier ones), then overrides."""
    cfg = TrainConfig()
    paths = path if isinstance(path, (list, tuple)) else ([path] if path is not None else [])
    for p in map(Path, paths):
        if not p.is_file():
            raise ConfigError(f"Config file {str(p)!r} not found. Pass a YAML file such as configs/quickstart.yaml.")
        try:
            values = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p} is not valid YAML: {exc}") from exc
        if not isinstance(values, dict):
            raise ConfigError(f"{p} must hold a mapping of config sections, got {type(values).__name__}.")
        apply_dict(cfg, values, source=str(p))
    return apply_overrides(cfg, overrides)


def apply_overrides(cfg: TrainConfig, overrides: list[str] | None) -> TrainConfig:
    """Apply ``section.field=value`` strings (from ``--set``) to ``cfg``."""
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"Override {item!r} must look like section.field=value (e.g. loss.lambda_rec=0.25).")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        nested: dict = {parts[-1]: value}
        for p in reversed(parts[:-1]):
            nested = {p: nested}
        apply_dict(cfg, nested, source="--set")
    return cfg


# Every schedule length counted in steps: what a budget run scales with max_steps.
SCHEDULE_FIELDS = ("loss.stability_rampup_steps", "loss.rec_rampup_steps", "loss.rec_inter_rampup_steps",
                   "optim.lr_rampup_steps", "optim.lr_rampdown_steps")


def scaled_to(cfg: TrainConfig, max_steps: int) -> TrainConfig:
    """``cfg`` run for ``max_steps`` with every schedule in the same proportion of the run (in place): a
    protocol's 80-epoch ramp-up of 600 epochs stays 2/15 of a short budget run. Nothing else changes."""
    factor = max_steps / cfg.max_steps
    for key in SCHEDULE_FIELDS:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value is not None:
            setattr(getattr(cfg, section), name, int(round(value * factor)))
    cfg.max_steps = max_steps
    return cfg


def _parts(cfg: TrainConfig) -> tuple[Section, ...]:
    return cfg, cfg.model, cfg.data, cfg.loss, cfg.optim


def freeze(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` read-only, its sections included (in place): what a run resolved, for every later layer to read."""
    for part in _parts(cfg):
        for f in dataclasses.fields(part):
            if not isinstance(getattr(part, f.name), Section):  # dicts and lists too: nothing in it is writable
                object.__setattr__(part, f.name, read_only(getattr(part, f.name)))
        object.__setattr__(part, "_frozen", True)
    return cfg


def replaced(cfg: TrainConfig, changes: dict[str, Any]) -> TrainConfig:
    """A writable copy of ``cfg`` with ``changes`` made (``{"seed": 1, "data.labels_seed": 1}``)."""
    out = copy.deepcopy(cfg)
    for part in _parts(out):
        part.__dict__.pop("_frozen", None)
        for f in dataclasses.fields(part):
            if f.type == "list" and isinstance(getattr(part, f.name), tuple):
                setattr(part, f.name, list(getattr(part, f.name)))
    for key, value in changes.items():
        section, _, name = key.rpartition(".")
        owner = getattr(out, section) if section else out
        if name not in fields_of(type(owner)):
            raise AttributeError(f"{type(owner).__name__} has no field {name!r}")
        setattr(owner, name, value)
    return out


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def fingerprint(cfg: TrainConfig) -> str:
    """What must not change when a run is resumed: model, data, loss, optimiser and seed."""
    d = to_dict(cfg)
    keep = {k: d[k] for k in ("preset", "model", "data", "loss", "optim", "seed")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]
