#!/usr/bin/env python
"""CPU latency of iFormer vs timm's fused port (interleaved, one process); JSON + PNG.

    python tools/benchmark.py --models t m l --out benchmarks/results.json
Linux CPU numbers, not iPhone latencies. See benchmarks/README.md for the committed run.

GPU training throughput, ours vs timm (JSON + Markdown; < 8 min on one GPU):
    python tools/benchmark.py --train-throughput --device cuda --out benchmarks/gpu_train.json
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from iformer_mm.cli_warnings import quiet_known_warnings  # noqa: E402

quiet_known_warnings()

from iformer_mm.analysis.cli import bench_main  # noqa: E402

if __name__ == '__main__':
    sys.exit(bench_main())
