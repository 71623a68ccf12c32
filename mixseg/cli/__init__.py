"""The command lines the reproduction runs inside its worker processes, as library code: ``main(argv)`` and
``parse_args(argv)`` of :mod:`.train`, :mod:`.test`, :mod:`.make_label_maps`, :mod:`.robustness`,
:mod:`.reproduce` and the figure commands (:mod:`.visualize_attention`, :mod:`.occlusion_robustness`,
:mod:`.visualize_mix`). ``tools/<name>.py`` is each one's script (a few lines calling ``main()``). Importing a module
here changes nothing global; ``main`` installs the patches (:func:`mixcore.patches.install`) where it needs them.
"""
import importlib

#: the tools whose main a plan's step may run in-process (``Step.script``)
COMMANDS = ('train', 'test', 'make_label_maps', 'robustness', 'reproduce', 'visualize_attention',
            'occlusion_robustness', 'visualize_mix')


def command(name: str):
    """The module of command ``name`` (one of :data:`COMMANDS`)."""
    if name not in COMMANDS:
        raise ValueError(f'{name!r}: not a command of mixseg.cli ({", ".join(COMMANDS)})')
    return importlib.import_module(f'{__name__}.{name}')
