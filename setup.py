"""iformer-mm: iFormer backbones for mmpretrain, mmdet and mmseg."""
import re
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
_version = re.search(r"__version__ = '([^']+)'",
                     (ROOT / 'iformer_mm' / 'version.py').read_text()).group(1)

# Shipped inside the package as iformer_mm/.mim/, where OpenMMLab packages keep theirs: `mim search`
# and mmpretrain's ModelHub (iformer_mm.zoo.model_hub) read the model index and configs there.
MIM_FILES = ('model-index.yml', 'configs')


class BuildWithModelIndex(build_py):
    """build_py that also copies model-index.yml and configs/ into iformer_mm/.mim/."""

    def run(self):
        super().run()
        mim = Path(self.build_lib) / 'iformer_mm' / '.mim'
        for name in MIM_FILES:
            src, dst = ROOT / name, mim / name
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            elif dst.exists() or dst.is_symlink():
                dst.unlink()
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
            else:
                shutil.copy2(src, dst)


setup(
    name='iformer-mm',
    version=_version,
    description='iFormer (ICLR 2025) backbones for OpenMMLab: mmpretrain, mmdet, mmseg',
    long_description=(ROOT / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['iformer_mm', 'iformer_mm.*']),
    cmdclass={'build_py': BuildWithModelIndex},
    python_requires='>=3.9',
    # huggingface_hub and safetensors (hf-hub: names, .safetensors files) also come with timm
    install_requires=['torch>=2.0', 'mmengine>=0.10', 'timm>=1.0.31', 'numpy', 'huggingface_hub',
                      'safetensors'],
    extras_require={
        'cls': ['mmpretrain>=1.2.0'],
        'det': ['mmdet>=3.3.0', 'mmcv>=2.1.0,<2.2.0'],
        'seg': ['mmsegmentation>=1.2.2', 'mmcv>=2.1.0,<2.2.0', 'ftfy', 'regex'],
        'deploy': ['coremltools>=9.0', 'onnx', 'onnxruntime', 'openvino', 'nncf', 'executorch',
                   'torchao'],
        'mim': ['openmim'],
    },
    license='Apache-2.0',
)
