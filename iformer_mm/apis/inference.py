"""``tools/infer.py``: run a config's model on your own pictures, through the toolboxes' Inferencers.

    python tools/infer.py IMAGES_OR_FOLDERS... --config CFG --weights PATH_OR_URL [--out-dir DIR]
    python tools/infer.py IMAGES_OR_FOLDERS... --artifact EXPORTED_MODEL [--config CFG]

The task follows the config's ``default_scope``: mmpretrain -> ``ImageClassificationInferencer``,
mmdet -> ``DetInferencer``, mmseg -> ``MMSegInferencer``. For each image it prints one line of
predictions and writes the toolbox's visualisation as ``OUT_DIR/<image name>.png`` (atomically).
``--weights`` takes an mm checkpoint, a published release file or a timm file, by path, URL or
``hf-hub:`` name (fetched once into its cache). ``--artifact`` runs an exported model in its runtime instead
(:class:`~iformer_mm.deploy.runner.ArtifactRunner`) and draws it with the same visualiser. Each toolbox is built and run inside its own default scope
(:func:`~iformer_mm.utils.scope.toolbox_scope`), so :func:`infer` may serve several toolboxes in
one process. Bad input (missing or unreadable image, empty folder, unknown task, missing
weights) is one line on stderr and exit code 2, before any model is built.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np

from ..utils.configs import ConfigError, load_config, toolbox_of
from ..utils.scope import toolbox_scope

__all__ = ['InferError', 'Prediction', 'collect_images', 'config_dataset_meta', 'infer', 'main']

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')
DET_SCORE_THR = 0.3   # DetInferencer's default: detections below it are neither drawn nor listed


class InferError(ValueError):
    """Bad input to :func:`infer`; the message names it."""


class Prediction(NamedTuple):
    image: str           # input path
    summary: str         # one line of predictions
    output: str          # the visualisation PNG written
    result: dict         # the Inferencer's own result for this image


# ----------------------------------------------------------------------------------------------
# Input checks (before anything is built)
# ----------------------------------------------------------------------------------------------
def collect_images(paths: Sequence[str]) -> List[str]:
    """Image files from files and folders (a folder: its images, sorted; not recursive).

    Every file is decoded once, so an unreadable one is named before a model is built.
    """
    import mmcv
    images: List[str] = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, n) for n in os.listdir(path)
                           if n.lower().endswith(IMAGE_EXTENSIONS)
                           and os.path.isfile(os.path.join(path, n)))
            if not found:
                raise InferError(f'folder {path} has no images (expected {", ".join(IMAGE_EXTENSIONS)})')
            images += found
        elif os.path.isfile(path):
            images.append(path)
        else:
            raise InferError(f'image not found: {path}')
    for image in images:
        try:
            ok = mmcv.imread(image) is not None
        except Exception:  # noqa: BLE001  (decoders raise anything on junk)
            ok = False
        if not ok:
            raise InferError(f'cannot read {image} as an image (expected a picture file: '
                             f'{", ".join(IMAGE_EXTENSIONS)})')
    if not images:
        raise InferError('no images given')
    return images


def _output_names(images: Sequence[str], out_dir: str) -> List[str]:
    """``OUT_DIR/<stem>.png`` per image; repeated stems get ``_1``, ``_2``, ..."""
    used: Dict[str, int] = {}
    names = []
    for image in images:
        stem = os.path.splitext(os.path.basename(image))[0]
        count = used.get(stem, 0)
        used[stem] = count + 1
        names.append(os.path.join(out_dir, f'{stem}_{count}.png' if count else f'{stem}.png'))
    return names


def config_dataset_meta(cfg, scope: str) -> dict:
    """Class names (and palette) of the config's test set: its ``metainfo``, else its dataset
    type's ``METAINFO``; ``{}`` if it names none.

    Why: a checkpoint without ``dataset_meta`` (a published release file, a converted file)
    leaves each toolbox guessing (mmpretrain: the dataset type's classes, ignoring the config's
    ``metainfo``; mmdet: COCO; mmseg: Cityscapes). The model was trained with this config, so
    its names are the right ones.
    """
    import importlib
    datasets = importlib.import_module(f'{scope}.registry').DATASETS
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    meta = dict(dataset.get('metainfo') or {})
    if 'classes' not in meta and dataset.get('type'):
        try:
            meta = {**dict(getattr(datasets.get(dataset['type']), 'METAINFO', None) or {}), **meta}
        except KeyError:  # a dataset type this toolbox does not know
            pass
    return {k: meta[k] for k in ('classes', 'palette') if meta.get(k) is not None}


# ----------------------------------------------------------------------------------------------
# One line per image, the same for PyTorch and for an exported artifact
# ----------------------------------------------------------------------------------------------
def _name(classes, i: int) -> str:
    return str(classes[i]) if classes and 0 <= i < len(classes) else str(i)


def cls_summary(scores: np.ndarray, classes) -> str:
    """The three best classes with their probabilities."""
    return '; '.join(f'{_name(classes, int(i))} {scores[i]:.3f}' for i in np.argsort(-scores)[:3])


def det_summary(scores, labels, bboxes, classes) -> str:
    """How many objects score >= :data:`DET_SCORE_THR`, and the first five."""
    kept = [(float(s), int(l), b) for s, l, b in zip(scores, labels, bboxes) if s >= DET_SCORE_THR]
    parts = [f'{_name(classes, l)} {s:.2f} [{", ".join(f"{float(v):.0f}" for v in b)}]'
             for s, l, b in kept[:5]]
    return f'{len(kept)} objects (score >= {DET_SCORE_THR})' + (': ' + '; '.join(parts)
                                                                if parts else '')


def seg_summary(pred: np.ndarray, classes) -> str:
    """The five largest classes by pixel share."""
    labels, counts = np.unique(pred, return_counts=True)
    return 'pixels: ' + '; '.join(f'{_name(classes, int(labels[i]))} '
                                  f'{100 * counts[i] / pred.size:.1f}%'
                                  for i in np.argsort(-counts)[:5])


# ----------------------------------------------------------------------------------------------
# One adapter per toolbox: build the Inferencer, predict one image -> (summary, RGB picture)
# ----------------------------------------------------------------------------------------------
class _Classification:
    def __init__(self, cfg, weights: str, device: Optional[str]):
        from mmpretrain.apis import ImageClassificationInferencer
        self.inferencer = ImageClassificationInferencer(
            cfg, pretrained=weights, device=device,
            classes=config_dataset_meta(cfg, 'mmpretrain').get('classes'))

    def __call__(self, image: str):
        import mmcv
        from mmpretrain.utils import progress
        shown, progress.disable_progress_bar = progress.disable_progress_bar, True  # one image
        try:
            with tempfile.TemporaryDirectory() as tmp:  # mmpretrain only draws into a folder
                result = self.inferencer(image, show_dir=tmp)[0]
                picture = mmcv.imread(os.path.join(
                    tmp, os.path.splitext(os.path.basename(image))[0] + '.png'), channel_order='rgb')
        finally:
            progress.disable_progress_bar = shown
        summary = cls_summary(np.asarray(result['pred_scores']), self.inferencer.classes)
        return summary, picture, {k: v for k, v in result.items() if k != 'pred_scores'}


class _Detection:
    def __init__(self, cfg, weights: str, device: Optional[str]):
        from mmdet.apis import DetInferencer
        self.inferencer = DetInferencer(cfg, weights=weights, device=device, show_progress=False)
        meta = config_dataset_meta(cfg, 'mmdet')
        if meta:
            self.inferencer.model.dataset_meta.update(meta)
            self.inferencer.visualizer.dataset_meta = self.inferencer.model.dataset_meta

    def __call__(self, image: str):
        out = self.inferencer(image, return_vis=True, no_save_vis=True, no_save_pred=True,
                              pred_score_thr=DET_SCORE_THR)
        pred = out['predictions'][0]
        summary = det_summary(pred['scores'], pred['labels'], pred['bboxes'],
                              self.inferencer.model.dataset_meta.get('classes'))
        return summary, out['visualization'][0], pred


class _Segmentation:
    def __init__(self, cfg, weights: str, device: Optional[str]):
        from mmseg.apis import MMSegInferencer
        self.inferencer = MMSegInferencer(cfg, weights=weights, device=device)
        self.inferencer.show_progress = False
        meta = config_dataset_meta(cfg, 'mmseg')
        if 'classes' in meta:  # the visualiser needs as many colours as classes
            have = self.inferencer.model.dataset_meta
            if len(meta.get('palette') or ()) != len(meta['classes']):
                meta['palette'] = (have['palette'] if len(have.get('palette') or ()) == len(
                    meta['classes']) else _palette(len(meta['classes'])))
            self.inferencer.model.dataset_meta = meta

    def __call__(self, image: str):
        out = self.inferencer(image, return_vis=True)
        pred, picture = out['predictions'], out['visualization']
        if isinstance(pred, list):
            pred, picture = pred[0], picture[0]
        pred = np.asarray(pred)
        return (seg_summary(pred, self.inferencer.model.dataset_meta.get('classes')), picture,
                {'sem_seg': pred})


def _palette(n: int) -> List[List[int]]:
    """``n`` fixed, distinct-enough colours (the same every run)."""
    rng = np.random.RandomState(0)
    return rng.randint(0, 256, size=(n, 3)).tolist()


_ADAPTERS = {'mmpretrain': _Classification, 'mmdet': _Detection, 'mmseg': _Segmentation}


class _Artifact:
    """An exported model (``tools/deploy.py``) through the deploy runner, drawn by the config's
    own visualiser, summarised like the PyTorch adapters: the same picture from both."""

    SCOPES = {'classifier': 'mmpretrain', 'detector': 'mmdet', 'segmentor': 'mmseg'}

    def __init__(self, artifact: str, config: Optional[str], threads: Optional[int] = None):
        import time

        from mmengine.registry import VISUALIZERS

        from ..deploy.runner import ArtifactRunner
        self.runner = ArtifactRunner(artifact, config, threads)
        self.task = self.runner.task
        self.scope = self.SCOPES[self.task]
        meta = config_dataset_meta(self.runner.cfg, self.scope)
        self.classes = self.runner.classes or meta.get('classes')
        vis = dict(self.runner.cfg.visualizer, name=f'artifact-{time.time_ns()}',
                   vis_backends=None)
        self.visualizer = VISUALIZERS.build(vis)
        if self.classes:
            palette, n = self.runner.palette or meta.get('palette') or (), len(self.classes)
            if len(palette) < n or (self.task == 'segmentor' and len(palette) != n):
                palette = _palette(n)  # mmseg's visualiser needs exactly one colour a class
            # colours as tuples: mmengine reads a list as a list of colours
            self.visualizer.dataset_meta = {'classes': self.classes,
                                            'palette': [tuple(c) for c in palette]}

    def __call__(self, image: str):
        import mmcv
        sample = self.runner(image)
        rgb = mmcv.imread(image, channel_order='rgb')
        if self.task == 'classifier':
            summary = cls_summary(sample.pred_score.numpy(), self.classes)
            picture = self.visualizer.visualize_cls(rgb, sample, classes=self.classes)
        else:
            if self.task == 'detector':
                p = sample.pred_instances
                summary = det_summary(p.scores.numpy(), p.labels.numpy(), p.bboxes.numpy(),
                                      self.classes)
                self.visualizer.add_datasample('image', rgb, sample, draw_gt=False,
                                               pred_score_thr=DET_SCORE_THR)
            else:
                summary = seg_summary(sample.pred_sem_seg.data[0].numpy(), self.classes)
                self.visualizer.add_datasample('image', rgb, sample, draw_gt=False)
            picture = self.visualizer.get_image()
        return summary, picture, sample


# ----------------------------------------------------------------------------------------------
# The API and the command line
# ----------------------------------------------------------------------------------------------
def _write_png(path: str, rgb: np.ndarray) -> None:
    import mmcv
    from ..utils.fileio import atomic_path
    with atomic_path(path) as tmp:
        if not mmcv.imwrite(np.ascontiguousarray(rgb[..., ::-1]), tmp, auto_mkdir=False):
            raise OSError(f'could not write {path}')


def infer(images: Sequence[str], config: Optional[str] = None, weights: Optional[str] = None,
          out_dir: str = 'infer_out', device: Optional[str] = None,
          artifact: Optional[str] = None) -> List[Prediction]:
    """Predict every image (files or folders) with ``config`` + ``weights``, or with an exported
    ``artifact`` (its config from its report unless ``config`` is given); write the PNGs.

    Raises :class:`InferError` / :class:`~iformer_mm.checkpoint.CheckpointError` for bad input,
    before a model is built; nothing is written then.
    """
    from ..utils.fileio import prepare_out_dir, remove_created
    from ..checkpoint import is_remote
    if (artifact is None) == (weights is None):
        raise InferError('give either --weights (with --config) or --artifact (an exported '
                         'model written by tools/deploy.py), not ' +
                         ('both' if artifact else 'neither'))
    if artifact is None and config is None:
        raise InferError('--weights needs --config (the config the weights were trained with)')
    cfg = load_config(config) if config else None
    scope = toolbox_of(cfg, config) if cfg is not None else None
    files = collect_images(images)
    if weights is not None and not is_remote(weights) and not os.path.isfile(weights):
        raise InferError(f'--weights not found: {weights}')
    if artifact is not None:
        from ..deploy.artifact import read_artifact
        scope = _Artifact.SCOPES.get(read_artifact(artifact)[1].task, scope)
    created = prepare_out_dir(out_dir)
    outputs = _output_names(files, out_dir)
    results: List[Prediction] = []
    try:
        with toolbox_scope(scope or 'mmpretrain'):
            # the toolboxes read weights through mmengine, i.e. our loader (zoo.mm_loader)
            predict = (_Artifact(artifact, config) if artifact is not None else
                       _ADAPTERS[scope](cfg, weights, device))
            for image, output in zip(files, outputs):
                summary, picture, result = predict(image)
                _write_png(output, picture)
                results.append(Prediction(image, summary, output, result))
    except BaseException:
        if not results:
            remove_created(created)
        raise
    return results


def parser(prog: str = 'infer.py') -> argparse.ArgumentParser:
    from ..utils.cli import ToolParser
    p = ToolParser(prog=prog, 
        description='Run an iFormer classification / detection / segmentation config on images '
                    "with the toolboxes' Inferencers; print predictions, write PNGs.")
    p.add_argument('images', nargs='+', help='image files and/or folders of images')
    p.add_argument('--config', help='mmpretrain, mmdet or mmseg config file (with --artifact: '
                                    'default the one its deploy report names)')
    p.add_argument('--weights', help='checkpoint: mm file, published release file or timm file; '
                                     'a path, http(s) URL or hf-hub:ORG/REPO')
    p.add_argument('--artifact', help='an exported model (tools/deploy.py: .onnx, OpenVINO folder, '
                                      '.pte) instead of --weights; run in its runtime')
    p.add_argument('--out-dir', default='infer_out', help='folder for the PNGs (default infer_out)')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1, ... (default: cuda if available)')
    return p


def main(argv: Optional[Sequence[str]] = None, prog: str = 'infer.py') -> int:
    """CLI: one line per image on stdout; bad input is one line on stderr and exit code 2."""
    from ..checkpoint import CheckpointError
    from ..deploy.targets import DeployError
    from ..utils.cli import error_exit
    from ..utils.fileio import OutputError
    args = parser(prog).parse_args(argv)
    try:
        predictions = infer(args.images, args.config, args.weights, args.out_dir, args.device,
                            args.artifact)
    except (InferError, ConfigError, CheckpointError, OutputError, DeployError) as e:
        return error_exit(prog, e)
    for p in predictions:
        print(f'{p.image}: {p.summary} -> {p.output}')
    return 0
