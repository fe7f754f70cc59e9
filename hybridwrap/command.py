"""How a command ends: one ``hybridwrap: error:`` line and its exit status, alike on every rank of a launch.

Every command goes through `run_user_command`. Under ``accelerate launch`` rank 0 prints the line and leaves its
exit status in a file for the other ranks, whose own failure is then only the consequence of rank 0 stopping;
a worker whose launcher was killed stops too (`watch_launcher`, `launcher_gone`).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from .errors import HybridWrapError, Interrupted


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


def peer_error_files(launcher_pid: int) -> list[Path]:
    """The exit-status files the ranks of a launcher left (removed by `hybridwrap launch` once they all ended)."""
    return list(Path(tempfile.gettempdir()).glob(f"hybridwrap-*-*-{launcher_pid}.exit"))


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
