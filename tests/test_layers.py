"""The layers of the code, one way (docs/CONTRACTS.md "Layers"): ``mixcore`` (foundation) ← ``pretrain`` (stage 1)
← ``mixseg`` (stage 2 and the reproduction) ← ``tools/``. A module imports only its own package and the layers
below it — at the top of the file or inside a function, by an import statement or by
``importlib.import_module('<literal>')`` — no module of the packages loads a file of ``tools/``, and no two
modules import each other, directly or round a longer circle.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ('mixcore', 'pretrain', 'mixseg')   # each may import the ones before it
#: files of the packages that load a script as a module, and which (never one of tools/)
LOADS_A_SCRIPT = {'mixseg/backbones/vit.py': "mmseg's tools/model_converters/vit2mmseg.py (shipped as a file, not "
                                            'a module), the reference of the key-mapping parity test'}


def _module_name(path: Path) -> str:
    return '.'.join(path.relative_to(ROOT).with_suffix('').parts).removesuffix('.__init__')


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    if not level:
        return name or ''
    base = module.split('.') if is_package else module.split('.')[:-1]
    base = base[:len(base) - (level - 1)]
    return '.'.join(base + ([name] if name else []))


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every import in the file, wherever it stands."""
    module, tree = _module_name(path), ast.parse(path.read_text(), str(path))
    is_package = path.name == '__init__.py'
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node.level, node.module)
            for a in node.names:   # `from pkg import module` imports pkg.module when it is one
                sub = f'{target}.{a.name}'
                known = (ROOT / Path(*sub.split('.'))).with_suffix('.py').is_file() or \
                    (ROOT / Path(*sub.split('.')) / '__init__.py').is_file()
                out.append((node.lineno, sub if known else target))
        elif isinstance(node, ast.Call) and getattr(node.func, 'attr', getattr(node.func, 'id', None)) == \
                'import_module' and node.args and isinstance(node.args[0], ast.Constant) and \
                isinstance(node.args[0].value, str):
            out.append((node.lineno, node.args[0].value))
    return out


def _files():
    for package in LAYERS:
        yield from sorted((ROOT / package).rglob('*.py'))


def order_violations(files) -> list[str]:
    bad = []
    for path in files:
        own = LAYERS.index(path.relative_to(ROOT).parts[0])
        for line, target in imports_of(path):
            top = target.split('.')[0]
            if top == 'tools' or (top in LAYERS and LAYERS.index(top) > own):
                bad.append(f'{path.relative_to(ROOT)}:{line} imports {target}')
        text = path.read_text()
        if ('spec_from_file_location' in text or 'run_path' in text) and \
                path.relative_to(ROOT).as_posix() not in LOADS_A_SCRIPT:
            bad.append(f'{path.relative_to(ROOT)} loads a file as a module (tools are command lines, not libraries)')
    return bad


def import_graph(files) -> dict[str, set[str]]:
    names = {_module_name(p) for p in files}
    graph = {}
    for path in files:
        deps = set()
        for _, target in imports_of(path):
            while target and target not in names:   # a name inside a module: the module
                target = target.rpartition('.')[0]
            if target and target != _module_name(path):
                deps.add(target)
        graph[_module_name(path)] = deps
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            # a package's __init__ importing its own modules is how packages export, not a circle of ideas
            comp = [m for m in comp if not any(m2.startswith(m + '.') for m2 in comp)]
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_imports_go_one_way():
    bad = order_violations(list(_files()))
    assert not bad, 'imports against the layer order mixcore <- pretrain <- mixseg <- tools:\n' + '\n'.join(bad)


def test_no_import_circle():
    found = circles(import_graph(list(_files())))
    assert not found, 'modules that import each other: ' + '; '.join(' <-> '.join(c) for c in found)


@pytest.mark.parametrize('files, expect', [
    ({'mixcore/a.py': 'from pretrain import b\n', 'pretrain/b.py': ''}, 'order'),
    ({'pretrain/a.py': 'def f():\n    import mixseg.c\n', 'mixseg/c.py': ''}, 'order'),
    ({'mixcore/a.py': "import importlib\nimportlib.import_module('mixseg.c')\n", 'mixseg/c.py': ''}, 'order'),
    ({'mixseg/a.py': "import importlib.util\nimportlib.util.spec_from_file_location('t', 'tools/t.py')\n"},
     'order'),
    ({'mixseg/a.py': 'from . import b\n', 'mixseg/b.py': 'from .a import x\n', 'mixseg/__init__.py': ''}, 'circle'),
    ({'mixseg/a.py': 'from mixcore import c\n', 'mixcore/c.py': '', 'pretrain/d.py': 'import mixcore.c\n'}, None),
])
def test_the_check_finds_what_it_should(tmp_path, monkeypatch, files, expect):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(__import__(__name__), 'ROOT', tmp_path)
    paths = [tmp_path / n for n in files]
    assert bool(order_violations(paths)) == (expect == 'order')
    assert bool(circles(import_graph(paths))) == (expect == 'circle')
