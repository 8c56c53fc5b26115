"""Helpers shared by the test modules: one place for paths, reference models, tool runs, configs.

Fixtures stay in ``conftest.py``; everything a test imports comes from here.
"""
from __future__ import annotations

import argparse
import collections
import copy
import functools
import http.server
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config

import iformer_mm  # noqa: F401  (registers the models)
from benchmarks.train_throughput import random_bn_statistics
from iformer_mm.models.backbones.iformer_keys import ours_to_official

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def toolbox_test_tool(toolbox: str) -> Path:
    """The toolbox's own ``tools/test.py`` (shipped inside the package under ``.mim``): the
    reference every deployed artifact is measured against."""
    import importlib
    return Path(importlib.import_module(toolbox).__file__).parent / '.mim' / 'tools' / 'test.py'


# ----------------------------------------------------------------------------------------------
# Weights and the timm reference
# ----------------------------------------------------------------------------------------------
def randomize_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm non-trivial statistics and affine params, so fusion and key
    conversion errors cannot hide behind identity BNs (the benchmark's own function)."""
    return random_bn_statistics(model, seed)


@torch.no_grad()
def calibrate_bn(model: torch.nn.Module, inputs: torch.Tensor) -> torch.nn.Module:
    """Set every BatchNorm's statistics to those of ``inputs`` (one train-mode pass, cumulative
    average), then eval mode. Why: a random network's features barely vary between images
    (measured: 0.03% of their magnitude), so any comparison of its predictions compares rounding
    noise; calibrated on the images, each layer sees standardised activations and the
    predictions follow the image."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    model.extract_feat(inputs)
    return model.eval()


def release_file(folder: Path, seed: int) -> Tuple[torch.nn.Module, Path]:
    """A random iFormer-T classifier (randomised BN) and a release-format file of it."""
    from iformer_mm.models.plain_classifier import IFormerClassifier
    torch.manual_seed(seed)
    model = randomize_bn(IFormerClassifier('t', num_classes=1000), seed).eval()
    path = Path(folder) / 'iFormer_t.pth'
    write_release_file(model, 't', path)
    return model, path


def random_timm_iformer(variant: str, seed: int = 0, **timm_kwargs) -> torch.nn.Module:
    """timm's own ``iformer_{variant}`` (e.g. ``'m_distilled'``): random weights, BatchNorm
    statistics randomised (:func:`randomize_bn`), eval mode. The reference of the timm-layout
    tests: its ``state_dict()`` is what timm and the Hub files hold."""
    import timm
    torch.manual_seed(seed)
    return randomize_bn(timm.create_model(f'iformer_{variant}', **timm_kwargs), seed).eval()


def timm_twin(source: Union[torch.nn.Module, Mapping, str, Path], arch: str,
              num_classes: int = 0, **timm_kwargs) -> torch.nn.Module:
    """timm's ``iformer_{arch}`` holding the weights of ``source``, in eval mode.

    ``source`` is one of our models (its state_dict goes through the published key format), a
    published state_dict / release-file dict, or the path of a release file. The weights reach
    timm through timm's own ``checkpoint_filter_fn`` and load strictly: every timm parameter
    must come from ``source`` (``num_classes=0``: no head, for backbone comparisons).
    """
    import timm
    from timm.models.iformer import checkpoint_filter_fn
    if isinstance(source, torch.nn.Module):
        published = ours_to_official(source.state_dict())
    elif isinstance(source, (str, Path)):
        published = torch.load(source, map_location='cpu', weights_only=True)
    else:
        published = source
    ref = timm.create_model(f'iformer_{arch}', num_classes=num_classes, **timm_kwargs)
    ref.load_state_dict(checkpoint_filter_fn(published, ref), strict=True)
    return ref.eval()


# ----------------------------------------------------------------------------------------------
# Running tools as users do
# ----------------------------------------------------------------------------------------------
def tool_env(threads: int = 1) -> Dict[str, str]:
    """Environment of a tool subprocess: this checkout importable, ``threads`` CPU threads,
    passive OpenMP waiting (spinning threads are ~10x slower on a shared 2-core machine), no GPU."""
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS=str(threads),
                MKL_NUM_THREADS=str(threads), OMP_WAIT_POLICY='PASSIVE', CUDA_VISIBLE_DEVICES='')


def run_tool(*args, cwd: Path = REPO, threads: int = 1, check: bool = True,
             timeout: float = 1800) -> subprocess.CompletedProcess:
    """``python ARGS`` as a user runs a tool (``'tools/train.py', CONFIG, ...``, paths relative
    to ``cwd``; or ``'-c', CODE``) in :func:`tool_env`, output captured.

    ``check``: a non-zero exit fails the test with the ends of stdout and stderr.
    """
    argv = [PY, *map(str, args)]
    proc = subprocess.run(argv, cwd=cwd, env=tool_env(threads), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{argv[1:]} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    return proc


def run_dist_tool(script: str, *args, timeout: float = 600) -> subprocess.CompletedProcess:
    """``bash tools/SCRIPT ARGS`` (dist_train.sh / dist_test.sh: torchrun, CPU processes) in
    :func:`tool_env` with a free port of its own (two test workers may run one each at once),
    output captured. On timeout the whole process group is killed: torchrun's ranks are not left
    behind waiting for each other."""
    env = dict(tool_env(1), PORT=str(free_port()), PYTHON=PY)
    argv = ['bash', f'tools/{script}', *map(str, args)]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


# ----------------------------------------------------------------------------------------------
# Weights by URL: a loopback HTTP server (nothing in the tests reaches the internet)
# ----------------------------------------------------------------------------------------------
class LoopbackServer:
    """HTTP on 127.0.0.1 (a free port) serving in-memory files; counts the GETs per path.

    ``add(name, data)`` serves ``data`` at ``/name``; ``truncate_at`` announces the full length
    but closes the connection after that many bytes (a cut-off transfer); ``pause_at`` sends
    that many bytes, then waits for ``resume.set()`` (a download caught mid-way);
    ``content_type`` e.g. ``'text/html'`` for an error page; ``headers`` are sent with the file
    (e.g. what the Hugging Face Hub answers). HEAD gets the headers of GET. Unknown paths get
    404. Use as a context manager.
    """

    def __init__(self):
        self.files: Dict[str, Tuple[bytes, str, Optional[int], Optional[int], Dict[str, str]]] = {}
        self.requests: collections.Counter = collections.Counter()
        self.resume = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _head(self) -> Optional[tuple]:
                name = self.path.lstrip('/')
                if name not in server.files:
                    self.send_error(404, 'Not Found')
                    return None
                data, kind, cut, pause, headers = server.files[name]
                self.send_response(200)
                self.send_header('Content-Type', kind)
                self.send_header('Content-Length', str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                return data, cut, pause

            def do_HEAD(self):  # noqa: N802  (http.server's name)
                self._head()

            def do_GET(self):  # noqa: N802
                server.requests[self.path.lstrip('/')] += 1
                found = self._head()
                if found is None:
                    return
                data, cut, pause = found
                if pause is not None:
                    self.wfile.write(data[:pause])
                    self.wfile.flush()
                    server.resume.wait(60)
                    data = data[pause:]
                self.wfile.write(data if cut is None else data[:cut])
                if cut is not None:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)

            def log_message(self, *args):  # keep test output clean
                pass

        self._httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def add(self, name: str, data: bytes, content_type: str = 'application/octet-stream',
            truncate_at: Optional[int] = None, pause_at: Optional[int] = None,
            headers: Optional[Dict[str, str]] = None) -> str:
        self.files[name] = (data, content_type, truncate_at, pause_at, dict(headers or {}))
        return self.url(name)

    def url(self, name: str) -> str:
        return f'http://127.0.0.1:{self.port}/{name}'

    def __enter__(self) -> 'LoopbackServer':
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.resume.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def free_port() -> int:
    """A loopback port nothing listens on now (the kernel's choice, so parallel tests differ)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def closed_port_url(name: str = 'iFormer_t.pth') -> str:
    """A loopback URL where nothing listens (connection refused: the offline case)."""
    return f'http://127.0.0.1:{free_port()}/{name}'


# ----------------------------------------------------------------------------------------------
# Classification: configs and release-like files
# ----------------------------------------------------------------------------------------------
CLS_CONFIGS = REPO / 'configs' / 'classification'

#: variant -> config file name (the nine published classifiers)
CONFIGS: Dict[str, str] = {
    't': 'iformer-t_8xb512_in1k.py',
    's': 'iformer-s_8xb512_in1k.py',
    'm': 'iformer-m_8xb512_in1k.py',
    'l': 'iformer-l_8xb512_in1k.py',
    'l2': 'iformer-l2_8xb512_in1k.py',
    'h': 'iformer-h_8xb128_in1k.py',
    'm_distilled': 'iformer-m-distilled_8xb512_in1k.py',
    'l_distilled': 'iformer-l-distilled_8xb512_in1k.py',
    'l2_distilled': 'iformer-l2-distilled_8xb512_in1k.py',
}

#: parameters of the published classifiers (spec table; timm's exact ports agree)
PARAMS = {'t': 2_886_456, 's': 6_563_368, 'm': 8_907_424, 'l': 14_779_808, 'l2': 24_518_984,
          'h': 99_596_632, 'm_distilled': 9_293_192, 'l_distilled': 15_165_576,
          'l2_distilled': 25_033_008}

#: number of keys in the published state_dicts (spec)
PUBLISHED_KEYS = {'t': 451, 's': 505, 'm': 547, 'l': 697, 'l2': 973, 'h': 1442,
                  'm_distilled': 554, 'l_distilled': 704, 'l2_distilled': 980}


@functools.lru_cache(maxsize=None)
def _parsed(variant: str) -> Config:
    return Config.fromfile(str(CLS_CONFIGS / CONFIGS[variant]))


def load_cls_config(variant: str) -> Config:
    """A fresh copy of the variant's config (parsed once per session)."""
    return copy.deepcopy(_parsed(variant))


def build_classifier(variant: str, model_cfg: Optional[dict] = None) -> torch.nn.Module:
    """The mmpretrain classifier of a config, built without data (``MODELS.build``).

    Built inside the mmpretrain scope: an earlier test may leave another toolbox's scope current.
    """
    from mmpretrain.registry import MODELS
    from iformer_mm.utils.scope import toolbox_scope
    with toolbox_scope('mmpretrain'):
        return MODELS.build(model_cfg if model_cfg is not None else load_cls_config(variant).model)


def release_args(variant: str) -> argparse.Namespace:
    """An ``args`` Namespace like the published training script's, with numpy scalars."""
    base = variant.replace('_distilled', '')
    return argparse.Namespace(
        model=f'iFormer_{base}', batch_size=512, epochs=np.int64(300), lr=np.float64(4e-3),
        weight_decay=np.float64(0.05), drop_path=np.float32(0.0), smoothing=0.1,
        distillation_type='hard' if 'distilled' in variant else 'none',
        teacher_model='regnety_160', input_size=224, output_dir='checkpoints/')


def write_release_file(model: torch.nn.Module, variant: str, path: Path,
                       with_ema: bool = False) -> Dict[str, torch.Tensor]:
    """Save ``model`` exactly like a published release file; return the published state_dict."""
    official = ours_to_official(model.state_dict())
    ckpt = {'model': official, 'optimizer': {}, 'epoch': 299, 'scaler': {},
            'args': release_args(variant)}
    if with_ema:
        ckpt['model_ema'] = {k: v + 1 if v.is_floating_point() else v for k, v in official.items()}
    torch.save(ckpt, path)
    return official


# ----------------------------------------------------------------------------------------------
# Dense prediction: configs, models and tiny batches
# ----------------------------------------------------------------------------------------------
DET_DIR = REPO / 'configs' / 'detection'
SEG_DIR = REPO / 'configs' / 'segmentation'
SWAP_DIR = REPO / 'configs' / 'swap_examples'
VARIANTS = ('t', 's', 'm', 'l', 'l2')
# published dims, written out here so that a wrong table in the package cannot hide a wrong config
DIMS = {'t': [32, 64, 128, 256], 's': [32, 64, 176, 320], 'm': [48, 96, 192, 384],
        'l': [48, 96, 256, 384], 'l2': [64, 128, 256, 512]}


def det_config(variant: str) -> Path:
    return DET_DIR / f'mask-rcnn_iformer-{variant}_fpn_1x_coco.py'


def seg_config(variant: str) -> Path:
    return SEG_DIR / f'fpn_iformer-{variant}_8xb4-40k_ade20k-512x512.py'


def load_dense_config(path: Path, backbone_init: Optional[dict] = None) -> Config:
    """Config with the backbone's checkpoint init replaced (no weights exist in tests)."""
    cfg = Config.fromfile(str(path))
    cfg.model.backbone.init_cfg = backbone_init
    return cfg


def build_model(cfg: Config) -> torch.nn.Module:
    """Build ``cfg.model`` in the config's scope, as the runner does on one CPU process."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = MODELS.build(copy.deepcopy(cfg.model))
    return revert_sync_batchnorm(model)


def det_batch(h: int = 128, w: int = 128, num_images: int = 1,
              seed: int = 0) -> Dict[str, list]:
    """uint8 images + DetDataSample with two boxes, labels and bitmap masks each."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(num_images):
        inputs.append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             scale_factor=(1., 1.), img_id=0))
        boxes = [(w * .1, h * .1, w * .5, h * .6), (w * .4, h * .3, w * .95, h * .9)]
        masks = torch.zeros(len(boxes), h, w, dtype=torch.uint8)
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            masks[i, int(y1):int(y2), int(x1):int(x2)] = 1
        gt = InstanceData()
        gt.bboxes = torch.tensor(boxes, dtype=torch.float32)
        gt.labels = torch.tensor([1, 3])
        gt.masks = BitmapMasks(masks.numpy(), h, w)
        sample.gt_instances = gt
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def seg_batch(h: int = 128, w: int = 128, num_classes: int = 150, num_images: int = 1,
              seed: int = 0) -> Dict[str, list]:
    """uint8 images + SegDataSample with a label map of three regions (and some ignore=255)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(num_images):
        inputs.append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        label = torch.zeros(1, h, w, dtype=torch.long)
        label[:, h // 4:, :w // 2] = 1 % num_classes
        label[:, :, w // 2:] = 2 % num_classes
        label[:, :2] = 255
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             pad_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def train_step(model: torch.nn.Module, optim_wrapper,
               data: dict) -> Tuple[dict, Dict[str, torch.Tensor]]:
    """One optimisation step (what ``model.train_step`` does), keeping the gradients to inspect.

    Returns the logged losses and ``{param name: grad}`` captured before the optimizer clears them.
    """
    model.train()
    data = model.data_preprocessor(data, True)
    losses = model(**data, mode='loss')
    loss, log_vars = model.parse_losses(losses)
    optim_wrapper.backward(loss)
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    optim_wrapper.step()
    optim_wrapper.zero_grad()
    return log_vars, grads


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------------------------
# Tiny configs for the tool tests (inherit the real iFormer-T and demo configs)
# ----------------------------------------------------------------------------------------------
def tiny_cls_config(folder: Path, data_root: Path, max_iters: int = 6, ckpt_interval: int = 2) -> Path:
    """iFormer-T classification on a generated ImageFolder, 32 px, deterministic data pipeline.

    Random augmentation, mixup and drop path are off so that a resumed run must reproduce an
    uninterrupted one exactly (mmengine does not checkpoint RNG state).
    """
    pipeline = "[dict(type='LoadImageFromFile'), dict(type='PackInputs')]"
    text = f"""
_base_ = ['{REPO}/configs/classification/iformer-t_8xb512_in1k.py']
from demo.shapes import SHAPE_CLASSES
model = dict(backbone=dict(drop_path_rate=0.), head=dict(num_classes=len(SHAPE_CLASSES), topk=(1, )),
             train_cfg=dict(_delete_=True))
data_preprocessor = dict(num_classes=len(SHAPE_CLASSES))
_data = dict(type='ImageNet', data_root='{data_root}', metainfo=dict(classes=SHAPE_CLASSES),
             pipeline={pipeline})
train_dataloader = dict(_delete_=True, batch_size=4, num_workers=0, persistent_workers=False,
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(split='train', **_data))
val_dataloader = dict(_delete_=True, batch_size=8, num_workers=0, persistent_workers=False,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(split='val', **_data))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={max_iters}, val_interval={max_iters})
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4)]
default_hooks = dict(checkpoint=dict(interval={ckpt_interval}, by_epoch=False, max_keep_ckpts=-1),
                     logger=dict(interval=1))
log_processor = dict(window_size=1, by_epoch=False)
randomness = dict(seed=0, deterministic=True)
"""
    path = folder / 'tiny_cls.py'
    path.write_text(text)
    return path


def tiny_det_config(folder: Path, data_root: Path, max_epochs: int = 2,
                    test_cfg: Optional[dict] = None) -> Path:
    """The detection demo config (Mask R-CNN + iFormer-T, shapes COCO) on a tiny generated set.

    Only data, schedule and logging change (and ``model.test_cfg`` entries if given): the demo's
    random flip, RoI sampling and per-epoch validation stay, so exact resume depends on the
    checkpointed random state.
    """
    text = f"""
_base_ = ['{REPO}/configs/detection/mask-rcnn_iformer-t_fpn_3e_shapes.py']
data_root = '{data_root}/'
model = dict(backbone=dict(init_cfg=None), test_cfg={test_cfg or {}!r})
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs={max_epochs}, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=-1), logger=dict(interval=1))
log_processor = dict(window_size=1)
"""
    path = folder / 'tiny_det.py'
    path.write_text(text)
    return path


def tiny_seg_config(folder: Path, data_root: Path, max_iters: int = 4) -> Path:
    """The segmentation demo config (Semantic FPN + iFormer-T, shapes ADE20K layout), tiny run.

    Only data root, batch size, schedule and logging change; no backbone weights.
    """
    text = f"""
_base_ = ['{REPO}/configs/segmentation/fpn_iformer-t_1xb8-800iter_shapes-128x128.py']
model = dict(backbone=dict(init_cfg=None))
train_dataloader = dict(batch_size=2, dataset=dict(data_root='{data_root}'))
val_dataloader = dict(dataset=dict(data_root='{data_root}'))
test_dataloader = val_dataloader
train_cfg = dict(max_iters={max_iters}, val_interval={max_iters})
param_scheduler = [dict(type='PolyLR', eta_min=1e-6, power=0.9, begin=0, end={max_iters}, by_epoch=False)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={max_iters}))
"""
    path = folder / 'tiny_seg.py'
    path.write_text(text)
    return path
