"""Our tools/train.py, tools/test.py and tools/dist_train.sh, end to end on generated data."""
import glob
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from iformer_mm.models.backbones.iformer_keys import ours_to_official
from demo.shapes import make_classification, make_coco

from .helpers import PY, REPO, run_dist_tool, run_tool, tiny_cls_config, tiny_det_config, tool_env

ENV = tool_env(threads=1)


def logged(work_dir: Path) -> dict:
    """iteration -> (loss, lr) from every run's scalars.json in a work dir (later runs win)."""
    out = {}
    for path in sorted(glob.glob(str(work_dir / '*' / 'vis_data' / 'scalars.json'))):
        for line in Path(path).read_text().splitlines():
            row = json.loads(line)
            if 'loss' in row:
                out[row['iter']] = (row['loss'], row['lr'])
    return out


@pytest.fixture(scope='module')
def cls_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny')
    make_classification(root / 'data', num_train_per_class=6, num_val_per_class=4, image_size=32, seed=0)
    return root, tiny_cls_config(root, root / 'data')


def test_import_needs_neither_mmdet_nor_mmseg():
    code = (
        'import sys, importlib.abc\n'
        'class Block(importlib.abc.MetaPathFinder):\n'
        '    def find_spec(self, name, path, target=None):\n'
        '        if name.split(".")[0] in ("mmdet", "mmseg"):\n'
        '            raise ImportError("blocked " + name)\n'
        'sys.meta_path.insert(0, Block())\n'
        'import iformer_mm\n'
        'from mmengine.registry import MODELS\n'
        'm = MODELS.build(dict(type="IFormer", arch="t"))\n'
        'assert "mmdet" not in sys.modules and "mmseg" not in sys.modules\n'
        'print("ok", type(m).__name__)\n')
    assert run_tool('-c', code).stdout.strip() == 'ok IFormer'


def _kill_after_first_checkpoint(cfg: Path, work: Path) -> int:
    """Start tools/train.py, SIGKILL it once a checkpoint exists; the iteration it resumes from."""
    proc = subprocess.Popen([PY, 'tools/train.py', str(cfg), '--work-dir', str(work)], cwd=REPO,
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while not (work / 'last_checkpoint').exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    last = Path((work / 'last_checkpoint').read_text().strip())
    return torch.load(last, map_location='cpu')['meta']['iter']


def test_killed_run_resumes_exactly_then_test(cls_setup, tmp_path):
    root, cfg = cls_setup
    full, killed = tmp_path / 'full', tmp_path / 'killed'
    run_tool('tools/train.py', cfg, '--work-dir', full)
    reference = logged(full)
    assert sorted(reference) == [1, 2, 3, 4, 5, 6]

    last = _kill_after_first_checkpoint(cfg, killed)
    assert not (killed / 'iter_6.pth').exists(), 'run finished before it could be killed'

    run_tool('tools/train.py', cfg, '--work-dir', killed, '--resume')
    resumed = logged(killed)
    for it in range(last + 1, 7):
        assert resumed[it][0] == pytest.approx(reference[it][0], rel=1e-5, abs=1e-6), it
        assert resumed[it][1] == pytest.approx(reference[it][1], rel=1e-9), it
    final = torch.load(killed / 'iter_6.pth', map_location='cpu')
    assert final['meta']['iter'] == 6
    for k, v in torch.load(full / 'iter_6.pth', map_location='cpu')['state_dict'].items():
        assert torch.allclose(v.float(), final['state_dict'][k].float(), atol=1e-5), k

    # tools/test.py: the mm checkpoint, and the same weights as a published release file
    mm_out = run_tool('tools/test.py', cfg, killed / 'iter_6.pth', '--work-dir', tmp_path / 't1')
    published = tmp_path / 'iFormer_t.pth'
    torch.save({'model': ours_to_official(final['state_dict']), 'epoch': 299}, published)
    pub_out = run_tool('tools/test.py', cfg, published, '--work-dir', tmp_path / 't2')

    def top1(text):
        return float(text.split('accuracy/top1:')[1].split()[0])
    assert top1(mm_out.stdout + mm_out.stderr) == top1(pub_out.stdout + pub_out.stderr)


@pytest.mark.slow  # ~100 s; the classifier's exact resume stays in the default suite
def test_killed_detection_run_resumes_exactly(tmp_path):
    """The detection demo config (random flip, random RoI sampling, validation every epoch)."""
    make_coco(tmp_path / 'coco', num_train=8, num_val=2, image_size=128, seed=0)
    cfg = tiny_det_config(tmp_path, tmp_path / 'coco', max_epochs=2)
    full, killed = tmp_path / 'full', tmp_path / 'killed'
    run_tool('tools/train.py', cfg, '--work-dir', full)
    reference = logged(full)
    assert sorted(reference) == [1, 2, 3, 4]

    resumed_from = _kill_after_first_checkpoint(cfg, killed)
    assert resumed_from == 2 and not (killed / 'epoch_2.pth').exists()
    run_tool('tools/train.py', cfg, '--work-dir', killed, '--resume')
    resumed = logged(killed)
    for it in (3, 4):  # the epoch after the checkpoint: same losses, same lr
        assert resumed[it][0] == pytest.approx(reference[it][0], rel=1e-5), (it, resumed, reference)
        assert resumed[it][1] == pytest.approx(reference[it][1], rel=1e-9), it
    final = torch.load(killed / 'epoch_2.pth', map_location='cpu')
    expected = torch.load(full / 'epoch_2.pth', map_location='cpu')
    assert final['meta']['epoch'] == 2 and final['meta']['iter'] == 4
    for k, v in expected['state_dict'].items():
        assert torch.allclose(v.float(), final['state_dict'][k].float(), atol=1e-5), k


def test_tools_reject_bad_input(cls_setup, tmp_path, capsys):
    from iformer_mm.apis.launch import main
    _, cfg = cls_setup
    cases = [(('train', [str(tmp_path / 'nope.py')]), 'config file not found'),
             (('test', [str(cfg), str(tmp_path / 'missing.pth')]), 'checkpoint not found'),
             (('train', [str(cfg), '--amp', '--work-dir', str(tmp_path / 'w')]), '--amp needs a GPU'),
             (('train', [str(cfg), '--resume', str(tmp_path / 'gone.pth')]), '--resume checkpoint not found'),
             (('train', [str(cfg), '--cfg-options', f'train_dataloader.dataset.data_root={tmp_path}/nodata']),
              f'train_dataloader.dataset.data_root: {tmp_path}/nodata does not exist')]
    for (command, argv), message in cases:
        assert main(command, argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count('\n') == 1, err
    assert not (tmp_path / 'w').exists()


def test_dist_train_two_processes_on_cpu(cls_setup, tmp_path):
    root, cfg = cls_setup
    work = tmp_path / 'dist'
    proc = run_dist_tool('dist_train.sh', cfg, '2', '--work-dir', work, '--cfg-options',
                         'train_cfg.max_iters=4', 'train_cfg.val_interval=4')
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'gloo' in log or "'backend': 'gloo'" in log
    assert sorted(p.name for p in work.glob('iter_*.pth')) == ['iter_2.pth', 'iter_4.pth']
    assert 'Distributed training: True' in log
    # 20 val images, batch 8: two ranks take 10 each (2 iterations), one process takes 3
    assert 'Iter(val) [2/2]' in log
    dist_top1 = float(log.split('accuracy/top1:')[-1].split()[0])
    single = run_tool('tools/test.py', cfg, work / 'iter_4.pth', '--work-dir', tmp_path / 'single')
    single_log = single.stdout + single.stderr
    assert 'Iter(test) [3/3]' in single_log
    single_top1 = float(single_log.split('accuracy/top1:')[-1].split()[0])
    assert dist_top1 == pytest.approx(single_top1)  # ranks' predictions were gathered


@pytest.mark.parametrize('config', sorted(str(p.relative_to(REPO)) for p in REPO.glob('configs/*/*.py')))
def test_real_configs_name_their_missing_data(config, capsys):
    """Every shipped config points at a standard layout; without the data the error names it."""
    from iformer_mm.apis.launch import main
    if '_shapes' in config:
        pytest.skip('demo configs generate their own data')
    rc = main('train', [config, '--work-dir', '/tmp/iformer_mm_never_used'])
    err = capsys.readouterr().err
    assert rc == 2 and 'does not exist' in err and 'data/' in err, err
