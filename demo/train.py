"""Train and evaluate one demo task with mmengine's Runner, timing both.

Why the runner and not a hand-written loop: the demo is evidence that the configs work with the
toolboxes' real datasets, pipelines, losses, optimizers, schedulers and evaluators
(mmpretrain ``Accuracy``, mmdet ``CocoMetric`` / pycocotools, mmseg ``IoUMetric``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from .tasks import DemoTask

def load_config(task: DemoTask, data_root: Path, work_dir: Path, seed: int, quick: bool) -> Any:
    """The task's demo config, re-pointed at ``data_root`` and ready for ``Runner.from_cfg``.

    Validation during training is switched off: the demo evaluates once, after training, with
    the test loop (same dataset and evaluator as the config's val loop). The configs log every
    10 iterations (every 1-10 s on 2 cores), so a CPU run visibly progresses.
    """
    from mmengine.config import Config

    from iformer_mm.utils.configs import find_config
    cfg = Config.fromfile(find_config(task.config))
    task.point_at(cfg, Path(data_root).absolute())
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    cfg.randomness = dict(seed=seed, deterministic=True)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.save_optimizer = False
    if quick:
        task.shorten(cfg)
        cfg.param_scheduler = None
        cfg.default_hooks.logger.interval = 1
    return cfg


@dataclass
class TaskResult:
    """What the report needs from one trained task."""
    metrics: Dict[str, float]
    train_seconds: float
    train_cpu_seconds: float
    test_seconds: float
    iterations: int
    epochs: Optional[int]
    runner: Any


def train_and_test(cfg: Any) -> TaskResult:
    """``runner.train()`` then ``runner.test()``; wall and process CPU time of training."""
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    wall, cpu = time.perf_counter(), time.process_time()
    runner.train()
    train_seconds, train_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall = time.perf_counter()
    metrics = runner.test()
    test_seconds = time.perf_counter() - wall
    by_epoch = cfg.train_cfg.get('by_epoch', 'max_epochs' in cfg.train_cfg)
    return TaskResult(metrics={k: float(v) for k, v in metrics.items()},
                      train_seconds=train_seconds, train_cpu_seconds=train_cpu,
                      test_seconds=test_seconds, iterations=int(runner.iter),
                      epochs=int(runner.epoch) if by_epoch else None, runner=runner)
