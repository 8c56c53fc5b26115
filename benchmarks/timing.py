"""Timing on a CPU or a GPU: synchronisation, peak memory, interleaved rounds, a wall-clock budget.

Why one module: a GPU runs asynchronously, so a timer read without ``torch.cuda.synchronize``
measures how fast Python queued the kernels, not how fast they ran; peak memory needs the
allocator's counters reset around exactly one step; a CUDA out-of-memory error must end one
setting, not the run. Everything device-specific that the throughput benchmark needs is here, so
the same code paths run on the CPU smoke test and on the GPU.

Interleaving (as :mod:`.benchmark` does for CPU latency): every round runs each contender once
(``steps`` calls, synchronised before and after), the order alternating between rounds, so a
slow phase of the machine (clock throttling, another process) hits both alike; the per-round
ratio is the robust figure.
"""
from __future__ import annotations

import contextlib
import gc
import signal
import statistics
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional

import torch

Step = Callable[[], object]


def synchronize(device: torch.device) -> None:
    """Wait until every kernel queued on ``device`` has finished (no-op on the CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def is_out_of_memory(error: BaseException) -> bool:
    """A CUDA (or CPU allocator) out-of-memory error, whichever class this torch raises."""
    oom = getattr(torch, 'OutOfMemoryError', None) or torch.cuda.OutOfMemoryError
    return isinstance(error, oom) or 'out of memory' in str(error).lower()


def release_memory(device: torch.device, collect: bool = False) -> None:
    """Return cached blocks to the GPU; ``collect`` also runs the garbage collector first.

    Why optional: after a failure (an OOM's traceback holds frames, hence tensors, in reference
    cycles) only ``gc.collect`` frees them, but it takes ~0.5 s in a process that imported timm
    and mmengine, too much to pay after every setting.
    """
    if collect:
        gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def peak_memory(step: Step, device: torch.device) -> Optional[Dict[str, float]]:
    """Run ``step`` once and return its peak allocated memory (MiB); on the CPU: None, not run.

    ``peak_mib`` is ``torch.cuda.max_memory_allocated`` during the step (it includes whatever
    else is resident: the other model, optimizer states); ``step_mib`` subtracts what was
    allocated before the step, i.e. what the step itself needed (activations, gradients,
    workspaces) - the figure to compare between two models measured in one process.
    """
    if device.type != 'cuda':
        return None
    synchronize(device)
    resident = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    return {'peak_mib': round(peak / 2 ** 20, 1), 'step_mib': round((peak - resident) / 2 ** 20, 1)}


def interleaved_rounds(steps: Dict[str, Step], rounds: int, calls_per_round: int,
                       device: torch.device, time_limit_s: Optional[float] = None
                       ) -> Dict[str, List[float]]:
    """Seconds per round for each contender, timed interleaved: every round runs each one, in
    an order rotating per round (two contenders alternate), so no contender always runs first
    and slow phases of a shared machine hit all alike.

    Stops after the first round that ends past ``time_limit_s`` (at least one round is always
    run), so a setting slower than planned cannot eat the whole run's budget.
    """
    names = list(steps)
    times: Dict[str, List[float]] = {name: [] for name in names}
    t_start = time.perf_counter()
    for r in range(rounds):
        k = r % max(len(names), 1)
        for name in names[k:] + names[:k]:
            synchronize(device)
            t0 = time.perf_counter()
            for _ in range(calls_per_round):
                steps[name]()
            synchronize(device)
            times[name].append(time.perf_counter() - t0)
        if time_limit_s is not None and time.perf_counter() - t_start > time_limit_s:
            break
    return times


def summarize_rate(seconds: List[float], items_per_round: int) -> Dict[str, float]:
    """Items per second (median, min, max over rounds) and the median time per call."""
    rates = [items_per_round / s for s in seconds]
    return {'images_per_s': round(statistics.median(rates), 1),
            'images_per_s_min': round(min(rates), 1), 'images_per_s_max': round(max(rates), 1)}


def ratio_per_round(a: List[float], b: List[float]) -> Dict[str, float]:
    """Throughput ratio a / b per round (= time b / time a), median, min and max."""
    ratios = [tb / ta for ta, tb in zip(a, b)]
    return {'median': round(statistics.median(ratios), 4), 'min': round(min(ratios), 4),
            'max': round(max(ratios), 4), 'rounds': len(ratios)}


class Clock:
    """Wall time since the run started, against the run's budget (for progress and skipping)."""

    def __init__(self, budget_s: float):
        self.budget_s = float(budget_s)
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def remaining(self) -> float:
        return self.budget_s - self.elapsed()


class TimeLimitExceeded(BaseException):
    """Raised inside a call that ran past its time limit.

    A ``BaseException`` on purpose: torch.compile wraps ordinary exceptions raised during
    compilation into its own; this one must reach the caller unchanged.
    """


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block with :class:`TimeLimitExceeded` after ``seconds`` (main thread,
    POSIX). Elsewhere the block runs unlimited: the budget is then checked between settings only.

    Why a timer thread and ``pthread_kill`` rather than ``setitimer``: a process-wide alarm goes
    to whichever thread does not block it (the runtimes' worker threads included); addressed to
    the main thread, it interrupts only the Python code this block runs.
    """
    if (seconds <= 0 or not hasattr(signal, 'pthread_kill')
            or threading.current_thread() is not threading.main_thread()):
        yield
        return

    armed = threading.Event()
    armed.set()

    def _raise(signum, frame):
        if armed.is_set():
            raise TimeLimitExceeded(f'time limit of {seconds:.0f} s exceeded')
    main_thread = threading.main_thread().ident
    timer = threading.Timer(seconds, signal.pthread_kill, args=(main_thread, signal.SIGALRM))
    timer.daemon = True
    previous = signal.signal(signal.SIGALRM, _raise)
    timer.start()
    try:
        yield
    finally:
        armed.clear()  # a signal already on its way is ignored rather than raised in here
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGALRM, previous)
