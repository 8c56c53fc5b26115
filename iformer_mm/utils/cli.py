"""The one command-line convention of every iformer-mm tool: parser, error format, quiet start.

Why one module: users script our tools and read their errors; every tool (``tools/*.py``,
``python -m iformer_mm.deploy``) therefore fails the same way, on bad flags and on bad values
alike: one line ``PROG: error: MESSAGE`` on stderr (no usage block, no traceback) and exit
status 2, with nothing written. :class:`ToolParser` does it for argparse's own errors,
:func:`error_exit` for the errors a tool's work raises.

Warnings: mmengine 0.10 imports ``pkg_resources`` (to resolve ``mmdet::`` base configs) several
times per run; with setuptools >= 80.9 that prints a deprecation notice each time, before a
tool's own one-line error. :func:`quiet_known_warnings` hides exactly :data:`KNOWN_WARNINGS`
at our entry points; importing ``iformer_mm`` as a library changes no warning filter.
"""
from __future__ import annotations

import argparse
import re
import sys
import warnings
from typing import NoReturn

__all__ = ['KNOWN_WARNINGS', 'ToolParser', 'error_exit', 'positive_int', 'quiet_known_warnings']

#: (message prefix, category) of each third-party warning hidden at our entry points
KNOWN_WARNINGS = (
    ('pkg_resources is deprecated as an API', UserWarning),
    ('pkg_resources is deprecated as an API', DeprecationWarning),
)


def quiet_known_warnings() -> None:
    """Ignore exactly :data:`KNOWN_WARNINGS` in this process (other warnings still show)."""
    for message, category in KNOWN_WARNINGS:
        warnings.filterwarnings('ignore', message=re.escape(message), category=category)


class ToolParser(argparse.ArgumentParser):
    """argparse whose errors are one stderr line ``PROG: error: MESSAGE`` and exit status 2.

    Sub-commands made with ``add_subparsers`` are ToolParsers too (argparse copies the class).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f'{self.prog}: error: {message}\n')


def error_exit(prog: str, error: BaseException) -> int:
    """Print ``PROG: error: <first line of error>`` on stderr and return the exit status 2."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    print(f'{prog}: error: {line}', file=sys.stderr)
    return 2


def positive_int(value: str) -> int:
    """argparse type: an integer >= 1; the error names the value."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{value!r} is not an integer') from None
    if number < 1:
        raise argparse.ArgumentTypeError(f'{number} must be >= 1')
    return number
