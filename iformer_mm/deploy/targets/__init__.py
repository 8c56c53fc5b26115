"""Deployment targets, one module per runtime (each imports its runtime only when used)."""
from typing import Dict

from .base import PRECISIONS, Calibration, DeployError, Session, Target
from .coreml import TARGET as COREML
from .executorch import TARGET as EXECUTORCH
from .onnxruntime import TARGET as ONNXRUNTIME
from .openvino import TARGET as OPENVINO

#: --target name -> target, in the order users pick them for a mobile backbone
TARGETS: Dict[str, Target] = {t.name: t for t in (EXECUTORCH, COREML, OPENVINO, ONNXRUNTIME)}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise DeployError(f'unknown target {name!r}; expected one of {list(TARGETS)} (tflite: see '
                          'docs/deployment.md for why LiteRT is not in the stack)')
    return TARGETS[name]


__all__ = ['PRECISIONS', 'TARGETS', 'Calibration', 'DeployError', 'Session', 'Target', 'get_target']
