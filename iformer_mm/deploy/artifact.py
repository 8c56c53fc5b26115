"""A written artifact and its report: found, verified, and checked against a config.

Why one module: every consumer of an artifact (:class:`~.runner.ArtifactRunner`,
``tools/infer.py --artifact``, ``tools/test.py CONFIG ARTIFACT``) must refuse the same bad
inputs with the same one-line message (exit 2 in the tools), before any runtime is loaded:
no report beside the artifact, an artifact that is not the file its report describes (truncated,
corrupt or replaced: the report keeps its SHA-256), a runtime that is not installed or does not
run here, and a config of another task, variant, class count or normalisation than the
artifact's.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, Optional, Tuple

from ..models.backbones.iformer_arch import parse_model_name
from .spec import (RUNNABLE_TASKS, DeploySpec, baked_of, postprocess_of, preprocess_of,
                   scope_task)
from .targets import DeployError, get_target

#: the file suffixes tools/deploy.py writes (an OpenVINO artifact is a folder with model.xml)
ARTIFACT_SUFFIXES = ('.onnx', '.pte', '.mlpackage')
OPENVINO_XML = 'model.xml'


def report_path(artifact: str) -> str:
    """The JSON report ``tools/deploy.py`` writes beside ``artifact`` (same stem)."""
    path = os.path.abspath(artifact.rstrip('/\\'))
    stem, suffix = os.path.splitext(path)
    return (stem if suffix in ARTIFACT_SUFFIXES else path) + '.json'


def looks_like_artifact(path: str) -> bool:
    """Whether ``path`` is something tools/deploy.py writes (used to tell a checkpoint apart)."""
    return (path.endswith(ARTIFACT_SUFFIXES)
            or os.path.isfile(os.path.join(path, OPENVINO_XML))
            or (os.path.isdir(path) and os.path.isfile(report_path(path))))


def checksum(path: str) -> str:
    """SHA-256 of an artifact: the file, or every file of a folder artifact (names sorted)."""
    digest = hashlib.sha256()
    files = ([path] if os.path.isfile(path) else
             sorted(os.path.join(root, f) for root, _, names in os.walk(path) for f in names))
    for name in files:
        if os.path.isdir(path):
            digest.update(os.path.relpath(name, path).encode())
        with open(name, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
    return digest.hexdigest()


def read_artifact(artifact: str, flag: str = '--artifact') -> Tuple[Dict[str, Any], DeploySpec]:
    """The report and spec of a runnable artifact here, its file verified (module docstring)."""
    if not os.path.exists(artifact):
        raise DeployError(f'{flag} {artifact} does not exist')
    path = report_path(artifact)
    if not os.path.isfile(path):
        raise DeployError(f'{flag} {artifact} has no report beside it (expected {path}, '
                          'written by tools/deploy.py with the artifact)')
    try:
        with open(path, encoding='utf-8') as f:
            report = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise DeployError(f'{flag} {artifact}: its report {path} is not valid JSON ({e})') from None
    spec = DeploySpec.from_report(report, f'the report {path}')
    if spec.task not in RUNNABLE_TASKS:
        raise DeployError(f'{flag} {artifact} is a {spec.task} export; only '
                          f'{"/".join(RUNNABLE_TASKS)} artifacts give predictions (a backbone or '
                          'dense part returns feature maps)')
    target = get_target(spec.target)
    target.check(spec.precision)  # the runtime is installed
    if not target.runs_here:
        raise DeployError(f'{flag} {artifact} is a {target.name} model, which does not run on '
                          'this OS')
    if report.get('sha256') and checksum(artifact) != report['sha256']:
        raise DeployError(f'{flag} {artifact} is not the file its report describes (SHA-256 '
                          'differs: truncated, corrupt or replaced); export it again with '
                          'tools/deploy.py')
    return report, spec


def spec_for_config(spec: DeploySpec, cfg, config: str, artifact: str) -> DeploySpec:
    """The artifact's spec run under ``config``: checked (:func:`check_config`), with the
    config's own host-side test settings (e.g. mmseg's whole / slide mode)."""
    check_config(spec, cfg, config, artifact)
    return spec.completed(postprocess=postprocess_of(cfg, spec.task))


def check_config(spec: DeploySpec, cfg, config: str, artifact: str) -> None:
    """Refuse a config whose model is not the artifact's: task, variant, classes, normalisation,
    or test-time settings the artifact's graph was built with."""
    task = scope_task(cfg)
    if task is not None and task != spec.task:
        raise DeployError(f'{config} is a {cfg.get("default_scope")} ({task}) config; the '
                          f'artifact {artifact} is a {spec.task}')
    backbone = cfg.model.get('backbone') or {}
    arch = backbone.get('arch')
    if backbone.get('type') in ('IFormer', 'iformer_mm.IFormer') and isinstance(arch, str):
        if parse_model_name(arch)[0] != spec.arch:
            raise DeployError(f'{config} builds iFormer-{arch.upper()}; the artifact {artifact} '
                              f'is iFormer-{spec.arch.upper()}')
    classes = _num_classes(cfg, spec.task)
    if classes is not None and spec.num_classes is not None and classes != spec.num_classes:
        raise DeployError(f'{config} predicts {classes} classes; the artifact {artifact} '
                          f'{spec.num_classes}')
    pre = preprocess_of(cfg)
    if (pre.channel_order != spec.preprocess.channel_order or
            any(abs(a - b) > 1e-4 for a, b in zip(pre.mean + pre.std,
                                                 spec.preprocess.mean + spec.preprocess.std))):
        raise DeployError(f"{config} normalises images with mean {list(pre.mean)} std "
                          f"{list(pre.std)} {pre.channel_order}; the artifact {artifact} was "
                          f'exported for mean {list(spec.preprocess.mean)} std '
                          f'{list(spec.preprocess.std)} {spec.preprocess.channel_order}')
    baked = baked_of(cfg, spec.task)
    if spec.baked and baked != spec.baked:
        key, want, have = _first_difference(baked, spec.baked)
        raise DeployError(f"{config} sets model.test_cfg {key} = {want!r}; the artifact "
                          f'{artifact} computes with {have!r} inside its graph (export it again '
                          'with this config)')


def _first_difference(a, b, key: str = ''):
    """(dotted key, a's value, b's value) of the first place two nested dicts differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f'{key}.{k}'.strip('.'))
    return key, a, b


def _num_classes(cfg, task: str) -> Optional[int]:
    model = cfg.model
    part = {'classifier': model.get('head'), 'segmentor': model.get('decode_head'),
            'detector': (model.get('roi_head') or {}).get('bbox_head')}.get(task) or {}
    part = part[-1] if isinstance(part, (list, tuple)) else part
    value = part.get('num_classes') if isinstance(part, dict) else None
    return int(value) if value is not None else None
