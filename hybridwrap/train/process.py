"""Process plumbing: Accelerate's precision state, the launcher watch, optional trackers."""

from __future__ import annotations

import os
import sys
import threading
import time

import torch.nn as nn
from accelerate.state import AcceleratorState

from ..command import launcher_gone, process_rank, watch_launcher


def allow_new_precision(mixed_precision: str) -> None:
    """Accelerate keeps one mixed-precision setting per process and refuses another one; a process that trains
    one run after another (a notebook, a benchmark) may change it. Only the precision part of Accelerate's
    state is forgotten: the process group, if any, stays (this is what Accelerate's own tests do)."""
    shared = AcceleratorState._shared_state
    if shared and shared.get("_mixed_precision") not in (None, mixed_precision):
        AcceleratorState._reset_state(reset_partial_state=False)


_watching_launcher = False


def stop_when_launcher_dies() -> None:
    """Under `accelerate launch`, stop this worker when the launcher is killed (kill -9 leaves its workers
    running otherwise, as orphans holding the CPU or GPU). Checked every 2 s by a daemon thread."""
    global _watching_launcher
    if _watching_launcher or "TORCHELASTIC_RUN_ID" not in os.environ:
        return
    watch_launcher(os.getppid())

    def watch():
        while True:
            time.sleep(2.0)
            gone = launcher_gone()
            if gone is not None:
                if process_rank() == 0:
                    print(gone, file=sys.stderr, flush=True)
                os._exit(1)

    threading.Thread(target=watch, name="hybridwrap-launcher-watch", daemon=True).start()
    _watching_launcher = True


def has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401 (only whether it is installed)

        return True
    except ImportError:
        return False


def sync_batchnorm(model):
    """``model`` with every BatchNorm as torch's SyncBatchNorm (statistics over all processes); the parameter and
    buffer names stay the same, so checkpoints and saved weights are unchanged."""
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)
