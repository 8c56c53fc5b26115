"""End to end with the toolboxes' OWN tools: mmdet's / mmseg's ``tools/train.py`` and
``tools/test.py`` (shipped inside the packages) train and evaluate our iFormer-T configs on small
generated COCO / ADE20K-layout datasets with the real evaluators (pycocotools bbox + segm AP, mIoU).

Small test configs are written next to the data (``tests/tiny_configs.py``); they inherit the
demo configs (themselves the real iFormer-T configs at 128 px on the shapes data) and override
only data root, schedule length, logging and the backbone init (no weights exist in tests). The trained checkpoint is also rewritten in the published
det / seg layout (published backbone key names) and must evaluate to the same metrics.
Each test takes 30-40 s on 2 shared CPU cores (4 training images, 2 validation images, three
tool runs), under the 60 s limit for the default suite.
"""
import json
from pathlib import Path

import mmengine
import torch

from iformer_mm.models.backbones.iformer_keys import ours_to_official
from demo.shapes import make_ade20k, make_coco

from .helpers import run_tool, tiny_det_config, tiny_seg_config

SITE = Path(__import__('mmdet').__file__).resolve().parents[1]
MMDET_TOOLS = SITE / 'mmdet' / '.mim' / 'tools'
MMSEG_TOOLS = SITE / 'mmseg' / '.mim' / 'tools'


def _run(tool: Path, *args: str, cwd: Path) -> str:
    proc = run_tool(tool, *args, cwd=cwd, threads=2)
    return proc.stdout + proc.stderr


def _last_metrics(work_dir: Path) -> dict:
    """Metrics the runner logged last.

    Train runs write ``<ts>/vis_data/<ts>.json``, test runs ``<ts>/<ts>.json``.
    """
    logs = sorted(p for p in work_dir.glob('2*/**/2*.json'))
    assert logs, f'no json log under {work_dir}'
    return json.loads(logs[-1].read_text().strip().splitlines()[-1])


def _metrics(record: dict, prefix: str = '') -> dict:
    skip = ('time', 'data_time', 'step')
    return {k: v for k, v in record.items() if k.startswith(prefix) and k not in skip}


def _to_published_layout(src: Path, dst: Path) -> None:
    """Rewrite an mm checkpoint as the published det / seg release files are: published
    backbone key names under ``backbone.``, everything else unchanged."""
    ckpt = torch.load(src, map_location='cpu', weights_only=True)
    state = ckpt['state_dict']
    backbone = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    out = {k: v for k, v in state.items() if not k.startswith('backbone.')}
    out.update({f'backbone.{k}': v for k, v in ours_to_official(backbone).items()})
    torch.save({'meta': {'epoch': ckpt['meta'].get('epoch')}, 'state_dict': out}, dst)


def test_mmdet_tools_train_and_test_mask_rcnn(tmp_path):
    root = tmp_path / 'coco'
    make_coco(root, num_train=4, num_val=2, image_size=128, seed=0)
    # score_thr 0 so that a 2-iteration model still hands detections to the COCO evaluator
    cfg = tiny_det_config(tmp_path, root, max_epochs=2,
                          test_cfg=dict(rcnn=dict(score_thr=0., max_per_img=50)))
    work = tmp_path / 'work'
    _run(MMDET_TOOLS / 'train.py', str(cfg), '--work-dir', str(work), cwd=tmp_path)
    ckpt = work / 'epoch_2.pth'
    assert ckpt.is_file()
    trained = _last_metrics(work)
    for key in ('coco/bbox_mAP', 'coco/segm_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP_50'):
        assert key in trained and -1 <= trained[key] <= 1, (key, trained)

    test_work = tmp_path / 'test'
    native_out = tmp_path / 'native.pkl'
    _run(MMDET_TOOLS / 'test.py', str(cfg), str(ckpt), '--work-dir', str(test_work),
         '--out', str(native_out), cwd=tmp_path)
    tested = _metrics(_last_metrics(test_work), 'coco/')
    assert tested == _metrics(trained, 'coco/')

    published = tmp_path / 'mask_rcnn_iformer_t_published.pth'
    _to_published_layout(ckpt, published)
    pub_out = tmp_path / 'published.pkl'
    _run(MMDET_TOOLS / 'test.py', str(cfg), str(published),
         '--work-dir', str(tmp_path / 'test_pub'),
         '--out', str(pub_out), cwd=tmp_path)
    assert _metrics(_last_metrics(tmp_path / 'test_pub'), 'coco/') == tested
    # identical detections, not only identical (possibly all-zero) AP
    native, from_published = mmengine.load(str(native_out)), mmengine.load(str(pub_out))
    assert len(native) == len(from_published) == 2
    assert sum(len(r['pred_instances']['scores']) for r in native) > 0
    for a, b in zip(native, from_published):
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(torch.as_tensor(a['pred_instances'][key]),
                               torch.as_tensor(b['pred_instances'][key])), key


def test_mmseg_tools_train_and_test_semantic_fpn(tmp_path):
    root = tmp_path / 'ade'
    summary = make_ade20k(root, num_train=4, num_val=2, image_size=128, seed=0)
    cfg = tiny_seg_config(tmp_path, summary['data_root'], max_iters=4)
    work = tmp_path / 'work'
    _run(MMSEG_TOOLS / 'train.py', str(cfg), '--work-dir', str(work), cwd=tmp_path)
    ckpt = work / 'iter_4.pth'
    assert ckpt.is_file()
    trained = _last_metrics(work)
    assert 0 <= trained['mIoU'] <= 100 and 'aAcc' in trained, trained

    test_work = tmp_path / 'test'
    _run(MMSEG_TOOLS / 'test.py', str(cfg), str(ckpt), '--work-dir', str(test_work),
         '--out', str(tmp_path / 'native_png'), cwd=tmp_path)
    tested = _metrics(_last_metrics(test_work))
    assert (tested['mIoU'], tested['aAcc']) == (trained['mIoU'], trained['aAcc'])

    published = tmp_path / 'fpn_iformer_t_published.pth'
    _to_published_layout(ckpt, published)
    _run(MMSEG_TOOLS / 'test.py', str(cfg), str(published),
         '--work-dir', str(tmp_path / 'test_pub'),
         '--out', str(tmp_path / 'published_png'), cwd=tmp_path)
    assert _metrics(_last_metrics(tmp_path / 'test_pub')) == tested
    # identical label maps, file by file
    native = sorted((tmp_path / 'native_png').glob('*.png'))
    assert len(native) == 2
    for path in native:
        assert path.read_bytes() == (tmp_path / 'published_png' / path.name).read_bytes(), path.name
