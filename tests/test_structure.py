"""The package's shape: its folders import one way (lowest layer first, function-level imports
counted), no module or folder cycles, the developer tooling stays outside it, every module
imports, and no code or doc points outside the repository or at issue numbers."""
import ast
import importlib
import re
from pathlib import Path
from typing import Dict, List, Set

from .helpers import REPO

PKG = REPO / 'iformer_mm'

#: the package's folders (and root modules), lowest layer first: each imports only its own
#: modules and those of earlier layers; the package's own __init__ (importing it registers
#: everything) sits above them all
LAYERS = (
    ('version',),
    ('registry', 'utils'),
    ('checkpoint',),
    ('models', 'engine'),
    ('flops',),
    ('zoo',),
    ('deploy',),
    ('apis',),
)
#: developer tooling in the repository that the library must never import
REPO_ONLY = ('benchmarks', 'demo', 'tests', 'tools')


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _modules() -> Dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob('*.py'))}


def _imported_names(path: Path) -> Set[str]:
    """Top-level names of every absolute import in a file (function-level ones included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split('.')[0])
        elif isinstance(node, ast.Import):
            names |= {a.name.split('.')[0] for a in node.names}
    return names


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


def unit_of(module: str) -> str:
    """'iformer_mm.deploy.targets.base' -> 'deploy'; the package itself -> '__init__'."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else '__init__'


def unit_graph(graph: Dict[str, Set[str]]) -> Dict[str, Set[str]]:
    """Folder (or root module) -> the other folders its modules import."""
    units: Dict[str, Set[str]] = {}
    for module, deps in graph.items():
        units.setdefault(unit_of(module), set()).update(
            unit_of(d) for d in deps if unit_of(d) != unit_of(module))
    return units


def layer_violations(units: Dict[str, Set[str]], layers=LAYERS) -> List[str]:
    """Each import of a folder that is not in an earlier layer, as 'a -> b'."""
    rank = {unit: i for i, layer in enumerate(layers) for unit in layer}
    rank['__init__'] = len(layers)
    problems = [f'{u} is in no layer: add it to LAYERS' for u in units if u not in rank]
    for unit, deps in sorted(units.items()):
        for dep in sorted(deps):
            if unit in rank and rank.get(dep, len(layers)) >= rank[unit]:
                problems.append(f'{unit} -> {dep}')
    return problems


def test_the_layer_check_finds_a_folder_loop_and_a_peer_import():
    # a module-level graph without cycles can still hide a folder-level one
    graph = {'p.a.x': {'p.b.y'}, 'p.b.y': set(), 'p.b.z': {'p.a.w'}, 'p.a.w': set()}
    assert not find_cycles(graph)
    units = unit_graph(graph)
    assert find_cycles(units) == [['a', 'b', 'a']]
    assert layer_violations(units, (('b',), ('a',))) == ['b -> a']
    assert layer_violations({'m': {'e'}, 'e': set()}, (('m', 'e'),)) == ['m -> e']
    assert layer_violations({'new': set()}, ()) == ['new is in no layer: add it to LAYERS']


def test_folders_import_one_way():
    units = unit_graph(import_graph())
    assert units['deploy'] and units['apis'], units  # the graph sees the package's imports
    assert not find_cycles(units), find_cycles(units)
    assert not layer_violations(units), layer_violations(units)


def test_the_library_never_imports_the_repository_tooling():
    offenders = [f'{path.relative_to(REPO)} imports {name}' for path in sorted(PKG.rglob('*.py'))
                 for name in sorted(_imported_names(path) & set(REPO_ONLY))]
    assert not offenders, offenders


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
        if not name.endswith('__main__'):  # runs the command when imported
            importlib.import_module(name)


def test_the_repository_stands_alone():
    """Users never have the steering folder beside their clone, and issue numbers mean nothing
    to them: code, configs, tools and docs must not point at either."""
    offenders = []
    for path in [*REPO.glob('iformer_mm/**/*.py'), *REPO.glob('tools/*'), *REPO.glob('configs/**/*.py'),
                 *REPO.glob('benchmarks/*.py'), *REPO.glob('demo/**/*.py'),
                 *REPO.glob('tests/*.py'), *REPO.glob('docs/*.md'), REPO / 'README.md',
                 *REPO.glob('benchmarks/*.md')]:
        if path.name == 'test_structure.py' or not path.is_file():
            continue
        text = path.read_text(errors='replace')
        for pattern in (r'IFORMER_SPEC', r'\.\./shared/(?!wheels)', r'[Ii]ssue #\d+'):
            for m in re.finditer(pattern, text):
                offenders.append(f'{path.relative_to(REPO)}: {m.group(0)}')
    assert not offenders, offenders
