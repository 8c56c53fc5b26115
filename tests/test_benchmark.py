"""The benchmark runs in a tiny configuration and writes valid results (no timing assertions)."""
import json
import os

import pytest
import torch

from benchmarks import latency as benchmark
from benchmarks.cli import main as bench_main

TINY = ['--models', 't', '--backbone-res', '64', '--classifier-res', '64', '--batch-sizes', '1',
        '--runs', '2', '--warmup', '0', '--threads', '1']


def test_tiny_run_writes_results_and_plot(tmp_path):
    out = tmp_path / 'bench' / 'results.json'
    argv = TINY + ['--backends', 'ours_fused', 'ours_fused_cl_stdops', 'ours_fused_cl_win16',
                   'timm_fused', '--out', str(out)]
    threads = torch.get_num_threads()
    try:
        assert bench_main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    doc = json.loads(out.read_text())
    assert (tmp_path / 'bench' / 'results.png').stat().st_size > 0
    assert sorted(os.listdir(tmp_path / 'bench')) == ['results.json', 'results.png']
    assert {'cpu', 'torch', 'timm', 'torch_threads'} <= set(doc['environment'])
    assert doc['environment']['torch_threads'] == 1
    # the vector extensions int8 / bf16 speed depends on are recorded, read from the kernel's list
    if os.path.exists('/proc/cpuinfo'):
        flags = set(next(line for line in open('/proc/cpuinfo')
                         if line.startswith('flags')).split(':', 1)[1].split())
        assert doc['environment']['cpu_isa'] == [
            f for f in ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx_vnni', 'avx512_bf16',
                        'amx_bf16', 'amx_int8', 'avx512_fp16') if f in flags]
    assert isinstance(doc['machine']['machine_shared'], bool) and doc['machine']['note']
    assert doc['command'].startswith('python tools/benchmark.py')
    rows = doc['results']
    # windowed attention is a backbone-only backend
    assert {(r['part'], r['backend']) for r in rows} == {
        ('backbone', 'ours_fused'), ('backbone', 'ours_fused_cl_stdops'),
        ('backbone', 'ours_fused_cl_win16'), ('backbone', 'timm_fused'),
        ('classifier', 'ours_fused'), ('classifier', 'ours_fused_cl_stdops'),
        ('classifier', 'timm_fused')}
    for r in rows:
        assert r['status'] == 'ok' and r['runs'] == 2
        assert 0 < r['min_ms'] <= r['median_ms'] and r['p10_ms'] <= r['p90_ms']
    ratios = [r for r in doc['ratios'] if r['baseline'] == 'timm_fused']
    assert {r['ours'] for r in ratios} == {'ours_fused', 'ours_fused_cl_stdops',
                                           'ours_fused_cl_win16'}
    assert all(r['median_ratio'] > 0 for r in ratios)
    assert {r['ours'] for r in doc['summary']['inference']} == {'ours_fused'}


def test_report_renders_markdown(tmp_path, capsys):
    out = tmp_path / 'r.json'
    threads = torch.get_num_threads()
    try:
        assert bench_main(TINY + ['--classifier-res', '--backends', 'ours_fused', 'timm_fused',
                                  '--out', str(out), '--no-plot']) == 0
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()
    assert bench_main(['--report', str(out)]) == 0
    text = capsys.readouterr().out
    assert '| backbone | T | 64 | 1 |' in text and 'ours / timm_fused' in text
    assert bench_main(['--report', str(tmp_path / 'missing.json')]) == 2


def test_failing_backend_is_recorded(monkeypatch):
    real = benchmark.build_backend

    def broken(name, *args, **kwargs):
        if name == 'ours_compile':
            raise RuntimeError('no compiler here\nsecond line')
        return real(name, *args, **kwargs)
    monkeypatch.setattr(benchmark, 'build_backend', broken)
    case = benchmark.Case('t', 'classifier', 64, 1)
    rows, ratios = benchmark.measure_case(case, ['ours_compile', 'ours_fused', 'timm_fused'],
                                          runs=1, warmup=0, threads=1, log=lambda s: None)
    by = {r['backend']: r for r in rows}
    assert by['ours_compile']['status'] == 'failed'
    assert by['ours_compile']['error'] == 'RuntimeError: no compiler here'
    assert by['ours_fused']['status'] == 'ok' and by['ours_fused']['median_ms'] > 0
    assert [r['ours'] for r in ratios] == ['ours_fused']


def test_train_step_timing_runs():
    result = benchmark.train_step_times('t', batch=2, resolution=64, runs=1, warmup=0,
                                        log=lambda s: None)
    assert result['ours']['median_ms'] > 0 and result['timm']['median_ms'] > 0
    assert result['median_ratio'] > 0


@pytest.mark.parametrize('argv,message', [
    (['--models', 'zz'], "unknown model 'zz'"),
    (['--backbone-res', '--classifier-res'], 'nothing to measure'),
])
def test_bad_input(tmp_path, capsys, argv, message):
    assert bench_main(argv + ['--out', str(tmp_path / 'r.json')]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'r.json').exists()


def test_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / 'f'
    blocker.write_text('x')
    assert bench_main(TINY + ['--out', str(blocker / 'r.json')]) == 2
    assert 'is a file, not a folder' in capsys.readouterr().err
