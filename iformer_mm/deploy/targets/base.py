"""What every deployment target provides, and the errors they raise.

A target turns a fused eval ``nn.Module`` (ours or timm's: the benchmark exports both the same
way) into an artifact for one runtime, loads that artifact into the runtime, and runs it. The
export pipeline (:mod:`iformer_mm.deploy.export`) only talks to this interface, so adding a
runtime is one module in this package.
"""
from __future__ import annotations

import contextlib
import importlib.util
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

#: one forward of a loaded artifact: its inputs in input order (the normalised NCHW float32
#: image first; the detector's ``img_shape`` second) -> outputs, in output order
Session = Callable[..., List[np.ndarray]]
#: what an export takes as its example / one calibration item: the image tensor, or a tuple of
#: the inputs in input order
Inputs = Union[torch.Tensor, Tuple[torch.Tensor, ...]]
#: calibration inputs for int8: normalised NCHW float32 images (tuples for several inputs)
Calibration = Sequence[Inputs]
#: input name -> {axis: name} of the axes a dynamic artifact leaves free
DynamicAxes = Dict[str, Dict[int, str]]

PRECISIONS = ('fp32', 'bf16', 'fp16', 'int8')


class DeployError(ValueError):
    """Bad deployment input (target, precision, data): the message names it and what works."""


def user_errors() -> Tuple[type, ...]:
    """The exception types that mean bad input to a deployment tool: the one-line, exit-2
    errors. Anything else (a runtime's own failure, a failed parity check) is not the user's
    input and keeps its traceback."""
    from ...checkpoint import CheckpointError
    from ...utils.configs import ConfigError
    from ...utils.fileio import OutputError
    return (DeployError, CheckpointError, ConfigError, OutputError)


def as_inputs(x: Inputs) -> Tuple[torch.Tensor, ...]:
    """An example / calibration item as the tuple of the artifact's inputs."""
    return (x,) if isinstance(x, torch.Tensor) else tuple(x)


def as_names(names: Union[str, Sequence[str]]) -> List[str]:
    return [names] if isinstance(names, str) else list(names)


@contextlib.contextmanager
def recorded_warnings(known: Sequence[str] = ()) -> Iterator[List[str]]:
    """Warnings raised inside the block: the tracer's (``TracerWarning``: what a traced graph may
    have fixed as a constant) and the ``known`` third-party notices (matched by message start) are
    recorded in the yielded list, once each, for the report; every other warning is shown.

    Why not ignore them: an export that silently bakes a shape or a branch into the graph is the
    kind of failure a deployment must show; the report keeps them where they can be read.
    """
    records: List[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        yield records
    for w in caught:
        message = str(w.message).strip()
        if issubclass(w.category, torch.jit.TracerWarning) or message.startswith(tuple(known)):
            line = f'{w.category.__name__}: {message.splitlines()[0] if message else ""}'
            if issubclass(w.category, torch.jit.TracerWarning):
                line += f' ({w.filename.rsplit("site-packages/", 1)[-1]}:{w.lineno})'
            if line not in records:
                records.append(line)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@dataclass
class Target:
    """One runtime. Subclasses implement :meth:`export` and :meth:`session`.

    ``precisions``: what :meth:`export` can produce; ``runs_here``: whether the runtime can run
    on this machine (Core ML converts on Linux but predicts only on macOS); ``packages``: the
    distributions whose versions go into every report.
    """
    name: str
    suffix: str
    precisions: Tuple[str, ...]
    packages: Tuple[str, ...]
    runs_here: bool = True
    description: str = ''
    needs_calibration: Tuple[str, ...] = field(default=('int8',))

    def check(self, precision: str) -> None:
        """Refuse a precision this target cannot make, or a runtime that is not installed."""
        if precision not in PRECISIONS:
            raise DeployError(f'unknown precision {precision!r}; expected one of {list(PRECISIONS)}')
        if precision not in self.precisions:
            raise DeployError(f'--target {self.name} cannot do --precision {precision}; it supports '
                              f'{list(self.precisions)}')
        for package in self.packages:
            module = package.replace('-', '_')
            if importlib.util.find_spec(module) is None:
                raise DeployError(f'--target {self.name} needs the {package} package, which is not '
                                  f'installed (make install pins it)')

    def export(self, model: torch.nn.Module, example: Inputs, output_names: Sequence[str],
               precision: str, calibration: Optional[Calibration], path: str,
               input_name: Union[str, Sequence[str]], metadata: Optional[Dict[str, str]] = None,
               dynamic_axes: Optional[DynamicAxes] = None) -> Dict[str, object]:
        """Write the artifact for ``model`` to ``path``: at the example's shapes, or with the
        ``dynamic_axes`` of the named inputs left free (runtimes that take dynamic shapes).

        ``metadata`` (what was exported, from which weights, the input normalisation) is stored
        in the artifact where its format has room for it. Returns target facts for the report
        (ops, partitions, precision, recorded export warnings, ...). ``path`` is a temporary
        path; the caller renames it into place after checking it.
        """
        raise NotImplementedError

    #: whether :meth:`export` can leave input axes dynamic
    dynamic_shapes = False

    def session(self, path: str, threads: Optional[int] = None,
                precision: str = 'fp32') -> Session:
        """Load ``path`` into the runtime (``threads`` intra-op threads; None: runtime default).
        A file the runtime cannot load raises :class:`DeployError` naming it (bad input).

        ``precision``: what the artifact was exported as (runtimes with a precision knob run it
        at that precision instead of their device default)."""
        raise NotImplementedError

    def profile(self, path: str, x: Union[np.ndarray, Sequence[np.ndarray]], precision: str,
                threads: Optional[int] = None, runs: int = 10) -> Optional[Dict[str, object]]:
        """Per-op profile of ``runs`` inferences on ``x`` (one input array, or all of them in
        input order; :func:`.profile.fold`); None where the runtime offers no per-kernel
        timings."""
        return None

    def runtime_facts(self, session: Session) -> Dict[str, object]:
        """What the runtime really does with the loaded artifact (e.g. the precision it runs)."""
        return {}


def load_error(target: str, path: str, error: BaseException) -> DeployError:
    """A runtime's refusal to load ``path`` as one line: the file is not a (whole) artifact."""
    first = next((line.strip() for line in str(error).splitlines() if line.strip()),
                 type(error).__name__)
    return DeployError(f'{path} cannot be loaded by {target} ({first[:200]}); the file is '
                       f'truncated, corrupt or not a {target} artifact')
