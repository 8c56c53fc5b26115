"""OpenVINO sessions must leave the main thread able to handle signals.

Each ``openvino.Core`` loads a CPU plugin that swaps the calling thread's alternate signal stack
and restores the previous one when it goes; Cores released in the order they were made left the
main thread's alternate stack in freed memory, and the next Python signal handler (an alarm,
Ctrl-C) crashed the process (a segmentation fault in CI, after the pareto smoke run).
"""
import ctypes
import gc
import signal
import threading
import time

import numpy as np
import pytest
import torch

pytest.importorskip('openvino')


class _StackT(ctypes.Structure):
    _fields_ = [('ss_sp', ctypes.c_void_p), ('ss_flags', ctypes.c_int), ('ss_size', ctypes.c_size_t)]


def alternate_stack_is_mapped() -> bool:
    """Whether the calling thread's alternate signal stack (if any) lies in mapped memory."""
    current = _StackT()
    assert ctypes.CDLL(None, use_errno=True).sigaltstack(None, ctypes.byref(current)) == 0
    if not current.ss_sp or current.ss_flags & 2:  # SS_DISABLE
        return True
    with open('/proc/self/maps') as maps:
        for line in maps:
            low, high = (int(a, 16) for a in line.split()[0].split('-'))
            if low <= current.ss_sp and current.ss_sp + current.ss_size <= high:
                return True
    return False


def test_sessions_released_in_any_order_leave_signals_working(tmp_path):
    from iformer_mm.deploy.targets import get_target
    target = get_target('openvino')
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU()).eval()
    x = torch.randn(1, 3, 32, 32)
    calibration = [torch.randn(1, 3, 32, 32) for _ in range(4)]
    for precision in ('fp32', 'int8'):  # int8: NNCF compiles with its own Cores
        target.export(model, x, ['out'], precision, calibration if precision == 'int8' else None,
                      str(tmp_path / precision), 'input')
    assert alternate_stack_is_mapped()
    first = target.session(str(tmp_path / 'fp32'), threads=1)
    second = target.session(str(tmp_path / 'int8'), threads=1, precision='int8')
    expected = model(x).detach().numpy()
    assert np.abs(first(x.numpy())[0] - expected).max() < 1e-4
    del first  # released in the order made: the case that crashed
    gc.collect()
    del second
    gc.collect()
    assert alternate_stack_is_mapped()

    handled = []
    previous = signal.signal(signal.SIGALRM, lambda *_: handled.append(True))
    try:
        signal.pthread_kill(threading.main_thread().ident, signal.SIGALRM)
        time.sleep(0.05)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert handled == [True]
