"""tools/benchmark.py deploy: the exported-model latency benchmark runs and records what it
compared (smoke: one tiny case; the committed results come from the full command)."""
import json

import pytest

from benchmarks import deploy_latency
from benchmarks.cli import main as bench_main


def test_smoke_writes_results_and_table(tmp_path, capsys):
    out = tmp_path / 'deploy.json'
    rc = bench_main(['deploy', '--models', 't', '--targets', 'onnxruntime', '--resolution', '64',
                     '--runs', '2', '--warmup', '0', '--out', str(out)])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    (case,) = doc['cases']
    assert case['target'] == 'onnxruntime' and case['threads'] == 1
    variants = {v['variant']: v for v in case['variants']}
    assert set(variants) == {'ours_fp32', 'timm_fp32', 'ours_int8'}
    assert all(v['status'] == 'ok' and v['median_ms'] > 0 and v['runs'] == 2 for v in variants.values())
    assert set(case['ratios']) == {'ours_vs_timm_fp32', 'int8_vs_fp32'}
    (row,) = doc['summary']
    assert row['int8_met'] == (case['ratios']['int8_vs_fp32'] <= deploy_latency.TARGET_INT8_VS_FP32)
    table = (tmp_path / 'deploy.md').read_text()
    assert '| onnxruntime | T |' in table
    png = tmp_path / 'deploy.png'
    assert bench_main(['deploy', '--out', str(png), '--plot', str(out)]) == 0
    assert png.read_bytes()[:4] == b'\x89PNG'


def test_the_summary_checks_each_ratio_against_its_target():
    def case(target, fp32, int8):
        return {'target': target, 'model': 't', 'threads': 1, 'variants': [],
                'ratios': {'ours_vs_timm_fp32': fp32, 'int8_vs_fp32': int8}}
    fp32, et, int8 = (deploy_latency.TARGET_FP32_VS_TIMM, deploy_latency.TARGET_ET_VS_TIMM,
                      deploy_latency.TARGET_INT8_VS_FP32)
    rows = deploy_latency.summarize([case('onnxruntime', fp32 - .01, int8 + .01),
                                     case('openvino', fp32 + .01, int8 - .01),
                                     case('executorch', et + .01, int8)])
    assert [r['fp32_met'] for r in rows] == [True, False, False]
    assert [r.get('int8_met') for r in rows] == [False, True, None]


def test_bad_input(tmp_path, capsys):
    assert bench_main(['deploy', '--models', 'zz', '--out', str(tmp_path / 'r.json')]) == 2
    err = capsys.readouterr().err
    assert err.startswith("benchmark.py deploy: error: unknown model 'zz'") and err.count('\n') == 1
    with pytest.raises(SystemExit) as e:
        bench_main(['deploy', '--targets', 'coreml', '--out', str(tmp_path / 'r.json')])
    assert e.value.code == 2 and "invalid choice: 'coreml'" in capsys.readouterr().err
    assert not (tmp_path / 'r.json').exists()
