"""RandomStateHook: generator states survive a checkpoint file and come back only on resume."""
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from iformer_mm.engine.hooks import RandomStateHook, get_random_state, set_random_state
from iformer_mm.engine.hooks.random_state_hook import CHECKPOINT_KEY


def draws():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    draws()
    hook = RandomStateHook()
    ckpt = {'meta': {}}
    hook.before_save_checkpoint(None, ckpt)
    expected = draws()
    torch.save(ckpt, tmp_path / 'c.pth')
    loaded = torch.load(tmp_path / 'c.pth', weights_only=True)

    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    draws()
    hook.after_load_checkpoint(SimpleNamespace(_resume=True), loaded)
    assert draws() != expected  # nothing restored before training starts
    hook.before_train(SimpleNamespace(logger=SimpleNamespace(info=lambda msg: None)))
    assert draws() == expected


def test_loading_without_resume_keeps_the_seeded_stream():
    hook = RandomStateHook()
    ckpt = {}
    hook.before_save_checkpoint(None, ckpt)
    torch.manual_seed(3)
    expected = float(torch.rand(()))
    torch.manual_seed(3)
    hook.after_load_checkpoint(SimpleNamespace(_resume=False), ckpt)  # load_from: fine-tuning
    hook.before_train(SimpleNamespace(logger=SimpleNamespace(info=lambda msg: None)))
    assert float(torch.rand(())) == expected


def test_validation_does_not_consume_the_training_stream():
    hook = RandomStateHook()
    torch.manual_seed(5)
    expected = float(torch.rand(()))
    torch.manual_seed(5)
    hook.before_val(None)
    torch.rand(10)  # a validation dataloader draws its worker seed, for example
    hook.after_val(None)
    assert float(torch.rand(())) == expected


def test_malformed_state_is_named():
    state = get_random_state()
    del state['numpy']
    with pytest.raises(ValueError, match=f"'{CHECKPOINT_KEY}' is not a random state"):
        set_random_state(state)
