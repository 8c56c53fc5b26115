"""tools/benchmark.py --deploy: the exported-model latency benchmark runs and records what it
compared (smoke: one tiny case; the committed results come from the full command)."""
import json

from iformer_mm.analysis.cli import bench_main


def test_smoke_writes_results_and_table(tmp_path, capsys):
    out = tmp_path / 'deploy.json'
    rc = bench_main(['--deploy', '--models', 't', '--targets', 'onnxruntime', '--resolution', '64',
                     '--runs', '2', '--warmup', '0', '--out', str(out)])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    (case,) = doc['cases']
    assert case['target'] == 'onnxruntime' and case['threads'] == 1
    variants = {v['variant']: v for v in case['variants']}
    assert set(variants) == {'ours_fp32', 'timm_fp32', 'ours_int8'}
    assert all(v['status'] == 'ok' and v['median_ms'] > 0 and v['runs'] == 2 for v in variants.values())
    assert set(case['ratios']) == {'ours_vs_timm_fp32', 'int8_vs_fp32'}
    assert doc['summary'][0]['fp32_target'] == '<= 1.0' and 'int8_met' in doc['summary'][0]
    table = (tmp_path / 'deploy.md').read_text()
    assert '| onnxruntime | T |' in table
    png = tmp_path / 'deploy.png'
    assert bench_main(['--deploy', '--out', str(png), '--plot', str(out)]) == 0
    assert png.read_bytes()[:4] == b'\x89PNG'


def test_bad_input(tmp_path, capsys):
    assert bench_main(['--deploy', '--models', 'zz', '--out', str(tmp_path / 'r.json')]) == 2
    assert "unknown model 'zz'" in capsys.readouterr().err
    assert bench_main(['--deploy', '--targets', 'coreml', '--out', str(tmp_path / 'r.json')]) == 2
    assert not (tmp_path / 'r.json').exists()
