"""Facts about the software and host a result came from: package versions, CPU, threads, load.

Why in the library: every deployment report records the versions its artifact was made and run
with, and every measurement (the demo, the benchmarks) where it ran; a number is only comparable
with another from the same stack and host. Versions come from package metadata, so describing
the stack never imports (and never pays for) mmdet, mmseg or timm.
"""
from __future__ import annotations

import contextlib
import os
import platform
from importlib import metadata
from typing import Any, Dict, List, Optional, Sequence

from ..version import __version__

__all__ = ['package_version', 'versions', 'host', 'cpu_isa', 'load_average']

# Packages published under more than one distribution name (same import name).
_DISTRIBUTIONS = {'onnxruntime': ('onnxruntime', 'onnxruntime-gpu')}


def package_version(name: str) -> Optional[str]:
    """The installed version of package ``name``, or None when it is not installed.

    torch is read from ``torch.__version__``, which carries the build (``+cu130``, ``+cpu``)
    that its metadata lacks.
    """
    if name == 'torch':
        import torch
        return torch.__version__
    for dist in _DISTRIBUTIONS.get(name, (name,)):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(dist)
    return None


def versions(packages: Sequence[str]) -> Dict[str, str]:
    """Python, iformer-mm and each of ``packages`` ('not installed' when missing)."""
    return {'python': platform.python_version(), 'iformer_mm': __version__,
            **{name: package_version(name) or 'not installed' for name in packages}}


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    return platform.processor() or 'unknown'


#: the vector / matrix extensions int8 and bf16 speed depend on (a VM's CPU model can hide them:
#: the same "AMD EPYC" VM came up with AVX-512 VNNI + BF16 on one day and AVX2 only on another)
_ISA_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_bf16',
              'amx_int8', 'avx512_fp16')


def cpu_isa() -> List[str]:
    """The CPU's vector extensions from :data:`_ISA_FLAGS` (empty where /proc/cpuinfo is absent)."""
    with contextlib.suppress(OSError):
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    flags = set(line.split(':', 1)[1].split())
                    return [flag for flag in _ISA_FLAGS if flag in flags]
    return []


def host(threads: Optional[int] = None) -> Dict[str, Any]:
    """CPU model, its vector extensions and cores, torch intra-op threads (``threads``, default
    torch's current), OS: what a committed timing needs to be read on another machine."""
    if threads is None:
        import torch
        threads = torch.get_num_threads()
    return {'cpu': _cpu_model(), 'cpu_isa': cpu_isa(), 'cpu_count': os.cpu_count(),
            'torch_threads': threads,
            'platform': platform.platform()}


def load_average() -> Optional[List[float]]:
    """The 1, 5 and 15 minute load averages (2 decimals); None where the OS has none."""
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, 'getloadavg') else None
