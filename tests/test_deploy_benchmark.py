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
    assert set(case['ratios']) == {'ours_vs_timm_fp32', 'int8_vs_fp32', 'fastest_float',
                                   'int8_vs_fastest_float'}
    assert case['ratios']['fastest_float'] == 'fp32'  # ONNX Runtime runs no bf16 on CPU
    (row,) = doc['summary']
    assert row['int8_met'] == (case['ratios']['int8_vs_fastest_float']
                               <= deploy_latency.TARGET_INT8_VS_FLOAT['onnxruntime'])
    # the int8 row says where its time went: ONNX Runtime's profiler, int8 kernels among them
    profile = variants['ours_int8']['profile']
    assert profile['runs'] == deploy_latency.PROFILE_RUNS and profile['kernel_ms'] > 0
    assert abs(sum(o['share'] for o in profile['ops']) - 1) < 0.01
    assert 'int8' in profile['by_precision'] and 'QLinearConv' in {o['op_type'] for o in profile['ops']}
    assert set(doc['recommendation']) == {'onnxruntime'}
    table = (tmp_path / 'deploy.md').read_text()
    assert '| onnxruntime | T |' in table and 'Recommendation:' in table
    png = tmp_path / 'deploy.png'
    assert bench_main(['deploy', '--out', str(png), '--plot', str(out)]) == 0
    assert png.read_bytes()[:4] == b'\x89PNG'


def test_the_summary_checks_each_ratio_against_its_target():
    def case(target, fp32, int8, fastest='fp32'):
        return {'target': target, 'model': 't', 'threads': 1, 'variants': [],
                'ratios': {'ours_vs_timm_fp32': fp32, 'int8_vs_fastest_float': int8,
                           'fastest_float': fastest}}
    fp32, et, int8 = (deploy_latency.TARGET_FP32_VS_TIMM, deploy_latency.TARGET_ET_VS_TIMM,
                      deploy_latency.TARGET_INT8_VS_FLOAT)
    cases = [case('onnxruntime', fp32 - .01, int8['onnxruntime'] + .01),
             case('openvino', fp32 + .01, int8['openvino'] - .01, 'bf16'),
             case('executorch', et + .01, int8['executorch'])]
    rows = deploy_latency.summarize(cases)
    assert [r['fp32_met'] for r in rows] == [True, False, False]
    assert [r['int8_met'] for r in rows] == [False, True, True]
    assert rows[1]['int8_target'] == f"<= {int8['openvino']} x bf16"
    # the recommendation follows the numbers: int8 where it is >= 10 % faster than the best float
    vnni = ['avx2', 'avx512f', 'avx512_vnni']
    rec = deploy_latency.recommend(cases, vnni)
    assert rec['openvino'].startswith('on a CPU with VNNI (AVX-512) ship int8 (vs bf16')
    assert rec['onnxruntime'].startswith('on a CPU with VNNI (AVX-512) ship int8')  # 0.56 <= 0.9
    slow = deploy_latency.recommend([case('openvino', 1.0, 0.98, 'bf16')], vnni)
    assert slow['openvino'].startswith(
        'on a CPU with VNNI (AVX-512) ship bf16: int8 is not clearly faster')
    # a host without VNNI does not speak for one that has it
    avx2 = deploy_latency.recommend(cases, ['avx2', 'fma'])
    assert avx2['onnxruntime'].startswith('on a CPU without VNNI (AVX2) ship int8')


def test_bad_input(tmp_path, capsys):
    assert bench_main(['deploy', '--models', 'zz', '--out', str(tmp_path / 'r.json')]) == 2
    err = capsys.readouterr().err
    assert err.startswith("benchmark.py deploy: error: unknown model 'zz'") and err.count('\n') == 1
    with pytest.raises(SystemExit) as e:
        bench_main(['deploy', '--targets', 'coreml', '--out', str(tmp_path / 'r.json')])
    assert e.value.code == 2 and "invalid choice: 'coreml'" in capsys.readouterr().err
    assert not (tmp_path / 'r.json').exists()
