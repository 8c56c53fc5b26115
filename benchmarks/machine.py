"""What a benchmark figure depends on beyond the package versions: GPU, TF32 flags, contention.

Versions, CPU model and load come from :mod:`iformer_mm.utils.environment` (the library records
them in its reports too); this module adds what only measurements need: the GPU and its
driver, and :class:`MachineMonitor`, which says whether other processes shared the CPU while we
measured. Nothing here imports mmdet / mmseg / mmpretrain or timm.
"""
from __future__ import annotations

import contextlib
import os
import platform
import resource
import shutil
import statistics
import subprocess
import time
from typing import Any, Dict, Optional, Sequence

import torch

from iformer_mm.models.backbones import fused_cpu_ops
from iformer_mm.utils.environment import host, load_average, package_version, versions

__all__ = ['MachineMonitor', 'accelerator_environment', 'environment', 'gpu', 'host',
           'load_average', 'package_version', 'parallel_speedup', 'versions']


def environment(threads: int) -> Dict[str, Any]:
    """What a CPU latency depends on: host, threads, versions, oneDNN and our fused kernels."""
    env = {**host(threads), 'python': platform.python_version(),
           'torch': package_version('torch'), 'timm': package_version('timm'),
           'mkldnn': torch.backends.mkldnn.is_available(),
           'fused_cpu_kernels': fused_cpu_ops.fused_kernels_available(),
           'dtype': 'float32', 'device': 'cpu'}
    onnxruntime = package_version('onnxruntime')
    if onnxruntime is not None:
        env['onnxruntime'] = onnxruntime
    return env


def _nvidia_driver() -> Optional[str]:
    """The NVIDIA driver version from ``nvidia-smi`` (torch does not report it); None if absent."""
    exe = shutil.which('nvidia-smi')
    if exe is None:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([exe, '--query-gpu=driver_version', '--format=csv,noheader'],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return out.strip().splitlines()[0].strip() or None
    return None


def gpu(device: torch.device) -> Optional[Dict[str, Any]]:
    """Name, compute capability, memory, CUDA / cuDNN / driver versions of a CUDA ``device``.

    None for a CPU device. The CUDA version is the one torch was built with (what its kernels
    use); the driver must be at least as new, and is what ``nvidia-smi`` reports.
    """
    if device.type != 'cuda':
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return {'name': props.name, 'index': index, 'count': torch.cuda.device_count(),
            'capability': f'{props.major}.{props.minor}',
            'memory_gib': round(props.total_memory / 2 ** 30, 1),
            'multiprocessors': props.multi_processor_count,
            'bf16_supported': bool(torch.cuda.is_bf16_supported()),
            'cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version(),
            'driver': _nvidia_driver()}


def accelerator_environment(device: torch.device, packages: Sequence[str]) -> Dict[str, Any]:
    """What a CPU or GPU throughput depends on: host, versions, GPU, TF32 / cuDNN settings.

    Why the TF32 flags: on Ampere and newer GPUs an "fp32" convolution runs in TF32 unless
    ``torch.backends.cudnn.allow_tf32`` is off (torch's default: on for convolutions, off for
    matmuls); an fp32 figure means little without them.
    """
    return {**host(), **versions(packages), 'device': str(device), 'gpu': gpu(device),
            'torch_cuda_build': torch.version.cuda,
            'tf32': {'cudnn_conv': torch.backends.cudnn.allow_tf32,
                     'cuda_matmul': torch.backends.cuda.matmul.allow_tf32},
            'cudnn_benchmark': torch.backends.cudnn.benchmark}


def _cpu_busy_seconds() -> Optional[float]:
    """Busy CPU seconds of the whole machine since boot (all cores), from /proc/stat."""
    try:
        with open('/proc/stat') as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf('SC_CLK_TCK')


def _own_cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def parallel_speedup(threads: int, size: int = 768, reps: int = 9) -> Optional[float]:
    """Speed-up of a compute-bound matmul from 1 to ``threads`` threads (~1 s).

    Why: on a shared machine the cores that ``threads`` asks for may be busy; a speed-up near 1
    means the extra threads had no core to run on, so multi-thread latencies measure contention.
    """
    if threads <= 1:
        return None
    a, b = torch.randn(size, size), torch.randn(size, size)
    previous = torch.get_num_threads()
    medians = []
    try:
        for n in (1, threads):
            torch.set_num_threads(n)
            a @ b
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                a @ b
                ts.append(time.perf_counter() - t0)
            medians.append(statistics.median(ts))
    finally:
        torch.set_num_threads(previous)
    return round(medians[0] / medians[1], 2)


class MachineMonitor:
    """How much CPU *other* processes used while we measured (shared-machine detection)."""

    def __init__(self, threads: int = 1):
        self.threads = threads

    def __enter__(self) -> 'MachineMonitor':
        self.load_before = load_average()
        self.speedup_before = parallel_speedup(self.threads)
        self.t0, self.busy0, self.own0 = time.time(), _cpu_busy_seconds(), _own_cpu_seconds()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.time() - self.t0
        busy1 = _cpu_busy_seconds()
        self.other_cpu_s = (None if busy1 is None or self.busy0 is None else
                            max(0.0, (busy1 - self.busy0) - (_own_cpu_seconds() - self.own0)))
        self.load_after = load_average()
        self.speedup_after = parallel_speedup(self.threads)

    def summary(self) -> Dict[str, Any]:
        """Other processes' CPU share, load, thread speed-up probe and a one-line verdict."""
        cores = os.cpu_count() or 1
        frac = None if self.other_cpu_s is None else self.other_cpu_s / (self.wall * cores)
        # other processes' measured CPU share; the load average (which also counts our own
        # earlier work) only when /proc/stat cannot be read
        shared = (frac > 0.05 if frac is not None
                  else bool(self.load_before) and self.load_before[0] > 0.5)
        speedups = [s for s in (self.speedup_before, self.speedup_after) if s is not None]
        return {
            'wall_s': round(self.wall, 1),
            'load_average_before': self.load_before,
            'load_average_after': self.load_after,
            'other_processes_cpu_fraction': None if frac is None else round(frac, 3),
            'machine_shared': shared,
            'matmul_speedup_1_to_n_threads': {'threads': self.threads,
                                              'before': self.speedup_before,
                                              'after': self.speedup_after},
            'threads_had_free_cores': (None if not speedups
                                       else min(speedups) >= 0.75 * self.threads),
            'note': ('other processes used the CPU during the measurement (shared machine): '
                     'absolute latencies are noisy; the interleaved ratios are the robust figures'
                     if shared else 'no other significant CPU use was observed during the run'),
        }
