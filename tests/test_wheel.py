"""What ``pip install`` ships: a wheel built from the repository holds the library and its
configs, none of the developer tooling, and works in a clean environment outside the checkout.

The clean environment is a new virtual environment that sees the stack's packages (a path to
this environment's site-packages, without its editable install of iformer-mm) and gets the
wheel installed into its own site-packages; it runs in a folder outside the checkout.
"""
import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

from .helpers import REPO, tool_env

#: folders of the repository that are developer tooling, never in the wheel
TOOLING = ('benchmarks', 'demo', 'tests', 'tools')


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('wheel')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
                    '-q', '-w', str(out), str(REPO)], check=True, capture_output=True,
                   env=tool_env())
    wheels = list(out.glob('iformer_mm-*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope='module')
def clean_python(wheel, tmp_path_factory) -> Path:
    """A venv outside the checkout with the wheel installed and the stack on its path."""
    env_dir = tmp_path_factory.mktemp('clean-env')
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(env_dir)], check=True)
    python = env_dir / 'bin' / 'python'
    site = Path(subprocess.run([str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()'
                                "['purelib'])"], check=True, capture_output=True,
                               text=True).stdout.strip())
    # the stack's packages, as a plain path: .pth files there (our editable install) are not run
    (site / 'stack.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target',
                    str(site), str(wheel)], check=True, capture_output=True)
    return python


def test_the_wheel_holds_the_library_and_its_configs_not_the_tooling(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split('/')[0] for n in names}
    assert {t for t in top if not t.endswith('.dist-info')} == {'iformer_mm'}, top
    assert not top & set(TOOLING), top
    modules = {n for n in names if n.endswith('.py') and not n.startswith('iformer_mm/.mim/')}
    library = {str(p.relative_to(REPO)) for p in (REPO / 'iformer_mm').rglob('*.py')}
    assert modules == library, sorted(modules ^ library)
    for gone in ('analysis', 'demo', 'datasets', 'benchmark', 'shapes', 'timing'):
        assert not [m for m in modules if gone in m], gone
    shipped = {n for n in names if n.startswith('iformer_mm/.mim/')}
    configs = {f'iformer_mm/.mim/{p.relative_to(REPO)}' for p in (REPO / 'configs').rglob('*')
               if p.is_file() and '__pycache__' not in p.parts}
    assert configs <= shipped and 'iformer_mm/.mim/model-index.yml' in shipped


def test_the_installed_wheel_works_outside_the_checkout(clean_python, tmp_path):
    """Model names, the toolboxes' init functions on the wheel's configs, inference on an image,
    and ``python -m iformer_mm.deploy`` for the classifier and the segmentor with their default
    (shipped) configs, all from the installed wheel."""
    import numpy as np
    from PIL import Image
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (96, 128, 3), np.uint8)).save(
        tmp_path / 'photo.png')
    script = textwrap.dedent(f'''
        import os, iformer_mm
        assert not iformer_mm.__file__.startswith({str(REPO)!r}), iformer_mm.__file__
        mim = os.path.join(os.path.dirname(iformer_mm.__file__), '.mim', 'configs')
        from mmpretrain import get_model, inference_model
        model = get_model('iformer-t_in1k')
        result = inference_model(model, 'photo.png')
        print('classified', result['pred_label'])
        from mmdet.apis import init_detector
        det = init_detector(os.path.join(mim, 'detection', 'mask-rcnn_iformer-t_fpn_1x_coco.py'),
                            device='cpu')
        print('detector', type(det).__name__, type(det.backbone).__name__)
        from mmseg.apis import init_model
        seg = init_model(os.path.join(mim, 'segmentation',
                                      'fpn_iformer-t_8xb4-40k_ade20k-512x512.py'), device='cpu')
        print('segmentor', type(seg).__name__, type(seg.backbone).__name__)
    ''')
    env = dict(tool_env(), PYTHONPATH='')
    run = dict(cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    proc = subprocess.run([str(clean_python), '-c', script], **run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'classified' in proc.stdout
    assert 'detector MaskRCNN IFormer' in proc.stdout and 'segmentor EncoderDecoder IFormer' in proc.stdout
    for task in ('classifier', 'segmentor'):
        proc = subprocess.run([str(clean_python), '-m', 'iformer_mm.deploy', '--model', 't',
                               '--task', task, '--target', 'onnxruntime', '--resolution', '128',
                               '--out-dir', 'out'], **run)
        assert proc.returncode == 0, proc.stderr[-3000:]
        config = 'iformer-t_8xb512_in1k.py' if task == 'classifier' else \
            'fpn_iformer-t_8xb4-40k_ade20k-512x512.py'
        assert 'vs PyTorch' in proc.stdout, proc.stdout
        report = next((tmp_path / 'out').glob(f'iformer_t_{task}*.json')).read_text()
        assert os.path.join('.mim', 'configs') in report and config in report, report[:500]
    bad = subprocess.run([str(clean_python), '-m', 'iformer_mm.deploy', '--model', 'q',
                          '--target', 'onnxruntime'], **run)
    assert bad.returncode == 2 and bad.stderr.count('\n') == 1, bad.stderr
    assert bad.stderr.startswith('python -m iformer_mm.deploy: error: ')
