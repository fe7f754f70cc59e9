"""Run Python as on an x86 CPU with AVX2 and no native bf16, on a CPU that has more (AVX512, AMX).

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 PYTHONPATH=benchmarks/no_native_bf16 python -m pytest

Python imports this file at start-up when its folder is on PYTHONPATH (so subprocesses inherit it). It makes
torch's bf16 checks (``torch.cpu._is_avx512_bf16_supported`` / ``_is_amx_tile_supported``) answer False, so
``mixed_precision: auto`` takes the fp32 path such a CPU takes; the two environment variables limit torch's own
kernels and oneDNN's to AVX2. It is an approximation of such a machine (same cores, caches and clock), used to
time the first command and the test suite there; benchmarks record ``HYBRIDWRAP_CPU_EMULATION`` beside the time.
torch itself is not imported here (``hybridwrap --help`` must stay torch-free); the patch runs after torch loads.
"""

import importlib.abc
import importlib.machinery
import os
import sys

os.environ.setdefault("HYBRIDWRAP_CPU_EMULATION", "AVX2 without native bf16 (benchmarks/no_native_bf16: "
                      f"ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY', 'unset')}, "
                      f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', 'unset')}, bf16 checks False)")


class _MaskBf16AfterTorchLoads(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            module.cpu._is_avx512_bf16_supported = lambda: False
            module.cpu._is_amx_tile_supported = lambda: False

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _MaskBf16AfterTorchLoads())
