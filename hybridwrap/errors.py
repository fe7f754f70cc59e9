"""Typed errors, and the one error path every command goes through.

Every message says what went wrong *and* how to fix it. Each kind of error has its own exit status, so that
scripts can tell a bad config from missing data, a bad checkpoint or an unreachable Hub:

    1 other hybridwrap error    2 config (also argparse's usage errors)    3 data    4 checkpoint
    5 Hub / network             6 training stopped (non-finite loss)       130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


class HybridWrapError(Exception):
    """Base class of every error hybridwrap raises on purpose."""

    exit_code = 1

    def __init__(self, *args):
        # Raised in a DataLoader worker, an error is re-raised in the training process as type(msg) with msg =
        # "Caught X in DataLoader worker ...\nOriginal Traceback ...: message": keep the message, which names the fix
        if len(args) == 1 and isinstance(args[0], str) and args[0].startswith("Caught ") and \
                "\nOriginal Traceback" in args[0]:
            args = (args[0].rsplit(f"{type(self).__module__}.{type(self).__qualname__}: ", 1)[-1].strip(),)
        super().__init__(*args)


class ConfigError(HybridWrapError, ValueError):
    """A bad argument or configuration value."""

    exit_code = 2


class UnknownBackboneError(ConfigError, KeyError):
    def __str__(self):  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class UnsupportedBackboneError(ConfigError):
    """The backbone cannot be split/mirrored (e.g. token features of a ViT)."""


class InputSizeError(ConfigError):
    """The input size cannot be mirrored back exactly by the decoder."""


class DataError(HybridWrapError, ValueError):
    """A dataset that does not fit the request (size, labels, path...)."""

    exit_code = 3


class CheckpointError(HybridWrapError, ValueError):
    """A checkpoint that is missing, unsafe, corrupted or for another model."""

    exit_code = 4


class HubError(HybridWrapError, RuntimeError):
    """The Hugging Face Hub refused a request, or could not be reached."""

    exit_code = 5


class TrainingError(HybridWrapError, RuntimeError):
    """Training had to stop (e.g. a non-finite loss)."""

    exit_code = 6


class Interrupted(HybridWrapError):
    """Ctrl-C; the message says where the last checkpoint is and how to resume."""

    exit_code = 130


def process_rank() -> int:
    """This process's rank under `accelerate launch` / torchrun (0 when run alone)."""
    return int(os.environ.get("RANK", "0"))


def _peer_error_file() -> Path | None:
    """Where rank 0 leaves its exit status for the other ranks of the same launch (one host), or None alone."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if run_id is None or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return None
    port = os.environ.get("MASTER_PORT", "")
    return Path(tempfile.gettempdir()) / f"hybridwrap-{run_id}-{port}-{os.getppid()}.exit"


def _report(code: int, message: str) -> int:
    """Rank 0 prints one ``hybridwrap: error:`` line; the other ranks stay quiet and exit with the same code."""
    if process_rank() == 0:
        print(f"hybridwrap: error: {message}", file=sys.stderr, flush=True)
        peer_file = _peer_error_file()
        if peer_file is not None:
            try:
                peer_file.write_text(str(code))
            except OSError:
                pass
    return code


def _peer_failed() -> int | None:
    """The exit status rank 0 left before it stopped, when this (non-zero) rank fails because rank 0 is gone."""
    peer_file = _peer_error_file()
    if process_rank() == 0 or peer_file is None or not peer_file.is_file():
        return None
    try:
        return int(peer_file.read_text())
    except (OSError, ValueError):
        return None


_launcher_pid: int | None = None  # set under `accelerate launch` by the worker's launcher watch


def watch_launcher(pid: int) -> None:
    global _launcher_pid
    _launcher_pid = pid


def launcher_gone(wait: float = 0.0) -> str | None:
    """The line to print when this worker's launcher has died (waiting up to ``wait`` s: the kernel closes a dead
    launcher's connections just before it re-parents its workers), else None."""
    import time

    deadline = time.time() + wait
    while _launcher_pid is not None:
        if os.getppid() != _launcher_pid:
            return (f"hybridwrap: error: the launcher (pid {_launcher_pid}) is gone; this worker stops too. Continue "
                    "from the last checkpoint with --resume.")
        if time.time() >= deadline:
            break
        time.sleep(0.05)
    return None


def run_user_command(fn) -> int:
    """Run ``fn`` and return its exit status. A hybridwrap error (or Ctrl-C) becomes one clear line on rank 0's
    stderr and its own exit status, not a traceback; the other ranks of a multi-process launch exit quietly
    with the same status, also when their failure is only a consequence of rank 0 stopping (a closed
    connection at the next collective). Other exceptions are bugs: they keep their traceback."""
    peer_file = _peer_error_file()
    if process_rank() == 0 and peer_file is not None:
        peer_file.unlink(missing_ok=True)  # a stale file of an earlier launch with the same launcher pid
    try:
        return fn() or 0
    except HybridWrapError as exc:
        return _report(exc.exit_code, str(exc))
    except KeyboardInterrupt:
        return _report(Interrupted.exit_code, "interrupted.")
    except BrokenPipeError:  # `hybridwrap config --keys | head`: the reader left; stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception:
        gone = launcher_gone(wait=1.0)  # the launcher was killed: its store went with it, whatever failed next
        if gone is not None:
            if process_rank() == 0:
                print(gone, file=sys.stderr, flush=True)
            return 1
        code = _peer_failed()
        if code is None:
            raise
        return code
