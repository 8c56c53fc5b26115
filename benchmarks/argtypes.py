"""argparse value types of the benchmark commands; each error names the bad value."""
from __future__ import annotations

import argparse

from iformer_mm.models.backbones.iformer_arch import parse_model_name, parse_resolution
from iformer_mm.utils.cli import positive_int

__all__ = ['base_model', 'positive_int', 'seconds', 'square_resolution']


def square_resolution(value: str) -> int:
    """A square input size under the tools' one resolution rule (a multiple of 32 in range)."""
    try:
        return parse_resolution(int(value))[0]
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f'resolution {value!r} is not an integer' if not value.strip().isdigit() else str(e)
        ) from None


def base_model(value: str) -> str:
    """A base variant name (distilled ones differ only in the head, so are not measured)."""
    try:
        arch, distilled = parse_model_name(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if distilled:
        raise argparse.ArgumentTypeError(
            f'{value!r}: distilled variants are not measured separately (only the head differs); '
            f'use {arch!r}')
    return arch


def seconds(value: str) -> float:
    """A positive number of seconds."""
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{value!r} is not a number of seconds') from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f'{value} must be > 0 seconds')
    return v
