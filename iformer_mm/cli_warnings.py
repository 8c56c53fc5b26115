"""The third-party warnings our command lines hide, and nothing else.

Why: mmengine 0.10 imports ``pkg_resources`` (to resolve ``mmdet::`` / ``mmpretrain::`` base
configs) several times per run, and setuptools >= 81 prints its deprecation notice each time: the
same four-line block, five times, before a tool's own one-line error. The tools in ``tools/``
call :func:`quiet_known_warnings` first thing; importing ``iformer_mm`` as a library changes no
warning filter (a user's own process keeps every warning).
"""
from __future__ import annotations

import re
import warnings

__all__ = ['KNOWN_WARNINGS', 'quiet_known_warnings']

#: (message prefix, category) of each warning hidden at our entry points
KNOWN_WARNINGS = (
    ('pkg_resources is deprecated as an API', UserWarning),
)


def quiet_known_warnings() -> None:
    """Ignore exactly :data:`KNOWN_WARNINGS` in this process (other warnings still show)."""
    for message, category in KNOWN_WARNINGS:
        warnings.filterwarnings('ignore', message=re.escape(message), category=category)
