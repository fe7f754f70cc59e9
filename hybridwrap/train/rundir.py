"""The run directory: its creation rules, checkpoints and resume, metrics.jsonl, and the saved config.

A run directory holds train_config.json, labels.json, metrics.jsonl, checkpoints/step-* (each renamed from a
.tmp name once complete, so a checkpoint exists completely or not at all), and at the end metrics.json and
model/. hybridwrap never overwrites a run: a second start in the same directory must pass --resume.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import logs
from ..config import TrainConfig, fingerprint, replaced, to_dict
from ..resolution import fill_resolved
from ..saved_configs import from_dict
from ..errors import CheckpointError, ConfigError
from ..serialization import atomic_write_text

CHECKPOINTS = "checkpoints"
logger = logs.get_logger("hybridwrap.train")


@dataclass
class TrainState:
    step: int = 0
    seconds: float = 0.0  # training time of all sessions up to the checkpoint (a resumed run's total)

    def state_dict(self):
        return {"step": self.step, "seconds": self.seconds}

    def load_state_dict(self, state):
        self.step = int(state["step"])
        self.seconds = float(state.get("seconds", 0.0))  # checkpoints of hybridwrap <= 0.2.0 lack it


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a checkpoint is complete once renamed from its .tmp name)."""
    root = run_dir / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-")), key=lambda p: p.name)


LOCK = ".lock"


def lock_run(run_dir: Path):
    """Hold ``run_dir`` for this process until :func:`unlock_run` (or until the process ends, however it ends: the
    kernel drops the lock of a killed process). A second process aimed at the same run is refused at once."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform: nothing to hold
        return None
    handle = open(run_dir / LOCK, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(f"{run_dir} is being written by another hybridwrap train (pid {holder}): wait for it to "
                          "end, or choose another --output-dir.") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def unlock_run(run_dir: Path, handle) -> None:
    if handle is not None:
        (run_dir / LOCK).unlink(missing_ok=True)
        handle.close()


def clean_partial_checkpoints(run_dir: Path) -> None:
    root = run_dir / CHECKPOINTS
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(".tmp-"):
                shutil.rmtree(p, ignore_errors=True)


def check_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool) -> None:
    saved = run_dir / "train_config.json"
    if not resume:
        if saved.exists() or checkpoint_dirs(run_dir):
            raise ConfigError(f"{run_dir} already holds a run. Pass --resume to continue it, or choose another "
                              "--output-dir: hybridwrap never overwrites a run.")
        return
    if saved.exists():
        old = from_dict(json.loads(saved.read_text()))
        fill_resolved(cfg, old)  # input size, normalisation: resolved from the data, not differences
        if fingerprint(old) != fingerprint(cfg):
            a, b = to_dict(old), to_dict(cfg)
            diffs = [f"{s}.{k}: {a[s][k]!r} -> {b[s][k]!r}" for s in ("model", "data", "loss", "optim")
                     for k in a[s] if a[s][k] != b[s][k]]
            diffs += [f"{k}: {a[k]!r} -> {b[k]!r}" for k in ("preset", "seed") if a[k] != b[k]]
            raise CheckpointError(f"Cannot resume {run_dir}: it was trained with another config ({'; '.join(diffs)}). "
                                  "Resume with the run's own config, or start a new run in another --output-dir.")


def first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (what a failed start must remove), or None."""
    missing = None
    for p in [path, *path.parents]:
        if p.exists():
            break
        missing = p
    return missing


def remove_if_empty(created: Path | None) -> None:
    """Remove ``created`` (a folder a command made) when it holds no file: the runs of a failed start each remove
    what they wrote, but concurrent runs can leave the folders they share."""
    if created is not None and created.is_dir() and not any(p.is_file() for p in created.rglob("*")):
        shutil.rmtree(created, ignore_errors=True)


def saved_run_config(run_dir: Path) -> TrainConfig | None:
    """The config a run in ``run_dir`` was started with (its first seed's, for a several-seed run), or None."""
    own = run_dir / "train_config.json"
    if own.is_file():
        return from_dict(json.loads(own.read_text()))
    seeds = sorted(run_dir.glob("seed-*/train_config.json"), key=lambda p: int(p.parent.name[len("seed-"):]))
    if not seeds:
        return None
    # seed k of that config writes to run_dir/seed-k again
    return replaced(from_dict(json.loads(seeds[0].read_text())), {"output_dir": str(run_dir)})


def save_checkpoint(acc, run_dir: Path, state: TrainState, cfg: TrainConfig) -> Path:
    """Accelerate's state of every process under checkpoints/.tmp-step-N, then renamed to step-N (atomic); the
    oldest beyond ``keep_checkpoints`` are removed."""
    root = run_dir / CHECKPOINTS
    final = root / f"step-{state.step:08d}"
    tmp = root / f".tmp-step-{state.step:08d}"
    if acc.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    acc.wait_for_everyone()
    acc.save_state(str(tmp))
    acc.wait_for_everyone()
    if acc.is_main_process:
        atomic_write_text(tmp / "train_state.json", json.dumps({"step": state.step, "fingerprint": fingerprint(cfg)}))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)  # atomic: a checkpoint exists completely or not at all
        for old in checkpoint_dirs(run_dir)[: -cfg.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()
    logger.info(f"step {state.step}/{cfg.max_steps}: checkpoint {final}")
    return final


def keep_metrics_until(metrics_path: Path, step: int) -> set[tuple[int, str]]:
    """On resume at ``step``, drop the metrics.jsonl lines written after that checkpoint (the resumed run writes
    them again) and return the (step, split) pairs already logged."""
    if not metrics_path.is_file():
        return set()
    lines = [(line, json.loads(line)) for line in metrics_path.read_text().splitlines() if line.strip()]
    kept = [(line, entry) for line, entry in lines if entry["step"] <= step]
    atomic_write_text(metrics_path, "".join(line + "\n" for line, _ in kept))
    return {(entry["step"], entry["split"]) for _, entry in kept}


def has_config(run_dir: Path) -> bool:
    """Whether the run in ``run_dir`` has written its config (`write_train_config`, once its data resolved it)."""
    return (run_dir / "train_config.json").is_file()


def write_train_config(run_dir: Path, cfg: TrainConfig) -> None:
    atomic_write_text(run_dir / "train_config.json", json.dumps(to_dict(cfg), indent=2, default=list))
