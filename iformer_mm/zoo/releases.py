"""What the iFormer authors published (release v0.9): weight files, their URLs and Hugging Face Hub
names, the paper's numbers.

One table, read by the metafile generator (:mod:`.metafiles`), the configs' tests and the docs,
so a model name, its config, its weights and its published metric cannot disagree. timm
re-published the same weights on the Hub in its own layout (``hf-hub:timm/iformer_m.in1k``, its
pretrained tag ``iformer_m.in1k``); every loader here takes either name
(:mod:`iformer_mm.checkpoint.hub`). Every number here is the paper's / official repository's (ICLR 2025, arXiv 2501.15369); none was re-trained
in this project. Dense models: the v0.9 release files are the ImageNet classifiers the dense
configs start from; iformer-mm publishes no Mask R-CNN or Semantic FPN checkpoint.
"""
from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple

RELEASE = 'v0.9'
RELEASE_URL = f'https://github.com/ChuanyangZheng/iFormer/releases/download/{RELEASE}/'
CODE_URL = 'https://github.com/ChuanyangZheng/iFormer'
PAPER = {'Title': 'iFormer: Integrating ConvNet and Transformer for Mobile Application',
         'URL': 'https://arxiv.org/abs/2501.15369'}

#: variant -> release file names (the L2 release is distilled only)
RELEASE_FILES: Dict[str, Tuple[str, ...]] = {
    't': ('iFormer_t.pth',),
    's': ('iFormer_s.pth',),
    'm': ('iFormer_m.pth', 'iFormer_m_distill.pth'),
    'l': ('iFormer_l.pth', 'iFormer_l_distill.pth'),
    'l2': ('iFormer_l2_distill.pth',),
    'h': ('iFormer_h.pth',),
}


#: release file -> the Hub repository where timm re-published it in its layout (its pretrained tag)
HUB_NAMES: Dict[str, str] = {
    'iFormer_t.pth': 'hf-hub:timm/iformer_t.in1k',
    'iFormer_s.pth': 'hf-hub:timm/iformer_s.in1k',
    'iFormer_m.pth': 'hf-hub:timm/iformer_m.in1k',
    'iFormer_m_distill.pth': 'hf-hub:timm/iformer_m_distilled.in1k',
    'iFormer_l.pth': 'hf-hub:timm/iformer_l.in1k',
    'iFormer_l_distill.pth': 'hf-hub:timm/iformer_l_distilled.in1k',
    'iFormer_l2_distill.pth': 'hf-hub:timm/iformer_l2_distilled.in1k',
    'iFormer_h.pth': 'hf-hub:timm/iformer_h.in1k',
}


def release_url(file_name: str) -> str:
    """The download URL of a release file, e.g. ``release_url('iFormer_m.pth')``."""
    if not any(file_name in files for files in RELEASE_FILES.values()):
        raise ValueError(f'{file_name!r} is not an iFormer {RELEASE} release file; expected one of '
                         + ', '.join(f for files in RELEASE_FILES.values() for f in files))
    return RELEASE_URL + file_name


def hub_name(file_name: str) -> str:
    """The Hub name of a release file, e.g. ``hub_name('iFormer_m.pth')`` ->
    ``'hf-hub:timm/iformer_m.in1k'``."""
    release_url(file_name)  # the same check and message for unknown names
    return HUB_NAMES[file_name]


def best_backbone_file(variant: str) -> str:
    """The release file the dense configs start from: the distilled one where it exists."""
    files = RELEASE_FILES[variant]
    return files[-1]


class Classifier(NamedTuple):
    """One published ImageNet-1k classifier."""
    name: str                 # OpenMMLab-style model name (mmpretrain.get_model)
    variant: str
    distilled: bool
    config: str               # relative to the repository root
    weights: str              # release file name
    top1: float               # published ImageNet-1k top-1 (%)
    epochs: int
    batch_size: int

    @property
    def hub_name(self) -> str:
        """The same weights on the Hugging Face Hub, in timm's layout."""
        return hub_name(self.weights)


def _cls(variant: str, distilled: bool, top1: float, epochs: int = 300,
         batch_size: int = 4096) -> Classifier:
    tag = f'iformer-{variant}' + ('-distilled' if distilled else '')
    schedule = '8xb128' if variant == 'h' else '8xb512'
    return Classifier(
        name=f'{tag}_in1k', variant=variant, distilled=distilled,
        config=f'configs/classification/{tag}_{schedule}_in1k.py',
        weights=f'iFormer_{variant}' + ('_distill' if distilled else '') + '.pth',
        top1=top1, epochs=epochs, batch_size=batch_size)


CLASSIFIERS: Tuple[Classifier, ...] = (
    _cls('t', False, 74.1),
    _cls('s', False, 78.8),
    _cls('m', False, 80.4),
    _cls('m', True, 81.1),
    _cls('l', False, 81.9),
    _cls('l', True, 82.7),
    _cls('l2', True, 83.9, epochs=450),
    _cls('h', False, 84.8, batch_size=1024),
)


class DenseModel(NamedTuple):
    """A published dense recipe (backbone initialised from a release file)."""
    name: str
    task: str                 # 'detection' or 'segmentation'
    variant: str
    config: str
    backbone_weights: str     # release file the backbone starts from
    metrics: Optional[Dict[str, float]]  # published numbers; None: none were published

    @property
    def backbone_hub_name(self) -> str:
        """The backbone's weights on the Hugging Face Hub, in timm's layout."""
        return hub_name(self.backbone_weights)


DENSE_VARIANTS = ('t', 's', 'm', 'l', 'l2')
#: task -> (config name pattern, published metrics per variant; other variants: none published)
_DENSE_RECIPES = {
    'detection': ('mask-rcnn_iformer-{}_fpn_1x_coco',
                  {'m': {'box AP': 40.8, 'mask AP': 37.9}, 'l': {'box AP': 42.2, 'mask AP': 39.1},
                   'l2': {'box AP': 44.6, 'mask AP': 41.1}}),
    'segmentation': ('fpn_iformer-{}_8xb4-40k_ade20k-512x512',
                     {'m': {'mIoU': 42.4}, 'l': {'mIoU': 44.5}, 'l2': {'mIoU': 46.2}}),
}


def _dense(task: str, variant: str) -> DenseModel:
    pattern, published = _DENSE_RECIPES[task]
    name = pattern.format(variant)
    return DenseModel(name=name, task=task, variant=variant, config=f'configs/{task}/{name}.py',
                      backbone_weights=best_backbone_file(variant), metrics=published.get(variant))


DETECTORS: Tuple[DenseModel, ...] = tuple(_dense('detection', v) for v in DENSE_VARIANTS)
SEGMENTORS: Tuple[DenseModel, ...] = tuple(_dense('segmentation', v) for v in DENSE_VARIANTS)
