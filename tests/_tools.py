"""``load_tool(name)`` for the tests: the module behind ``tools/<name>.py`` — :mod:`mixseg.cli.<name>` for the
commands that live there, else the script itself loaded by path (tools/ on sys.path would let tools/test.py and
tools/tables.py shadow the stdlib's ``test`` and PyTables' ``tables``). Library code never loads a tool."""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_tool(name: str):
    from mixseg.cli import COMMANDS, command
    if name in COMMANDS:
        return command(name)
    key = f'_mixseg_tools_{name}'
    if key not in sys.modules:
        path = ROOT / 'tools' / f'{name}.py'
        spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[key]
            raise
    return sys.modules[key]
