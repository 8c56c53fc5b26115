"""What every deployment target provides, and the errors they raise.

A target turns a fused eval ``nn.Module`` (ours or timm's: the benchmark exports both the same
way) into an artifact for one runtime, loads that artifact into the runtime, and runs it. The
export pipeline (:mod:`iformer_mm.deploy.export`) only talks to this interface, so adding a
runtime is one module in this package.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

#: one forward of a loaded artifact: normalised NCHW float32 input -> outputs, in output order
Session = Callable[[np.ndarray], List[np.ndarray]]
#: calibration inputs for int8: an iterable of normalised NCHW float32 tensors
Calibration = Sequence[torch.Tensor]

PRECISIONS = ('fp32', 'bf16', 'fp16', 'int8')


class DeployError(ValueError):
    """Bad deployment input (target, precision, data): the message names it and what works."""


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

    def export(self, model: torch.nn.Module, example: torch.Tensor, output_names: Sequence[str],
               precision: str, calibration: Optional[Calibration], path: str,
               input_name: str, metadata: Optional[Dict[str, str]] = None) -> Dict[str, object]:
        """Write the artifact for ``model`` at the example's static shape to ``path``.

        ``metadata`` (what was exported, from which weights, the input normalisation) is stored
        in the artifact where its format has room for it. Returns target facts for the report
        (ops, partitions, precision, ...). ``path`` is a temporary path; the caller renames it
        into place after checking it.
        """
        raise NotImplementedError

    def session(self, path: str, threads: Optional[int] = None,
                precision: str = 'fp32') -> Session:
        """Load ``path`` into the runtime (``threads`` intra-op threads; None: runtime default).

        ``precision``: what the artifact was exported as (runtimes with a precision knob run it
        at that precision instead of their device default)."""
        raise NotImplementedError

    def profile(self, path: str, x: np.ndarray, precision: str, threads: Optional[int] = None,
                runs: int = 10) -> Optional[Dict[str, object]]:
        """Per-op profile of ``runs`` inferences (:func:`.profile.fold`); None where the runtime
        offers no per-kernel timings."""
        return None

    def runtime_facts(self, session: Session) -> Dict[str, object]:
        """What the runtime really does with the loaded artifact (e.g. the precision it runs)."""
        return {}
