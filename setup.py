"""iformer-mm: iFormer backbones for mmpretrain, mmdet and mmseg."""
import re
from pathlib import Path

from setuptools import find_packages, setup

_version = re.search(r"__version__ = '([^']+)'",
                     (Path(__file__).parent / 'iformer_mm' / 'version.py').read_text()).group(1)

setup(
    name='iformer-mm',
    version=_version,
    description='iFormer (ICLR 2025) backbones for OpenMMLab: mmpretrain, mmdet, mmseg',
    long_description=(Path(__file__).parent / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['iformer_mm', 'iformer_mm.*']),
    python_requires='>=3.9',
    install_requires=['torch>=2.0', 'mmengine>=0.10', 'timm>=1.0.31', 'numpy'],
    extras_require={
        'cls': ['mmpretrain>=1.2.0'],
        'det': ['mmdet>=3.3.0', 'mmcv>=2.1.0,<2.2.0'],
        'seg': ['mmsegmentation>=1.2.2', 'mmcv>=2.1.0,<2.2.0', 'ftfy', 'regex'],
        'deploy': ['coremltools>=9.0', 'onnx', 'onnxruntime'],
    },
    license='Apache-2.0',
)
