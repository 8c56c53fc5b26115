"""Params and GMACs match what the published code computes (docs/architecture.md)."""
import json

import pytest

from iformer_mm.flops import main as flops_main
from iformer_mm.flops import REFERENCE_224, model_row

FAST = ['t', 's', 'm', 'l', 'l2']
SLOW = [pytest.param('h', marks=pytest.mark.slow)]  # builds a 100M-parameter model


@pytest.mark.parametrize('arch', FAST + SLOW)
def test_params_and_gmacs_match_spec(arch):
    row = model_row(arch)
    params_m, gmacs = REFERENCE_224[arch]
    assert set(row) >= {'model', 'resolution', 'params', 'gmacs'}
    assert row['model'] == f'iformer_{arch}' and row['resolution'] == 224
    assert abs(row['params'] / 1e6 - params_m) < 5e-4          # exact to the published digits
    assert abs(row['gmacs'] - gmacs) <= 0.01 * gmacs            # within 1%
    assert row['gmacs_by_op']['bmm'] > 0                        # attention matmuls are counted


def test_json_cli_and_published_l_note(capsys):
    assert flops_main(['--json', '--models', 'iformer-t', 'iFormer_l']) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r['model'] for r in rows] == ['iformer_t', 'iformer_l']
    assert all(isinstance(r['params'], int) and r['gmacs'] > 0 for r in rows)
    assert round(rows[1]['gmacs'], 2) == 2.83 and '2.63' in rows[1]['note']


def test_table_mentions_readme_figure(capsys):
    assert flops_main(['--models', 'l']) == 0
    out = capsys.readouterr().out
    assert '2.827' in out and 'README says 2.63' in out


def test_unknown_model(capsys):
    assert flops_main(['--models', 'q']) == 2
    assert "unknown model 'q'" in capsys.readouterr().err


def test_another_implementation_in_its_own_deployed_form_counts_the_same():
    """The one counter measures any image model alike (the accuracy-latency comparison counts
    its timm peers with it): timm's port of iFormer-T, fused by timm on the meta device or
    before counting, gives our count op for op."""
    import timm

    from iformer_mm.flops import count_macs
    from iformer_mm.models.plain_classifier import IFormerClassifier
    ours = count_macs(IFormerClassifier('t'))
    assert count_macs(timm.create_model('iformer_t'), fuse=lambda m: m.fuse()) == ours
    assert count_macs(timm.create_model('iformer_t').eval().fuse(), fuse=None) == ours
    assert ours['bmm'] > 0 and abs(sum(ours.values()) / 1e9 - REFERENCE_224['t'][1]) < 0.01
