"""Parameters and multiply-accumulates (MACs) of every iFormer variant, and of any image model.

Conventions (those of the published figures, see docs/architecture.md):

* params: the trainable classifier (backbone + BN/Linear head, 1000 classes), *unfused*;
* GMACs: the *fused* classifier (BN folded, RepCPE merged, q/k/v one conv), one multiply-add = 1
  MAC, convolutions, linear layers and both attention matmuls counted (``FlopCounterMode`` counts
  2 FLOPs per MAC; we halve), softmax / activations / adds not counted (as fvcore).

The forward runs on the ``meta`` device: shapes only, no arithmetic, so even H at 512 is fast.
Other networks (the peers an accuracy-latency comparison puts beside iFormer) are counted by the
same :func:`count_macs` in their own deployed form, so every model of a table is counted alike.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch.utils.flop_counter import FlopCounterMode

from .models.backbones.iformer import IFormer
from .models.backbones.iformer_arch import ARCH_SETTINGS, parse_model_name
from .models.plain_classifier import IFormerClassifier

VARIANTS: Tuple[str, ...] = tuple(ARCH_SETTINGS)
# What the published code computes at 224 (docs/architecture.md): params (M), GMACs.
REFERENCE_224: Dict[str, Tuple[float, float]] = {
    't': (2.886, 0.531), 's': (6.563, 1.092), 'm': (8.907, 1.640),
    'l': (14.780, 2.827), 'l2': (24.519, 4.531), 'h': (99.597, 15.530)}
# What the published README claims, where it differs from the code.
README_GMACS = {'l': 2.63}


def count_params(model: torch.nn.Module) -> int:
    """Trainable parameters (call on the unfused model)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def switch_to_deploy(model: torch.nn.Module) -> torch.nn.Module:
    """Our fusion, as a function of the model (the default deployed form of :func:`count_macs`)."""
    model.switch_to_deploy()
    return model


def count_macs(model: torch.nn.Module, resolution: Tuple[int, int] = (224, 224),
               fuse: Optional[Callable[[torch.nn.Module], torch.nn.Module]] = switch_to_deploy
               ) -> Dict[str, int]:
    """MACs per op type of ``model`` in its deployed form, on one (1, 3, H, W) image.

    The model is moved to the ``meta`` device (it is consumed) and turned into its deployed form
    there by ``fuse``. ``fuse=None`` counts the model as given: for one already in its deployed
    form, e.g. a timm model after ``timm.utils.model.reparameterize_model``, which some models
    (FastViT) can only run on real tensors.
    """
    model = model.to('meta').eval()
    if fuse is not None:
        model = fuse(model)
    x = torch.empty(1, 3, *resolution, device='meta')
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return {str(op).replace('aten.', ''): int(flops) // 2
            for op, flops in counter.get_flop_counts()['Global'].items()}


def model_row(name: str, resolution: int = 224, task: str = 'classifier',
              window_size: int = 0, distilled: bool = False) -> Dict[str, object]:
    """One JSON row: ``{"model", "resolution", "params", "gmacs"}`` (params as a count; also
    ``params_m`` in millions, ``macs`` as an exact count and GMACs per op type).

    ``params`` always counts the classifier (1000 classes; ``distilled``: with the second,
    distillation head, whose fused form adds no MACs); ``task='backbone'`` counts the MACs of the
    four-output backbone instead (``window_size`` 16 = the published dense backbone) and adds
    ``backbone_params``.
    """
    arch, _ = parse_model_name(name)
    classifier = IFormerClassifier(arch, num_classes=1000, distilled=distilled)
    params = count_params(classifier)
    model = (classifier if task == 'classifier'
             else IFormer(arch, out_indices=(0, 1, 2, 3), window_size=window_size))
    backbone_params = count_params(model) if task != 'classifier' else None
    macs = count_macs(model, (resolution, resolution))
    row: Dict[str, object] = {'model': f'iformer_{arch}' + ('_distilled' if distilled else ''),
                              'resolution': resolution, 'params': params,
                              'gmacs': round(sum(macs.values()) / 1e9, 4),
                              'params_m': round(params / 1e6, 3), 'macs': sum(macs.values())}
    if task != 'classifier':
        row.update(task=task, window_size=window_size, backbone_params=backbone_params)
    elif arch in README_GMACS and resolution == 224:
        row['note'] = (f'the published README says {README_GMACS[arch]:.2f} GMACs; the published '
                       f"code computes {row['gmacs']:.2f} (measured here)")
    row['gmacs_by_op'] = {k: round(v / 1e9, 4) for k, v in macs.items()}
    return row


def format_table(rows: List[Dict[str, object]]) -> str:
    """Human-readable table with the published figures and notes where they differ."""
    lines = [f"{'model':<12}{'res':>5}{'params (M)':>12}{'GMACs':>9}{'code ref':>10}  note"]
    for row in rows:
        arch = str(row['model'])[len('iformer_'):].replace('_distilled', '')
        ref = REFERENCE_224.get(arch) if row['resolution'] == 224 else None
        note = ''
        if arch in README_GMACS and row['resolution'] == 224:
            note = (f"published README says {README_GMACS[arch]:.2f} GMACs; the published code "
                    f"computes {row['gmacs']:.2f}")
        lines.append(f"{row['model']:<12}{row['resolution']:>5}{row['params'] / 1e6:>12.3f}"
                     f"{row['gmacs']:>9.3f}{(f'{ref[1]:.3f}' if ref else '-'):>10}  "
                     f'{note}'.rstrip())
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None, prog: str = 'flops.py') -> int:
    """``tools/flops.py``: the table (or ``--json`` rows) of the chosen variants."""
    import json

    from .models.backbones.iformer_arch import parse_resolution, valid_model_names
    from .utils.cli import ToolParser, error_exit
    p = ToolParser(prog=prog, description='Params (unfused classifier, 1000 classes) and GMACs '
                                          '(fused, attention matmuls counted) of iFormer.')
    p.add_argument('--models', nargs='+', default=list(VARIANTS),
                   help=f'variants (default: all): {valid_model_names()}')
    p.add_argument('--resolution', default='224', help='square input (default 224)')
    p.add_argument('--task', choices=('classifier', 'backbone'), default='classifier',
                   help='count the classifier (default) or the four-output backbone')
    p.add_argument('--window-size', type=int, default=0,
                   help='backbone only: stage-2 attention window (16 = published dense backbone)')
    p.add_argument('--distilled', action='store_true',
                   help='count the distilled classifier (second head; the fused MACs are the same)')
    p.add_argument('--json', action='store_true', help='print JSON rows instead of a table')
    args = p.parse_args(argv)
    try:
        height, width = parse_resolution(args.resolution)
        if height != width:
            raise ValueError(f'--resolution {args.resolution}: a square size is counted, e.g. 224')
        rows = [model_row(m, height, args.task, args.window_size, args.distilled)
                for m in args.models]
    except ValueError as e:
        return error_exit(prog, e)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows))
        print('params: trainable, unfused classifier with a 1000-class head; GMACs: fused model, '
              '1 multiply-add = 1 MAC, conv + linear + attention matmuls (softmax/activations '
              'not counted).')
    return 0
