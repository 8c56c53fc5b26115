"""mmengine checkpoints load with weights_only=True once iformer_mm is imported (torch >= 2.6)."""
import io
import pickle

import pytest
import torch
from mmengine.logging import HistoryBuffer

import iformer_mm  # noqa: F401  (registers the allowlist)
from iformer_mm.checkpoint.safe_globals import mmengine_checkpoint_globals


def test_real_runner_checkpoint_resumes(tmp_path):
    """A checkpoint written by mmengine's Runner loads through mmengine's own loader."""
    from mmengine.runner.checkpoint import _load_checkpoint
    from mmengine.runner import Runner
    from mmengine.model import BaseModel

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)

        def forward(self, inputs, labels=None, mode='tensor'):
            out = self.lin(inputs).squeeze(-1)
            if mode == 'loss':
                return {'loss': (out - labels).square().mean()}
            return out

    data = [dict(inputs=torch.randn(2), labels=torch.tensor(1.)) for _ in range(8)]
    runner = Runner(model=Toy(), work_dir=str(tmp_path),
                    train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=False),
                                          batch_size=4, collate_fn=dict(type='default_collate')),
                    train_cfg=dict(by_epoch=True, max_epochs=1),
                    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
                    default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
                    experiment_name='safe_globals_toy')
    runner.train()
    path = str(tmp_path / 'epoch_1.pth')
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        needed = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    finally:
        torch.serialization.add_safe_globals(saved)
    # measured: these are what the runner stores; the fix exists because of them
    assert {'mmengine.logging.history_buffer.HistoryBuffer', 'builtins.getattr'} <= needed
    ckpt = _load_checkpoint(path, map_location='cpu')  # mmengine's loader, torch's default weights_only
    assert ckpt['meta']['epoch'] == 1
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer) and buf.statistics('mean') > 0
    plain = torch.load(path, map_location='cpu', weights_only=True)
    assert torch.equal(plain['state_dict']['lin.weight'], runner.model.lin.weight.detach())


def test_getattr_stand_in_is_narrow():
    """The file may only fetch HistoryBuffer's statistics methods, not arbitrary attributes."""

    class Sneaky:
        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))

    buf = io.BytesIO()
    torch.save({'x': Sneaky()}, buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match="refusing getattr\\(HistoryBuffer, '__init__'\\)"):
        torch.load(buf)


def test_allowlist_has_no_code_execution_primitives():
    names = {getattr(g, '__name__', '') if not isinstance(g, tuple) else g[1]
             for g in mmengine_checkpoint_globals()}
    for forbidden in ('system', 'eval', 'exec', 'Popen', 'import_module', '__import__'):
        assert not any(n.endswith(forbidden) for n in names)


def test_release_file_context_restores_the_process_allowlist():
    from iformer_mm.checkpoint.safe_globals import allow_release_file_globals
    import argparse
    before = list(torch.serialization.get_safe_globals())
    with allow_release_file_globals():
        assert argparse.Namespace in torch.serialization.get_safe_globals()
    after = torch.serialization.get_safe_globals()
    assert argparse.Namespace not in after
    assert len(after) == len(before) and all(g in after for g in before)
