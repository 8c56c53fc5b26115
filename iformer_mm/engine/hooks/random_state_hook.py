"""Checkpoint the random number generators so that ``--resume`` continues a run exactly.

mmengine re-seeds every run from ``randomness.seed`` and does not save the generators' state, so a
resumed run draws different random numbers than the uninterrupted run would have: different RoI
samples in Mask R-CNN, different flips, different drop-path masks. The losses then drift apart
from the first resumed iteration. This hook stores the Python, NumPy and torch (CPU and CUDA)
generator states in every checkpoint and puts them back when a run resumes, just before training
continues (after mmengine's own re-seeding).

It also keeps validation from consuming the training stream (a validation dataloader draws a
torch random number for its worker seed), so that a run that validated after the checkpoint and a
run resumed from that checkpoint continue with the same random numbers.

Limits: the state saved is the saving process's (rank 0); other ranks of a distributed run are
re-seeded as usual. Iteration-based loops replay the skipped batches on resume: with random
transforms run in the main process (``num_workers=0``) that replay consumes random numbers, so
augmentation (not the model) differs after resume; with worker processes or a deterministic
pipeline it is exact.
"""
from __future__ import annotations

import random
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

#: checkpoint key of the saved generator states
CHECKPOINT_KEY = 'random_state'


def get_random_state() -> Dict[str, Any]:
    """Python, NumPy and torch generator states as tensors, lists and numbers (weights_only-safe)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: Dict[str, Any] = {
        'python': {'version': version, 'state': list(internal), 'gauss_next': gauss},
        'numpy': {'kind': kind, 'keys': torch.from_numpy(keys.astype(np.int64)), 'pos': int(pos),
                  'has_gauss': int(has_gauss), 'cached_gaussian': float(cached)},
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: Dict[str, Any]) -> None:
    """Restore what :func:`get_random_state` returned; a malformed state raises ``ValueError``."""
    try:
        py, npy = state['python'], state['numpy']
        random.setstate((py['version'], tuple(py['state']), py['gauss_next']))
        np.random.set_state((npy['kind'], npy['keys'].numpy().astype(np.uint32), npy['pos'],
                             npy['has_gauss'], npy['cached_gaussian']))
        torch.set_rng_state(state['torch'])
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        raise ValueError(f'checkpoint {CHECKPOINT_KEY!r} is not a random state saved by '
                         f'RandomStateHook ({type(e).__name__}: {e})') from e
    cuda: Optional[List[torch.Tensor]] = state.get('cuda')
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[:torch.cuda.device_count()])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the generators' state in checkpoints and restore it on ``--resume``.

    ``tools/train.py`` adds this hook to every run; with the toolboxes' own train scripts add
    ``custom_hooks = [dict(type='RandomStateHook')]`` to the config.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._pending: Optional[Dict[str, Any]] = None
        self._training_state: Optional[Dict[str, Any]] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = get_random_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # only a resumed run continues the stream; load_from (fine-tuning, testing) keeps the seed
        if getattr(runner, '_resume', False) and CHECKPOINT_KEY in checkpoint:
            self._pending = checkpoint[CHECKPOINT_KEY]

    def before_train(self, runner) -> None:
        # after Runner.resume, which may re-seed from the checkpoint's seed
        if self._pending is not None:
            set_random_state(self._pending)
            self._pending = None
            runner.logger.info('RandomStateHook: restored the random generators of the checkpoint')

    def before_val(self, runner) -> None:
        self._training_state = get_random_state()

    def after_val(self, runner) -> None:
        if self._training_state is not None:
            set_random_state(self._training_state)
            self._training_state = None
