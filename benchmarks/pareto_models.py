"""The models of the accuracy-latency comparison and their published ImageNet-1k top-1.

One table, so a name, its timm model, its accuracy and the accuracy's source cannot disagree.
Where the numbers come from:

* iFormer: the paper / official release (:data:`iformer_mm.zoo.releases.CLASSIFIERS`, read here,
  not retyped), and the paper's iPhone 13 latencies (docs/architecture.md);
* the peers: timm's own ImageNet-1k validation of the weights it hosts
  (``results/results-imagenet.csv`` of pytorch-image-models, :data:`TIMM_RESULTS`), one source
  evaluated one way for every family, at 224 wherever timm evaluated the weights at 224. FastViT's
  weights are evaluated at 256 only (their authors' size): its rows say so and are slightly
  flattered at the 224 at which every classifier is timed.

``top1`` follows the iFormer paper's convention: the network trained without distillation where
its authors published such weights, else (RepViT, EfficientFormerV2, which publish distilled
weights only) the distilled ones, marked. ``best`` is the best top-1 of the same network
published with any ImageNet-1k-only recipe (distillation, a longer schedule), where it is higher:
iFormer-M and -L have distilled releases too, and the distilled head fuses into one Linear, so the
latency is the same network's. The benchmark computes the front for both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from iformer_mm.zoo.releases import CLASSIFIERS

TIMM_RESULTS = ('https://github.com/huggingface/pytorch-image-models/blob/'
                'aa4b5850c1543fa488abf260f18390eda46cf85d/results/results-imagenet.csv')
IFORMER_SOURCE = ('iFormer paper (ICLR 2025, arXiv 2501.15369) and official release v0.9, as in '
                  'iformer_mm/zoo/releases.py')
#: the paper's iPhone 13 latencies (Core ML, Xcode performance report; docs/architecture.md):
#: classifiers at 224, and the dense backbones at 512x512. The paper's comparison table of the
#: peers' iPhone 13 latencies is not reproduced in this repository.
IPHONE13_MS = {'classifier': {'iformer_t': 0.60, 'iformer_s': 0.85, 'iformer_m': 1.10,
                              'iformer_l': 1.60},
               'backbone': {'iformer_m': 4.00, 'iformer_l': 6.60}}
#: every ratio of the comparison is taken against this model
REFERENCE = 'iformer_m'


@dataclass(frozen=True)
class Contender:
    """One model: what to build, its published accuracy and where that comes from."""
    key: str                   # 'iformer_m', or the timm model name
    label: str                 # as the tables and plots print it
    family: str
    top1: float                # ImageNet-1k top-1 (%), see the module docstring
    top1_resolution: int       # the input size the top-1 was evaluated at
    weights: str               # the trained weights the top-1 belongs to
    distilled: bool = False    # top1 is of weights trained with knowledge distillation
    best: Optional[Tuple[float, str]] = None  # (higher top-1, its weights), same network
    dense: bool = False        # also measured as a 512x512 dense backbone (four feature maps)

    @property
    def is_iformer(self) -> bool:
        return self.family == 'iFormer'

    @property
    def source(self) -> str:
        return IFORMER_SOURCE if self.is_iformer else TIMM_RESULTS

    @property
    def best_top1(self) -> float:
        return self.best[0] if self.best else self.top1


def _iformer(variant: str, dense: bool) -> Contender:
    plain = next(c for c in CLASSIFIERS if c.variant == variant and not c.distilled)
    distilled = next((c for c in CLASSIFIERS if c.variant == variant and c.distilled), None)
    return Contender(f'iformer_{variant}', f'iFormer-{variant.upper()}', 'iFormer', plain.top1,
                     224, plain.weights, dense=dense,
                     best=(distilled.top1, distilled.weights) if distilled else None)


def _timm(key: str, label: str, family: str, top1: float, weights: str, resolution: int = 224,
          distilled: bool = False, best: Optional[Tuple[float, str]] = None,
          dense: bool = False) -> Contender:
    return Contender(key, label, family, top1, resolution, f'{key}.{weights}', distilled,
                     None if best is None else (best[0], f'{key}.{best[1]}'), dense)


#: the comparison, smallest to largest within each family; ``dense``: the 512x512 set (the
#: published dense iFormers and the peers of their size)
CONTENDERS: Tuple[Contender, ...] = (
    _iformer('t', False), _iformer('s', False), _iformer('m', True), _iformer('l', True),
    _timm('mobilenetv4_conv_small', 'MNv4-Conv-S', 'MobileNetV4', 73.756, 'e2400_r224_in1k'),
    _timm('mobilenetv4_conv_medium', 'MNv4-Conv-M', 'MobileNetV4', 79.092, 'e500_r224_in1k',
          dense=True),
    _timm('mobilenetv4_hybrid_medium', 'MNv4-Hybrid-M', 'MobileNetV4', 80.432, 'e500_r224_in1k',
          dense=True),
    _timm('repvit_m0_9', 'RepViT-M0.9', 'RepViT', 78.652, 'dist_300e_in1k', distilled=True,
          best=(79.058, 'dist_450e_in1k')),
    _timm('repvit_m1_1', 'RepViT-M1.1', 'RepViT', 80.826, 'dist_300e_in1k', distilled=True,
          best=(81.314, 'dist_450e_in1k'), dense=True),
    _timm('repvit_m1_5', 'RepViT-M1.5', 'RepViT', 82.382, 'dist_300e_in1k', distilled=True,
          best=(82.520, 'dist_450e_in1k'), dense=True),
    _timm('fastvit_t8', 'FastViT-T8', 'FastViT', 76.184, 'apple_in1k', 256,
          best=(77.170, 'apple_dist_in1k')),
    _timm('fastvit_t12', 'FastViT-T12', 'FastViT', 79.276, 'apple_in1k', 256,
          best=(80.364, 'apple_dist_in1k')),
    _timm('fastvit_sa12', 'FastViT-SA12', 'FastViT', 80.846, 'apple_in1k', 256,
          best=(81.838, 'apple_dist_in1k'), dense=True),
    _timm('efficientformerv2_s0', 'EfficientFormerV2-S0', 'EfficientFormerV2', 76.102,
          'snap_dist_in1k', distilled=True),
    _timm('efficientformerv2_s1', 'EfficientFormerV2-S1', 'EfficientFormerV2', 79.684,
          'snap_dist_in1k', distilled=True),
    _timm('efficientformerv2_s2', 'EfficientFormerV2-S2', 'EfficientFormerV2', 82.156,
          'snap_dist_in1k', distilled=True, dense=True),
    _timm('efficientvit_b1', 'EfficientViT-B1', 'EfficientViT (MIT)', 79.254, 'r224_in1k',
          dense=True),
    _timm('starnet_s1', 'StarNet-S1', 'StarNet', 73.532, 'in1k'),
    _timm('starnet_s2', 'StarNet-S2', 'StarNet', 74.666, 'in1k'),
    _timm('starnet_s3', 'StarNet-S3', 'StarNet', 77.378, 'in1k'),
    _timm('starnet_s4', 'StarNet-S4', 'StarNet', 78.824, 'in1k', dense=True),
)
BY_KEY: Dict[str, Contender] = {c.key: c for c in CONTENDERS}


def contender(key: str) -> Contender:
    """The table's row for ``key`` (a timm name or ``iformer_<variant>``), or ValueError."""
    if key not in BY_KEY:
        raise ValueError(f'unknown model {key!r}; expected some of {list(BY_KEY)}')
    return BY_KEY[key]
