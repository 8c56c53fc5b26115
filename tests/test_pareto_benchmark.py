"""tools/benchmark.py pareto: the front is computed right, and a tiny run (iFormer-T and one peer,
ONNX Runtime fp32 and OpenVINO bf16) writes the documented results (the committed results come
from the full command in docs/pareto.md)."""
import json

import pytest
import torch

from benchmarks import pareto, pareto_report
from benchmarks.cli import main as bench_main
from benchmarks.pareto_models import CONTENDERS, IPHONE13_MS


def test_the_front_of_a_hand_made_example():
    points = [(10, 80), (12, 79), (8, 75), (8, 74), (15, 82), (15, 82), (20, 81), (5, 70)]
    # (12, 79) loses to (10, 80); (8, 74) to (8, 75) (as fast, less accurate); (20, 81) to
    # (15, 82); two equal points do not beat each other
    assert pareto.pareto_front(points) == [True, False, True, False, True, True, False, True]
    assert pareto.pareto_front([]) == []


def _group(points):
    rows = [{'key': k, 'label': k.upper(), 'family': 'iFormer' if k.startswith('i') else 'x',
             'status': 'ok', 'median_ms': ms, 'top1': top1, 'best_top1': best}
            for k, (ms, top1, best) in points.items()]
    for r, on in zip(rows, pareto.pareto_front([(r['median_ms'], r['top1']) for r in rows])):
        r['on_front'] = on
    for r, on in zip(rows, pareto.pareto_front([(r['median_ms'], r['best_top1']) for r in rows])):
        r['on_front_best'] = on
    return {'runtime': 'rt', 'task': 'classifier', 'resolution': 224, 'rows': rows}


def test_the_verdict_names_the_closest_front_model_that_beats_iformer():
    group = _group({'i_m': (30.0, 80.4, 81.1), 'fast': (10.0, 80.3, 80.3),
                    'slow_better': (40.0, 82.0, 82.0)})
    assert pareto.closest_dominating(group['rows'], 'i_m') is None  # nothing faster is as good
    assert pareto_report.conclusion(group) == 'rt, classifier 224: I_M on the front'
    group = _group({'i_m': (30.0, 80.4, 81.1), 'fast': (10.0, 80.5, 80.5),
                    'close': (24.0, 80.9, 80.9), 'slow_better': (40.0, 82.0, 82.0)})
    assert pareto.closest_dominating(group['rows'], 'i_m') == 'close'
    line = pareto_report.conclusion(group)
    assert line.startswith('rt, classifier 224: I_M off (CLOSE: 1.25x faster, +0.5 top-1)')
    # with its distilled weights (81.1) the same network is on the front
    assert 'distilled / longer-schedule weights: I_M on the front' in line
    # on the front by less than the run resolves: said so
    group = _group({'i_t': (10.0, 74.0, 74.0), 'b': (10.3, 76.0, 76.0)})
    assert pareto_report.conclusion(group) == (
        'rt, classifier 224: I_T on the front, a close call (B: +2.0 top-1 at 1.03x the latency)')


def test_measuring_one_task_again_keeps_the_other():
    old = {'groups': [{'task': 'classifier', 'rows': 1}, {'task': 'backbone', 'rows': 2}],
           'models': {'a': {'classifier_224': 1}, 'b': {'backbone_512': 2}}}
    new = {'groups': [{'task': 'backbone', 'rows': 3}],
           'models': {'a': {'backbone_512': 5}, 'b': {'backbone_512': 4}}}
    merged = pareto.merge(old, new)
    assert merged['groups'] == [{'task': 'classifier', 'rows': 1}, {'task': 'backbone', 'rows': 3}]
    assert merged['models'] == {'a': {'classifier_224': 1, 'backbone_512': 5},
                                'b': {'backbone_512': 4}}


def test_every_contender_has_a_sourced_accuracy():
    keys = [c.key for c in CONTENDERS]
    assert len(keys) == len(set(keys)) and 'iformer_m' in keys
    for c in CONTENDERS:
        assert 60 < c.top1 <= c.best_top1 < 90 and c.top1_resolution in (224, 256)
        assert c.source.startswith('https://github.com/') or 'arXiv 2501.15369' in c.source
    assert {c.key for c in CONTENDERS if c.dense} >= set(IPHONE13_MS['backbone'])


def test_smoke_run_writes_results_tables_and_plots(tmp_path, capsys):
    out = tmp_path / 'pareto'
    threads = torch.get_num_threads()
    try:
        rc = bench_main(['pareto', '--models', 'iformer_t', 'mobilenetv4_conv_small',
                         '--runtimes', 'onnxruntime-fp32', 'openvino-bf16', '--tasks', 'classifier',
                         '--reference', 'iformer_t', '--classifier-res', '96', '--runs', '2',
                         '--warmup', '0', '--out-dir', str(out)])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [
        'onnxruntime-fp32.json', 'onnxruntime-fp32.png', 'openvino-bf16.json', 'openvino-bf16.png',
        'results.md']
    for runtime in ('onnxruntime-fp32', 'openvino-bf16'):
        doc = json.loads((out / f'{runtime}.json').read_text())
        assert doc['runtime'] == runtime and doc['method']['reference'] == 'iformer_t'
        assert {'cpu', 'cpu_isa'} <= set(doc['environment'])
        (group,) = doc['groups']
        assert group['command'].startswith('python tools/benchmark.py pareto')
        assert (group['task'], group['resolution'], group['threads'], group['runs']) == (
            'classifier', 96, 1, 2)
        assert isinstance(group['machine']['machine_shared'], bool) and group['machine']['note']
        rows = {r['key']: r for r in group['rows']}
        assert set(rows) == {'iformer_t', 'mobilenetv4_conv_small'}
        for r in rows.values():
            assert r['status'] == 'ok' and r['runs'] == 2 and r['median_ms'] > 0
            assert isinstance(r['on_front'], bool) and r['precision_ran']
        assert rows['iformer_t']['ratio_vs_reference'] == 1.0
        if runtime == 'onnxruntime-fp32':  # the artifact computes what PyTorch computes
            assert all(r['max_rel_diff_vs_torch'] <= 1e-4 for r in rows.values())
        front = pareto.pareto_front([(r['median_ms'], r['top1']) for r in rows.values()])
        assert [r['on_front'] for r in rows.values()] == front
        assert group['front'] == [k for k, on in zip(rows, front) if on]
        facts = doc['models']['iformer_t']
        assert facts['top1'] == 74.1 and facts['params'] == 2886456
        macs = facts['classifier_96']
        assert macs['gmacs'] > 0 and macs['gmacs_by_op']['bmm'] > 0
    table = (out / 'results.md').read_text()
    assert '## Summary: classifier' in table and '## onnxruntime-fp32' in table
    assert '| **iFormer-T** |' in table and 'MNv4-Conv-S' in table
    assert (out / 'openvino-bf16.png').read_bytes()[:4] == b'\x89PNG'
    assert bench_main(['pareto', '--report', '--out-dir', str(out)]) == 0


@pytest.mark.parametrize('argv, message', [
    (['--models', 'iformer_t', 'resnet50'], "unknown model 'resnet50'"),
    (['--models', 'iformer_t', '--tasks', 'classifier'],
     '--reference iformer_m is not among the classifier models (iformer_t)'),
    (['--models', 'iformer_t', '--reference', 'iformer_t'],
     '--reference iformer_t is not among the backbone models (none)'),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / 'pareto'
    assert bench_main(['pareto', *argv, '--out-dir', str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'benchmark.py pareto: error: {message}') and err.count('\n') == 1
    assert not out.exists()
