"""``make demo``: iFormer-T trains and is evaluated for all three tasks on CPU, on generated data.

Modules, one job each: :mod:`.data` (generate / reuse the shapes datasets), :mod:`.tasks`
(per-task config, data and metrics), :mod:`.train` (mmengine Runner: train, test, timing),
:mod:`.predict` + :mod:`.visualize` (prediction pictures), :mod:`.report` (``results.json`` and
the table), :mod:`.run` (sequencing), :mod:`.cli` (``tools/demo.py``).
"""
from .cli import main
from .run import run_demo
from .tasks import TASKS

__all__ = ['main', 'run_demo', 'TASKS']
