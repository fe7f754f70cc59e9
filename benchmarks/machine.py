"""What every benchmark script records of the machine and the code, and how it writes a result.

The commit (marked ``-dirty`` when the library has uncommitted changes), the device, the CPU capability as torch
sees it, the environment a measured command runs in (the AVX2 emulation of benchmarks/no_native_bf16 kept when
the command starts in another directory), and an atomic JSON write.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
        # pathspecs are relative to cwd: run from the repository root, or the check never sees hybridwrap/
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "hybridwrap", "plugins"], cwd=HERE.parent,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except OSError:
        return "unknown"


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"cpu ({platform.machine()}, {os.cpu_count()} cores)"


def cpu_capability() -> str:
    """The SIMD level and native bf16 of this CPU as torch sees it (after the emulation, where one is on)."""
    from hybridwrap import hardware

    return hardware.cpu_capability()


def command_env(tag: str | None) -> dict[str, str]:
    """The environment for a measured command: ``tag`` "avx2" must run under benchmarks/no_native_bf16 and no tag
    without it (else exit with the fix); a relative PYTHONPATH (the emulation) made absolute, since the command
    starts in a fresh directory."""
    if bool(os.environ.get("HYBRIDWRAP_CPU_EMULATION")) != (tag == "avx2"):
        sys.exit("--tag avx2 runs under benchmarks/no_native_bf16; without --tag, run without it.")
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    return env


def write_json(path: Path, result: dict) -> None:
    """``result`` as ``path``, whole or not at all (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(path)
