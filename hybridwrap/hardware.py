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


def emulated_bf16(precision: str, cuda: bool) -> bool:
    """Whether ``precision`` asks this CPU for bf16 it does not compute natively (the slow case worth a warning)."""
    return precision == "bf16" and not cuda and not cpu_native_bf16()


def resolve_precision(requested: str, cuda: bool | None = None) -> tuple[str, str]:
    """(the precision to train in: "no", "bf16" or "fp16", why). ``auto``: on CUDA bf16 where the GPU supports
    it, else fp16 (Accelerate's gradient scaler); on CPU bf16 only where the CPU computes it natively, else fp32.
    An explicit choice is kept as it is; bf16 on a CPU without native bf16 comes with the reason it is slow."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if requested != "auto":
        if emulated_bf16(requested, cuda):
            return requested, (f"set explicitly; this CPU ({cpu_capability()}) emulates bf16, many times slower than "
                               "fp32: use mixed_precision: auto (or no)")
        return requested, "set explicitly"
    if cuda:
        if torch.cuda.is_bf16_supported():
            return "bf16", f"auto: {torch.cuda.get_device_name()} supports bf16"
        return "fp16", f"auto: {torch.cuda.get_device_name()} has no bf16, fp16 with a gradient scaler"
    if cpu_native_bf16():
        return "bf16", f"auto: this CPU computes bf16 natively ({cpu_capability()})"
    return "no", f"auto: fp32, since this CPU ({cpu_capability()}) would emulate bf16 (many times slower)"
