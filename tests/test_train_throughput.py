"""GPU training throughput benchmark (``tools/benchmark.py train-throughput``), on the CPU.

No GPU here: the smoke run exercises the whole pipeline (same-network checks, every kind of
setting, JSON, Markdown) on a tiny configuration, with the mm toolboxes made unimportable; the
GPU-only paths (out-of-memory, compile past the budget, GPU description) are driven with stand-ins.
No timing assertions.
"""
import itertools
import json
import math
import time

import pytest
import torch

from benchmarks import machine, timing
from benchmarks import train_throughput as tt
from benchmarks.cli import main as bench_main

from .helpers import run_tool

BLOCKED = ('mmcv', 'mmdet', 'mmseg', 'mmpretrain')


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    """The CLI smoke run, in a process where mmcv / mmdet / mmseg / mmpretrain are absent."""
    out = tmp_path_factory.mktemp('smoke') / 'bench' / 'train.json'
    code = (
        'import sys, runpy\n'
        f'for name in {BLOCKED!r}:\n'
        '    sys.modules[name] = None  # "not installed": import fails, find_spec says None\n'
        f"sys.argv = ['tools/benchmark.py', 'train-throughput', '--device', 'cpu', '--smoke',\n"
        f"            '--out', {str(out)!r}]\n"
        'try:\n'
        "    runpy.run_path('tools/benchmark.py', run_name='__main__')\n"
        'except SystemExit as e:\n'
        '    assert e.code in (0, None), e.code\n'
        f'leaked = [n for n in {BLOCKED!r} if sys.modules.get(n) is not None]\n'
        "assert not leaked, leaked\n"
        "print('no mm toolbox imported')\n")
    proc = run_tool('-c', code, threads=1, timeout=600)
    return proc, out, json.loads(out.read_text())


def test_smoke_runs_without_mmcv_mmdet_mmseg_mmpretrain(smoke):
    proc, out, doc = smoke
    assert 'no mm toolbox imported' in proc.stdout
    assert sorted(p.name for p in out.parent.iterdir()) == ['train.json', 'train.md']
    # progress lines carry the elapsed time
    lines = [line for line in proc.stdout.splitlines() if line.startswith('[')]
    assert any('check train T: ok' in line for line in lines)
    assert any(line.split(']')[1].strip().startswith('dense_train T 64 b2') for line in lines)
    assert lines[-1].split(']')[1].strip().startswith('done: 8 of 8 settings measured')


def test_smoke_json_schema(smoke):
    _, _, doc = smoke
    assert doc['schema'] == tt.SCHEMA and doc['smoke'] is True
    assert doc['command'].startswith('python tools/benchmark.py train-throughput')
    env = doc['environment']
    assert env['device'] == 'cpu' and env['gpu'] is None
    assert {'torch', 'timm', 'mmengine', 'python', 'iformer_mm', 'cpu', 'tf32'} <= set(env)
    assert env['mmengine'] != 'not installed'
    assert doc['method']['interleaved'] is True and doc['wall_s'] > 0
    settings = {(r['kind'], r['dtype'], r['memory_format'], r['mode']) for r in doc['results']}
    assert settings == {
        ('train', 'fp32', 'nchw', 'eager'), ('train', 'fp32', 'channels_last', 'eager'),
        ('train', 'bf16', 'nchw', 'eager'), ('train', 'bf16', 'channels_last', 'eager'),
        ('inference', 'bf16', 'nchw', 'eager'), ('inference', 'bf16', 'channels_last', 'eager'),
        ('dense_train', 'fp32', 'nchw', 'eager'), ('dense_train', 'fp32', 'channels_last', 'eager')}
    for r in doc['results']:
        assert r['status'] == 'ok', r
        assert (r['model'], r['resolution'], r['batch']) == ('t', 64, 2)
        for side in ('ours', 'timm'):
            assert r[side]['images_per_s'] > 0 and r[side]['first_call_s'] >= 0
            assert r[side]['memory'] is None  # peak memory is a CUDA counter
        ratio = r['ratio_ours_over_timm']
        assert ratio['rounds'] == r['rounds_done'] == 1
        assert ratio['min'] <= ratio['median'] <= ratio['max']
    summary = doc['summary']
    assert len(summary['train_ratios']) == 6  # train + dense_train settings
    assert summary['speedups'] == [] and summary['all_speedups_meet'] is None  # no compile
    assert summary['checks_ok'] is True and summary['not_measured'] == []


def test_smoke_ours_and_timm_compute_the_same_loss(smoke):
    _, _, doc = smoke
    checks = {c['kind']: c for c in doc['checks']}
    assert set(checks) == {'train', 'inference', 'dense_train'}
    for kind in ('train', 'dense_train'):
        c = checks[kind]
        assert c['ok'] and c['abs_diff'] <= 1e-4 and math.isfinite(c['loss_ours'])
        assert c['loss_ours'] > 0 and c['grad_norm_ours'] > 0
        assert c['trainable_params_ours'] == c['trainable_params_timm']
    assert checks['train']['trainable_params_ours'] == 2_886_456  # iFormer-T, 1000 classes
    assert checks['inference']['logits_max_abs_diff'] <= 1e-4


def test_smoke_markdown_table_and_report(smoke, capsys):
    _, out, doc = smoke
    table = out.with_suffix('.md').read_text()
    assert table.startswith('**Smoke run')
    assert '| T | 64 | 2 | bf16 | channels_last | eager |' in table
    assert 'CPU: ' in table and '(not a GPU figure)' in table
    # the spelling of earlier versions names the mode too
    assert bench_main(['--train-throughput', '--report', str(out)]) == 0
    assert capsys.readouterr().out == table


# ---------------------------------------------------------------------------- the pair check
def test_the_check_catches_a_different_model():
    plan = tt.Plan.smoke_run()
    pair = tt.build_pair('train', 't', plan, torch.device('cpu'))
    assert pair.ok and pair.check['abs_diff'] <= 1e-4
    with torch.no_grad():  # one different weight in timm's head
        pair.timm.head.head.l.weight[0, 0] += 1.0
    check = tt.check_same_training(pair, 'train', 2, 64, torch.device('cpu'), seed=0)
    assert not check['ok'] and check['abs_diff'] > 1e-4
    assert check['problems'][0].startswith('loss differs by')


def test_a_failed_check_skips_the_pair_and_exits_1(tmp_path, monkeypatch, capsys):
    real = tt.build_pair

    def broken(kind, arch, plan, device):
        pair = real(kind, arch, plan, device)
        pair.check = dict(pair.check, ok=False, problems=['loss differs by 0.5 > 0.0001'])
        return pair
    monkeypatch.setattr(tt, 'build_pair', broken)
    out = tmp_path / 'r.json'
    assert bench_main(['train-throughput', '--device', 'cpu', '--smoke', '--dtypes', 'fp32',
                       '--memory-formats', 'nchw', '--dense-models', '--out', str(out)]) == 1
    assert 'did not compute the same thing' in capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert [r['status'] for r in doc['results']] == ['skipped', 'skipped']
    assert all('do not compute the same thing: loss differs' in r['reason']
               for r in doc['results'])
    assert doc['summary']['checks_ok'] is False


# ---------------------------------------------------------------------------- guard rails
def _train_plan(**kw):
    return tt.Plan.smoke_run(dtypes=('fp32',), inference_models=(), dense_models=(), **kw)


def test_out_of_memory_ends_the_setting_not_the_run(monkeypatch):
    real = tt.make_step

    def step_or_oom(setting, model, x, y, device):
        if setting.memory_format == 'nchw':
            def oom():
                raise torch.cuda.OutOfMemoryError('CUDA out of memory. Tried to allocate 2 GiB')
            return oom
        return real(setting, model, x, y, device)
    monkeypatch.setattr(tt, 'make_step', step_or_oom)
    doc = tt.run_throughput(_train_plan(inference_dtypes=()), log=lambda s: None)
    by = {r['memory_format']: r for r in doc['results']}
    assert by['nchw']['status'] == 'oom'
    assert by['nchw']['reason'] == 'OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB'
    assert by['channels_last']['status'] == 'ok'
    assert 'oom' in doc['summary']['not_measured'][0]


def test_compile_settings_that_do_not_fit_the_budget_are_skipped():
    plan = _train_plan(memory_formats=('nchw',), inference_dtypes=(), compile_models=('t', 'm'),
                       compile_settings=(('fp32', 'nchw'),), compile_batch_sizes=(2,),
                       compile_estimate_s=1e6)
    doc = tt.run_throughput(plan, log=lambda s: None)
    modes = [(r['mode'], r['model'], r['status']) for r in doc['results']]
    assert modes == [('eager', 't', 'ok'), ('compile', 't', 'skipped'),
                     ('compile', 'm', 'skipped')]
    assert doc['results'][1]['reason'].startswith('estimated ')
    assert 'left of the run budget' in doc['results'][1]['reason']


def test_a_compile_running_past_the_budget_is_interrupted(monkeypatch):
    """torch.compile stands in for a compiler that takes far longer than the budget left."""
    def slow_compile(model, **kwargs):
        def compiled(x):
            time.sleep(30)
            return model(x)
        compiled.parameters = model.parameters
        return compiled
    monkeypatch.setattr(torch, 'compile', slow_compile)
    plan = _train_plan()
    pair = tt.build_pair('train', 't', plan, torch.device('cpu'))
    setting = tt.Setting('train', 't', 64, 2, 'fp32', 'nchw', 'compile')
    t0 = time.perf_counter()
    row = tt.measure_setting(setting, pair, plan, torch.device('cpu'), timing.Clock(1.0),
                             log=lambda s: None)
    assert time.perf_counter() - t0 < 10
    assert row['status'] == 'skipped'
    assert 'compile did not finish within the run budget' in row['reason']
    assert all(p.grad is None for p in pair.ours.parameters())


def test_spent_budget_skips_the_rest():
    doc = tt.run_throughput(_train_plan(budget_s=1e-9), log=lambda s: None)
    assert doc['results'] and all(r['status'] == 'skipped' and 'budget' in r['reason']
                                  for r in doc['results'])
    assert doc['checks'] == []  # nothing built


def test_interleaved_rounds_alternate_and_respect_the_time_limit():
    calls = []
    steps = {'ours': lambda: calls.append('ours'), 'timm': lambda: calls.append('timm')}
    times = timing.interleaved_rounds(steps, rounds=3, calls_per_round=2,
                                      device=torch.device('cpu'))
    assert calls == ['ours'] * 2 + ['timm'] * 4 + ['ours'] * 4 + ['timm'] * 2
    assert [len(v) for v in times.values()] == [3, 3]
    slow = {'ours': lambda: time.sleep(0.02), 'timm': lambda: time.sleep(0.02)}
    times = timing.interleaved_rounds(slow, rounds=50, calls_per_round=1,
                                      device=torch.device('cpu'), time_limit_s=0.01)
    assert [len(v) for v in times.values()] == [1, 1]  # stopped after the first round
    assert timing.ratio_per_round([1.0, 2.0], [2.0, 2.0]) == {
        'median': 1.5, 'min': 1.0, 'max': 2.0, 'rounds': 2}  # throughput ours / timm


def test_time_limit():
    with pytest.raises(timing.TimeLimitExceeded):
        with timing.time_limit(0.05):
            time.sleep(5)
    with timing.time_limit(5):  # no alarm left behind
        pass
    time.sleep(0.01)


def test_a_clearly_slower_setting_is_profiled(monkeypatch):
    def sleeper(setting, model, x, y, device):
        return lambda: time.sleep(0.03 if model is pair.ours else 0.003)
    monkeypatch.setattr(tt, 'make_step', sleeper)
    plan = _train_plan()
    pair = tt.build_pair('train', 't', plan, torch.device('cpu'))
    setting = tt.Setting('train', 't', 64, 2, 'fp32', 'nchw', 'eager')
    row = tt.measure_setting(setting, pair, plan, torch.device('cpu'), timing.Clock(100),
                             log=lambda s: None, profile=True)
    assert row['status'] == 'ok' and row['ratio_ours_over_timm']['median'] < 0.5
    assert set(row['profile']) == {'ours', 'timm'}
    row = tt.measure_setting(setting, pair, plan, torch.device('cpu'), timing.Clock(100),
                             log=lambda s: None, profile=False)
    assert 'profile' not in row


def test_profile_names_the_expensive_ops():
    a = torch.randn(64, 64)
    rows = tt.profile_steps({'ours': lambda: a @ a, 'timm': lambda: a + a},
                            torch.device('cpu'), calls=2)
    assert rows['ours'][0]['op'] in ('aten::matmul', 'aten::mm') and rows['ours'][0]['calls'] == 2
    assert any(r['op'] == 'aten::add' for r in rows['timm'])


def test_summary_targets():
    def row(kind, dtype, fmt, mode, ours, timm, batch=256):
        return {'kind': kind, 'model': 'm', 'resolution': 224, 'batch': batch, 'dtype': dtype,
                'memory_format': fmt, 'mode': mode, 'status': 'ok',
                'ours': {'images_per_s': ours}, 'timm': {'images_per_s': timm},
                'ratio_ours_over_timm': {'median': ours / timm}}
    doc = {'checks': [{'ok': True}], 'results': [
        row('train', 'fp32', 'nchw', 'eager', 1000, 1000),
        row('train', 'bf16', 'channels_last', 'compile', 1800, 1850),
        row('inference', 'bf16', 'nchw', 'eager', 5000, 6000),  # inference has no ratio target
        dict(row('train', 'fp32', 'nchw', 'compile', 0, 1), status='oom', reason='OOM')]}
    s = tt.summarize(doc)
    assert [r['meets'] for r in s['train_ratios']] == [True, False]
    assert s['all_ratios_meet'] is False
    assert s['speedups'] == [{'model': 'm', 'batch': 256, 'fp32_eager_images_per_s': 1000,
                              'bf16_channels_last_compile_images_per_s': 1800, 'speedup': 1.8,
                              'meets': True}]
    assert s['misses'] == ['train M 224 b256 bf16 channels_last compile: ours/timm 0.973 '
                           '(2.7 % slower)']
    assert s['not_measured'] == ['train M 224 b256 fp32 nchw compile: oom (OOM)']


def test_the_plan_runs_its_grid_with_compile_last():
    plan = tt.Plan()
    settings = plan.settings()
    eager_train = {(s.model, s.batch, s.dtype, s.memory_format) for s in settings
                   if s.kind == 'train' and s.mode == 'eager'}
    assert eager_train == set(itertools.product(plan.models, plan.batch_sizes, plan.dtypes,
                                                plan.memory_formats))
    assert {s.model for s in settings if s.kind == 'inference'} == set(plan.models)  # None: same
    assert {(s.resolution, s.batch) for s in settings if s.kind == 'dense_train'} == {
        (plan.dense_resolution, plan.dense_batch)}
    compiled = [s for s in settings if s.mode == 'compile']
    assert compiled and settings[-len(compiled):] == compiled  # compile last: the budget cuts it
    assert [s.model for s in compiled] == sorted(
        (s.model for s in compiled), key=plan.compile_models.index)  # in priority order
    assert len(settings) == len(set(settings))


def test_the_flags_are_the_plan_fields():
    import argparse
    import dataclasses
    parser = argparse.ArgumentParser()
    tt.plan_flags(parser)
    flags = {a.dest for a in parser._actions if a.dest != 'help'}
    declared = {f.name for f in dataclasses.fields(tt.Plan)
                if {'flag', 'switch_off'} & set(f.metadata)}
    assert flags == declared and 'smoke' not in flags
    args = parser.parse_args(['--models', 'm', '--compile-settings', 'fp32:nchw', '--rounds', '2',
                              '--no-profile', '--compile-models'])
    plan = tt.plan_from_args(args)
    assert (plan.models, plan.compile_settings, plan.rounds) == (('m',), (('fp32', 'nchw'),), 2)
    assert plan.profile_misses is False and plan.compile_models == ()
    untouched = tt.Plan()
    assert plan.batch_sizes == untouched.batch_sizes and plan.cudnn_benchmark is True
    assert tt.plan_from_args(parser.parse_args([]), smoke=True) == tt.Plan.smoke_run()


def test_gpu_description(monkeypatch):
    assert machine.gpu(torch.device('cpu')) is None

    class Props:
        name, major, minor = 'NVIDIA H200', 9, 0
        total_memory, multi_processor_count = 150_000_000_000, 132
    monkeypatch.setattr(torch.cuda, 'get_device_properties', lambda index: Props)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda: True)
    monkeypatch.setattr(machine.shutil, 'which', lambda name: None)  # no nvidia-smi
    info = machine.gpu(torch.device('cuda:0'))
    assert info['name'] == 'NVIDIA H200' and info['capability'] == '9.0'
    assert info['memory_gib'] == 139.7 and info['bf16_supported'] is True
    assert info['driver'] is None and info['cuda'] == torch.version.cuda


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize('argv,message', [
    (['--models', 'zz'], "argument --models: unknown model 'zz'"),
    (['--models', 'm_distill'], 'distilled variants are not measured separately'),
    (['--batch-sizes', '0'], 'argument --batch-sizes: 0 must be >= 1'),
    (['--batch-sizes', 'big'], "argument --batch-sizes: 'big' is not an integer"),
    (['--resolution', '100'], 'input height 100 is not allowed'),
    (['--compile-settings', 'bf16:nhwc'], "'bf16:nhwc' is not DTYPE:MEMORY_FORMAT"),
    (['--budget-s', '0'], 'argument --budget-s: 0 must be > 0 seconds'),
    (['--device', 'tpu'], "--device 'tpu' is not a device"),
])
def test_bad_input(tmp_path, capsys, argv, message):
    out = tmp_path / 'r.json'
    try:  # a bad flag value is argparse's error (SystemExit 2), a bad device the command's
        code = bench_main(['train-throughput', '--device', 'cpu', '--smoke', '--out', str(out)]
                          + argv)
    except SystemExit as e:
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count('\n') == 1, err
    assert err.startswith('benchmark.py train-throughput: error: '), err
    assert not list(tmp_path.iterdir())


def test_cuda_without_a_gpu_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)  # as here; also on a GPU host
    assert bench_main(['train-throughput', '--device', 'cuda', '--out',
                       str(tmp_path / 'r.json')]) == 2
    err = capsys.readouterr().err
    assert err.startswith('benchmark.py train-throughput: error: --device cuda: CUDA is not '
                          'available on this machine')
    assert err.count('\n') == 1 and not list(tmp_path.iterdir())


def test_cpu_runs_never_write_the_gpu_results_file(capsys):
    assert bench_main(['train-throughput', '--device', 'cpu', '--smoke']) == 2
    assert 'benchmarks/gpu_train.json holds full GPU runs only' in capsys.readouterr().err


@pytest.mark.slow
def test_compiled_setting_runs_on_cpu(tmp_path):
    """The torch.compile path end to end (minutes on 2 CPU cores: the C++ kernels compile)."""
    out = tmp_path / 'c.json'
    run_tool('tools/benchmark.py', 'train-throughput', '--device', 'cpu', '--smoke', '--dtypes',
             'fp32', '--memory-formats', 'nchw', '--inference-models', '--dense-models',
             '--compile-models', 't', '--compile-settings', 'fp32:nchw', '--compile-batch-sizes',
             '2', '--compile-estimate-s', '1', '--budget-s', '1500', '--out', out, threads=2)
    rows = {r['mode']: r for r in json.loads(out.read_text())['results']}
    assert rows['compile']['status'] == 'ok', rows['compile']
    assert rows['compile']['ours']['first_call_s'] > rows['eager']['ours']['first_call_s']
    assert rows['compile']['ours']['images_per_s'] > 0
