"""The config an mmengine checkpoint stores (``meta['cfg']``), read as data, never executed.

A checkpoint is untrusted input; ``Config.fromstring`` would run the stored text. Used by the export tool
(:mod:`pretrain.export`) and by the figure tools (:mod:`mixseg.viz.models`) to rebuild a stage-1 classifier
from its training checkpoint.
"""
from __future__ import annotations


def plain_config(text: str, source: str):
    """The config mmengine stores in a checkpoint (``meta['cfg']``, its ``pretty_text``), read as data.

    ``Config.fromstring`` would execute the text, and a checkpoint is untrusted input; the stored text is
    only assignments of literals and ``dict(...)`` calls, which are evaluated here without running anything
    (nothing in mmengine parses a config without executing it). Anything else is refused.
    """
    import ast

    from mmengine.config import Config

    from mixseg.checkpoint import CheckpointError

    class _DictCalls(ast.NodeTransformer):
        def visit_Call(self, node):
            self.generic_visit(node)
            # dict(k=v, ...) and dict({...}) — pretty_text writes non-identifier keys the second way
            if (isinstance(node.func, ast.Name) and node.func.id == 'dict' and all(kw.arg for kw in node.keywords)
                    and (not node.args or (len(node.args) == 1 and isinstance(node.args[0], ast.Dict)))):
                inner = node.args[0] if node.args else ast.Dict(keys=[], values=[])
                return ast.Dict(keys=inner.keys + [ast.Constant(kw.arg) for kw in node.keywords],
                                values=inner.values + [kw.value for kw in node.keywords])
            return node

    cfg = {}
    try:
        for stmt in ast.parse(text).body:
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)):
                raise ValueError(f'line {stmt.lineno} is not a plain assignment')
            value = _DictCalls().visit(stmt.value)
            try:
                cfg[stmt.targets[0].id] = ast.literal_eval(value)
            except ValueError as e:
                raise ValueError(f'line {stmt.lineno} ({stmt.targets[0].id} = ...) is not plain data') from e
    except (SyntaxError, ValueError) as e:
        raise CheckpointError(f'{source}: the stored config is not plain data and is not executed ({e}); '
                              f'pass the pretraining config with --config') from e
    return Config(cfg)
