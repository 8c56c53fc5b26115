#!/usr/bin/env python
"""Benchmarks of iFormer (the harness lives in benchmarks/, outside the installed package):

    python tools/benchmark.py latency --models t m l --out benchmarks/results.json
    python tools/benchmark.py deploy --models t m --threads 1 --out benchmarks/deploy_1thread.json
    python tools/benchmark.py train-throughput --device cuda --out benchmarks/gpu_train.json
Linux CPU / GPU numbers, not iPhone latencies. See benchmarks/README.md for the committed runs.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from iformer_mm.utils.cli import quiet_known_warnings  # noqa: E402

quiet_known_warnings()

from benchmarks.cli import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
