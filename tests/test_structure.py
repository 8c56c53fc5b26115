"""The package's shape: no import cycles (not even behind function-level imports), every module
importable, and no code or doc that points outside the repository or at issue numbers."""
import ast
import importlib
import re
from pathlib import Path
from typing import Dict, List, Set

from .helpers import REPO

PKG = REPO / 'iformer_mm'


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _modules() -> Dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob('*.py'))}


def import_graph() -> Dict[str, Set[str]]:
    """Module -> the package modules it imports, at module level *and* inside functions."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == '__init__.py' else name.rsplit('.', 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split('.')[:len(package.split('.')) - node.level + 1]
                    target = '.'.join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ''
                for alias in node.names:  # `from pkg import submodule` imports the submodule
                    sub = f'{target}.{alias.name}'
                    dep = sub if sub in modules else target
                    if dep in modules and dep != name:
                        deps.add(dep)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in modules and a.name != name}
        graph[name] = deps
    return graph


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = 'open'
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 'open':
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 'done'

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return cycles


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == [['a', 'b', 'c', 'a']]
    assert find_cycles({'a': {'b'}, 'b': set()}) == []


def test_no_import_cycles():
    graph = import_graph()
    assert 'iformer_mm.models.backbones.iformer_keys' in graph['iformer_mm.models.backbones.iformer']
    cycles = find_cycles(graph)
    assert not cycles, '\n'.join(' -> '.join(c) for c in cycles)


def test_every_module_imports():
    for name in _modules():  # optional runtimes (coremltools, onnx) are imported lazily inside
        importlib.import_module(name)


def test_the_repository_stands_alone():
    """Users never have the steering folder beside their clone, and issue numbers mean nothing
    to them: code, configs, tools and docs must not point at either."""
    offenders = []
    for path in [*REPO.glob('iformer_mm/**/*.py'), *REPO.glob('tools/*'), *REPO.glob('configs/**/*.py'),
                 *REPO.glob('tests/*.py'), *REPO.glob('docs/*.md'), REPO / 'README.md',
                 *REPO.glob('benchmarks/*.md')]:
        if path.name == 'test_structure.py' or not path.is_file():
            continue
        text = path.read_text(errors='replace')
        for pattern in (r'IFORMER_SPEC', r'\.\./shared/(?!wheels)', r'[Ii]ssue #\d+'):
            for m in re.finditer(pattern, text):
                offenders.append(f'{path.relative_to(REPO)}: {m.group(0)}')
    assert not offenders, offenders
