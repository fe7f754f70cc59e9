"""What this machine's processor can do, for decisions made at run time and for records beside every timing.

Machines of the same size differ: bf16 autocast is fast where the CPU computes bf16 natively (AVX512-BF16 or
AMX) and an emulation many times slower elsewhere, so nothing speed-related is decided from a number measured
on another machine.
"""

from __future__ import annotations

import torch


def cpu_native_bf16() -> bool:
    """True where the CPU has bf16 instructions (AVX512-BF16 or AMX tiles)."""
    checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(bool(check()) for check in checks if check is not None)


def cpu_capability() -> str:
    """torch's SIMD level plus the bf16 extensions, e.g. "AVX512 +AVX512-BF16 +AMX" or "AVX2 (no native bf16)"."""
    base = torch.backends.cpu.get_cpu_capability()
    extras = [name for name, check in (("AVX512-BF16", "_is_avx512_bf16_supported"), ("AMX", "_is_amx_tile_supported"))
              if getattr(torch.cpu, check, None) is not None and getattr(torch.cpu, check)()]
    return " ".join([base] + [f"+{e}" for e in extras]) if extras else f"{base} (no native bf16)"
