"""Per-op profile of a loaded artifact: where the runtime spends its time, and at what precision.

Why: an int8 model that is barely faster than float is usually spending its time in what stayed
float (or in the converts around it). Each runtime reports per-kernel timings its own way
(OpenVINO's performance counters, ONNX Runtime's profiler); they are folded here into one table:
op type x precision it ran -> ms per run and share of the total, which every report carries.
"""
from __future__ import annotations

import collections
from typing import Dict, Iterable, List, Tuple

#: an event: (op type as the runtime names it, precision it ran, milliseconds)
Event = Tuple[str, str, float]


def fold(events: Iterable[Event], runs: int, source: str) -> Dict[str, object]:
    """Events of ``runs`` inferences -> {'ops': [...], 'by_precision': {...}, ...}."""
    ms: Dict[Tuple[str, str], float] = collections.defaultdict(float)
    nodes: Dict[Tuple[str, str], int] = collections.defaultdict(int)
    for op_type, precision, t in events:
        ms[op_type, precision] += t
        nodes[op_type, precision] += 1
    total = sum(ms.values()) or 1.0
    ops: List[Dict[str, object]] = [
        {'op_type': k[0], 'precision': k[1], 'ms': round(v / runs, 4),
         'share': round(v / total, 4), 'nodes': nodes[k] // runs}
        for k, v in sorted(ms.items(), key=lambda kv: -kv[1])]
    by_precision: Dict[str, float] = collections.defaultdict(float)
    for k, v in ms.items():
        by_precision[k[1]] += v / total
    return {'source': source, 'runs': runs, 'kernel_ms': round(total / runs, 4),
            'by_precision': {k: round(v, 4) for k, v in
                             sorted(by_precision.items(), key=lambda kv: -kv[1])},
            'ops': ops}
