"""One train/test entry for mmpretrain, mmdet and mmseg configs (``tools/train.py``, ``tools/test.py``).

The toolbox is taken from the config's ``default_scope``; everything else is the mmengine runner,
as in each toolbox's own tools. Additions over those tools, each for a measured problem:

* CPU runs of a config whose ``env_cfg.dist_cfg.backend`` is ``nccl`` switch to ``gloo``
  (one config for ``torchrun`` on GPUs and on CPU), and torchrun works without GPUs;
* ``tools/test.py CONFIG iFormer_m.pth`` accepts a published classification file or a timm file
  (``.pth`` / ``.bin`` / ``.safetensors``) directly (given to the model in the mm layout;
  published det/seg files load as they are), a URL or an ``hf-hub:`` name (downloaded once into
  its cache, :mod:`iformer_mm.checkpoint.download`);
* ``tools/test.py CONFIG ARTIFACT`` tests an artifact written by ``tools/deploy.py`` in its
  runtime, inside the same runner (:mod:`iformer_mm.deploy.backend_model`): dataset, pipeline,
  metric, ``--out``, ``--show-dir`` and ``tools/dist_test.sh`` as with a checkpoint;
* ``--out`` / ``--show`` / ``--show-dir`` / ``--wait-time`` (and mmpretrain's ``--out-item``)
  mean what they mean in the config's toolbox's own ``tools/test.py``;
* checkpoints are written atomically (:mod:`iformer_mm.engine.atomic_backend`);
* checkpoints carry the random generators' state, so ``--resume`` continues exactly
  (:class:`iformer_mm.engine.hooks.RandomStateHook`);
* a dataset path that does not exist is named before anything starts;
* ``--amp`` without a GPU is refused with a clear message (mmengine's AMP wrapper asserts).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import os.path as osp
import sys
from typing import Iterator, List, Optional, Sequence

from ..utils.cli import ToolParser, error_exit, positive_int
from ..utils.configs import ConfigError, load_config, toolbox_of

_CPU_GROUP_USED = False  # set when this process ran a gloo group created by us


class LaunchError(ValueError):
    """Bad command-line input; the message names it."""


def _common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--work-dir', help='folder for logs and checkpoints')
    parser.add_argument('--cfg-options', nargs='+', action=_DictAction, default={},
                        help='override config entries, e.g. train_cfg.max_iters=10')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher (torchrun -> pytorch; srun -> slurm)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


class _DictAction(argparse.Action):
    """mmengine's DictAction, imported lazily so --help works without mmengine set up."""

    def __call__(self, parser, namespace, values, option_string=None):
        from mmengine.config import DictAction
        DictAction(self.option_strings, self.dest)(parser, namespace, values, option_string)


def train_parser(prog: str = 'train.py') -> argparse.ArgumentParser:
    p = ToolParser(prog=prog, description='Train an iFormer model (mmpretrain/mmdet/mmseg config)')
    p.add_argument('config', help='config file')
    p.add_argument('--resume', nargs='?', type=str, const='auto',
                   help='resume from CHECKPOINT, or from the last checkpoint in the work dir')
    p.add_argument('--amp', action='store_true', help='mixed precision (GPU only)')
    p.add_argument('--auto-scale-lr', action='store_true', help='scale lr by the real batch size')
    p.add_argument('--no-validate', action='store_true', help='skip validation during training')
    _common_args(p)
    return p


def test_parser(prog: str = 'test.py') -> argparse.ArgumentParser:
    p = ToolParser(prog=prog, description='Evaluate an iFormer model (mmpretrain/mmdet/mmseg config)')
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help='mm checkpoint, a published iFormer .pth or a timm file (a '
                                      'path, URL or hf-hub:ORG/REPO), or an artifact written by '
                                      'tools/deploy.py (.onnx, OpenVINO folder, .pte; its report '
                                      'beside it), run in its runtime')
    p.add_argument('--out', help="as the toolbox's own tools/test.py: mmdet / mmpretrain dump "
                                 'the predictions to this .pkl file; mmseg writes the '
                                 'predicted label maps as PNGs into this folder')
    p.add_argument('--out-item', choices=['metrics', 'pred'],
                   help='mmpretrain: what --out holds (default: the predictions)')
    p.add_argument('--show', action='store_true', help='show each prediction in a window')
    p.add_argument('--show-dir', help='write each image with its prediction drawn into this '
                                      'folder (under the run\'s work_dir/timestamp)')
    p.add_argument('--wait-time', type=float, default=2, help='--show: seconds per image')
    p.add_argument('--threads', type=positive_int,
                   help='artifact: runtime intra-op threads (default: the runtime\'s)')
    _common_args(p)
    return p


def load_run_config(path: str, args: argparse.Namespace):
    """The config with the command line's overrides, work dir, launcher and our additions."""
    cfg = load_config(path)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    toolbox_of(cfg, path)
    _choose_dist_backend(cfg)
    _atomic_checkpoints(cfg)
    return cfg


def _atomic_checkpoints(cfg) -> None:
    """Save checkpoints through AtomicLocalBackend unless the config picked a backend."""
    from ..engine.atomic_backend import BACKEND_NAME
    hook = cfg.get('default_hooks', {}).get('checkpoint')
    if hook is not None and not hook.get('backend_args') and not hook.get('out_dir'):
        hook['backend_args'] = dict(backend=BACKEND_NAME)


def _random_state_hook(cfg) -> None:
    """Add RandomStateHook to the run unless the config already has it."""
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == 'RandomStateHook' for h in hooks):
        hooks.append(dict(type='RandomStateHook'))
    cfg.custom_hooks = hooks


def _choose_dist_backend(cfg) -> None:
    """nccl needs GPUs: fall back to gloo on CPU so one config serves both."""
    import torch
    env = cfg.setdefault('env_cfg', {})
    dist_cfg = env.setdefault('dist_cfg', {})
    if not torch.cuda.is_available() and dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'


@contextlib.contextmanager
def _cpu_process_group(cfg) -> Iterator[None]:
    """torchrun on CPU: work around two CUDA-only assumptions of mmengine 0.10.7.

    ``mmengine.dist.init_dist('pytorch')`` always calls ``torch.cuda.set_device`` and the runner
    wraps the model in DDP with ``device_ids=[LOCAL_RANK]``; both fail without GPUs. We create the
    process group ourselves (the runner then skips ``init_dist``), give DDP ``device_ids=None``,
    and destroy the group at the end (a live gloo group at interpreter exit aborts the process).
    """
    import torch
    import torch.distributed as dist
    if cfg.launcher == 'none' or torch.cuda.is_available():
        yield
        return
    if cfg.launcher != 'pytorch':
        raise LaunchError(f'--launcher {cfg.launcher} without GPUs is not supported; on CPU use '
                          'tools/dist_train.sh (torchrun, --launcher pytorch)')
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                     broadcast_buffers=False,
                                     find_unused_parameters=cfg.get('find_unused_parameters', False))
    global _CPU_GROUP_USED
    _CPU_GROUP_USED = True
    created = not dist.is_initialized()
    if created:
        dist.init_process_group(backend=cfg.env_cfg.dist_cfg.get('backend', 'gloo'))
    try:
        yield
        if created:  # only on success: a rank that failed must not wait for the others
            dist.barrier()
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()


def _dataset_paths(dataset: dict, key: str):
    """(config key, path) pairs a dataset config will read; wrappers are followed."""
    if not isinstance(dataset, dict):
        return
    for inner in ('dataset', 'datasets'):
        sub = dataset.get(inner)
        for i, d in enumerate(sub if isinstance(sub, (list, tuple)) else [sub] if sub else []):
            yield from _dataset_paths(d, f'{key}.{inner}' + (f'[{i}]' if isinstance(sub, (list, tuple)) else ''))
    root = dataset.get('data_root') or ''
    if root:
        yield f'{key}.data_root', root
    ann = dataset.get('ann_file')
    if ann:
        yield f'{key}.ann_file', osp.join(root, ann)
    prefix = dataset.get('data_prefix')
    items = prefix.items() if isinstance(prefix, dict) else [('', prefix)] if prefix else []
    for name, value in items:
        if value:
            yield f'{key}.data_prefix' + (f'.{name}' if name else ''), osp.join(root, value)
    split = dataset.get('split')
    if split and root and dataset.get('type') == 'ImageNet':
        yield f'{key}.split', osp.join(root, split)


def check_data_paths(cfg, loaders: Sequence[str]) -> None:
    """Fail before training starts if a dataset path in the config does not exist."""
    for loader in loaders:
        spec = cfg.get(loader)
        if not spec:
            continue
        for key, path in _dataset_paths(spec.get('dataset'), f'{loader}.dataset'):
            if not osp.exists(path):
                raise LaunchError(f'{key}: {path} does not exist (set it with --cfg-options '
                                  f'{key}=..., or generate demo data: python tools/make_shapes.py all)')


def _build_runner(cfg):
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)


def train(argv: Optional[Sequence[str]] = None) -> None:
    args = train_parser().parse_args(argv)
    cfg = load_run_config(args.config, args)
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise LaunchError('--amp needs a GPU (mmengine AmpOptimWrapper); none is available')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise LaunchError(f'--resume checkpoint not found: {args.resume}')
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise LaunchError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    _random_state_hook(cfg)
    check_data_paths(cfg, ['train_dataloader', 'val_dataloader'])
    with _cpu_process_group(cfg):
        _build_runner(cfg).train()


def _visualize(cfg, args) -> None:
    """--show / --show-dir, as each toolbox's own tools/test.py turns them on."""
    hooks = cfg.get('default_hooks') or {}
    if 'visualization' not in hooks:
        raise LaunchError('--show / --show-dir need default_hooks.visualization in the config '
                          "(the toolbox's VisualizationHook)")
    hook = hooks['visualization']
    if cfg.default_scope == 'mmpretrain':
        hook.update(enable=True, show=args.show, wait_time=args.wait_time, out_dir=args.show_dir)
        return
    hook['draw'] = True
    if args.show:
        hook.update(show=True, wait_time=args.wait_time)
    if args.show_dir:
        if cfg.default_scope == 'mmdet':
            hook['test_out_dir'] = args.show_dir
        else:
            cfg.visualizer['save_dir'] = args.show_dir


def _dump(cfg, args) -> None:
    """--out, as each toolbox's own tools/test.py writes it."""
    evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
    if cfg.default_scope == 'mmseg':
        if args.out.endswith(('.pkl', '.pickle')):
            raise LaunchError(f'--out {args.out}: mmseg writes the predicted label maps as PNGs '
                              'into a folder (as its own tools/test.py); give a folder')
        for evaluator in evaluators:
            evaluator.update(output_dir=args.out, keep_results=True)
        # mmseg 1.2.2's IoUMetric creates output_dir on rank 0 only, while every rank writes its
        # PNGs there: under tools/dist_test.sh a rank that got there first failed with
        # FileNotFoundError (and rank 0 then waited in collect_results). Every rank makes it.
        os.makedirs(args.out, exist_ok=True)
        return
    if not args.out.endswith(('.pkl', '.pickle')):
        raise LaunchError(f'--out must end with .pkl, got {args.out}')
    if cfg.default_scope == 'mmpretrain' and args.out_item == 'metrics':
        return  # written after the run
    dump = (dict(type='DumpDetResults', out_file_path=args.out) if cfg.default_scope == 'mmdet'
            else dict(type='DumpResults', out_file_path=args.out))
    cfg.test_evaluator = list(evaluators) + [dump]


def _deployed(cfg, args) -> None:
    """The artifact in place of the model (:mod:`iformer_mm.deploy.backend_model`)."""
    from ..deploy.backend_model import deployed_model_cfg
    cfg.model = deployed_model_cfg(cfg, os.path.abspath(args.checkpoint), args.config,
                                   args.threads)
    cfg.model_wrapper_cfg = dict(type='DeployedModelWrapper')
    cfg.load_from = None


def test(argv: Optional[Sequence[str]] = None) -> dict:
    args = test_parser().parse_args(argv)
    cfg = load_run_config(args.config, args)
    from ..checkpoint import is_remote
    from ..deploy.artifact import looks_like_artifact
    if not is_remote(args.checkpoint) and not os.path.exists(args.checkpoint):
        raise LaunchError(f'checkpoint not found: {args.checkpoint}')
    artifact = not is_remote(args.checkpoint) and looks_like_artifact(args.checkpoint)
    if args.out_item and cfg.default_scope != 'mmpretrain':
        raise LaunchError(f'--out-item is an mmpretrain option; this is an {cfg.default_scope} '
                          'config')
    if args.out_item and not args.out:
        raise LaunchError('--out-item needs --out (the file to write)')
    if args.threads and not artifact:
        raise LaunchError('--threads sets an artifact\'s runtime threads; '
                          f'{args.checkpoint} is a checkpoint')
    if artifact:  # refused first if it is not the config's model
        _deployed(cfg, args)
    check_data_paths(cfg, ['test_dataloader'])
    if args.out:
        _dump(cfg, args)
    if args.show or args.show_dir:
        _visualize(cfg, args)
    if not artifact:
        # mmengine reads it through our loader (iformer_mm.zoo.mm_loader): a URL or Hub name is
        # fetched once into its cache, a release or timm file is given to the model in the mm
        # layout
        cfg.load_from = args.checkpoint
    with _cpu_process_group(cfg):
        metrics = _build_runner(cfg).test()
    if args.out and args.out_item == 'metrics':
        import mmengine
        mmengine.dump(metrics, args.out)
    return metrics


def main(command: str, argv: Optional[List[str]] = None) -> int:
    """CLI wrapper: user errors become one line on stderr and exit code 2."""
    from ..checkpoint import CheckpointError
    from ..deploy.targets import DeployError
    try:
        (train if command == 'train' else test)(argv)
    except (LaunchError, ConfigError, CheckpointError, DeployError) as e:
        return error_exit(f'{command}.py', e)
    if _CPU_GROUP_USED:
        # Measured: with torch 2.14 gloo, about one CPU torchrun worker in four aborted in
        # interpreter teardown ("terminate called without an active exception", SIGABRT) after
        # all work, barrier and destroy_process_group had completed. Skip that teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
