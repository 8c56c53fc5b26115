"""Run the demo end to end: data -> train -> evaluate -> picture, per task; then the report.

Why one function per step: each can be tested (and reused) on its own; :func:`run_demo` only
sequences them and collects the numbers into ``results.json``.
"""
from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

from . import report
from .data import ensure_data
from .predict import write_picture
from .tasks import TASKS, DemoTask, set_backbone, with_dependencies
from .train import load_config, train_and_test

RESULTS_FILE = 'results.json'


def last_checkpoint(work_dir: Path) -> Path:
    """The checkpoint mmengine's CheckpointHook saved last in ``work_dir``."""
    pointer = Path(work_dir) / 'last_checkpoint'
    if not pointer.is_file():
        raise FileNotFoundError(f'no checkpoint was saved in {work_dir} (missing {pointer.name})')
    return Path(pointer.read_text().strip())


def run_task(task: DemoTask, data_root: Path, out_dir: Path, seed: int, quick: bool,
             backbone: Optional[Path] = None,
             log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Generate (if needed), train, evaluate and draw one task; return its results record.

    ``backbone``: a checkpoint whose ``backbone.*`` weights initialise the model's backbone.
    """
    spec = task.quick_data if quick else task.data
    data_dir = ensure_data(spec, data_root, log)
    cfg = load_config(task, data_dir, out_dir / 'work_dirs' / task.name, seed, quick)
    if backbone is not None:
        set_backbone(cfg, backbone)
    log(f'{task.name}: training {task.title} with configs/{task.config}'
        + (f', backbone from {backbone}' if backbone else ''))
    result = train_and_test(cfg)
    picture = write_picture(task.name, result.runner, out_dir)
    log(f'{task.name}: wrote {picture}')
    trivial = task.trivial(data_dir)
    metrics = [dict(key=key, label=label, value=result.metrics[key] / scale,
                    trivial=trivial.get(key)) for key, label, scale in task.metrics]
    record = dict(
        title=task.title, config=f'configs/{task.config}', data=str(data_dir),
        train_images=spec.total('train'), val_images=spec.total('val'),
        image_size=spec.image_size, data_seed=spec.seed, train_seed=seed,
        metrics=metrics, raw_metrics=result.metrics,
        train_seconds=round(result.train_seconds, 1),
        train_cpu_seconds=round(result.train_cpu_seconds, 1),
        test_seconds=round(result.test_seconds, 1), iterations=result.iterations,
        epochs=result.epochs, batch_size=int(cfg.train_dataloader.batch_size),
        backbone_init=str(backbone) if backbone else 'random',
        checkpoint=str(last_checkpoint(Path(cfg.work_dir))), picture=picture.name,
        work_dir=str(cfg.work_dir))
    del result
    gc.collect()
    return record


def run_demo(tasks: Sequence[str], out_dir: Path, data_root: Path, seed: int = 0,
             quick: bool = False, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Run ``tasks`` (plus the classifier that det / seg start from) in the demo's order.

    Writes ``out_dir/results.json`` after each task and returns the results.
    """
    import torch
    out_dir, data_root = Path(out_dir), Path(data_root)
    order = with_dependencies(tasks)
    added = [name for name in order if name not in tasks]
    if added:
        log(f'demo: also running {added}: det and seg start from its backbone')
    log(f'demo: tasks {order} on {torch.get_num_threads()} CPU thread(s), out-dir {out_dir}, '
        f'data-root {data_root}' + (' (--quick: plumbing only)' if quick else ''))
    results: Dict[str, Any] = dict(seed=seed, quick=quick, versions=report.versions(), tasks={})
    start = time.perf_counter()
    for name in order:
        task = TASKS[name]
        backbone = (Path(results['tasks'][task.backbone_from]['checkpoint'])
                    if task.backbone_from else None)
        results['tasks'][name] = run_task(task, data_root, out_dir, seed, quick, backbone, log)
        results['total_seconds'] = round(time.perf_counter() - start, 1)
        results['machine'] = report.machine()
        report.write_json(out_dir / RESULTS_FILE, results)
    return results


def summary(results: Dict[str, Any], markdown: bool = False) -> str:
    return report.format_table(report.table_rows(results['tasks']), markdown=markdown)
