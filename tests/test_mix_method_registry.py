"""Issue 23 item 3: one place knows the mixing methods (pretrain/mix/methods.py). Each method registers itself next
to its code; the recipes' backbone-file tag, the tables' titles and row order, the planner's method list and the
figures' method-of-a-config read it from there, and a method of the user's own shows up wherever they ask."""
import pytest

from pretrain.mix import methods as registry
from pretrain.mix.methods import MixMethod, get_mix_method, list_mix_methods, method_title, register_mix_method


def test_the_papers_methods_in_the_papers_order():
    assert [m.name for m in list_mix_methods(papers_only=True)] == ['baseline', 'transmix', 'mixpro', 'tokenmix']
    assert [m.title for m in list_mix_methods(papers_only=True)] == ['baseline', 'TransMix', 'MixPro', 'TokenMix']
    assert get_mix_method('transmix').needs and get_mix_method('baseline').needs is None


def test_the_consumers_read_the_registry():
    import pretrain.mixers as mixers
    from mixseg.reproduce.plan import METHODS
    from mixseg.tables.published import METHOD_TITLES, TABLE_E
    from pretrain.viz.models import _method_of_recipe
    assert METHODS == tuple(m.name for m in list_mix_methods(papers_only=True)) == tuple(METHOD_TITLES)
    for m in list_mix_methods(papers_only=True):   # the recipe a config names -> the method its backbone records
        assert getattr(mixers, m.recipe)(num_classes=10).recipe == m.name
        assert _method_of_recipe(m.recipe) == m.name
    assert [r.label[1] for r in TABLE_E.rows] == [m.title for m in list_mix_methods(papers_only=True)]


def test_a_users_method_is_listed_after_the_papers_and_titled_in_the_tables(monkeypatch):
    from mixseg.tables.published import METHOD_TITLES, describe_key, row_key, with_method
    monkeypatch.setattr(registry, '_METHODS', dict(registry._METHODS))
    mine = register_mix_method(MixMethod('mymix', 'MyMix', recipe='mymix_recipe'))
    assert register_mix_method(mine) is mine   # the same record again: harmless (a module imported twice)
    assert list_mix_methods()[-1] is mine and mine not in list_mix_methods(papers_only=True)
    assert with_method('DeiT-S', 'mymix') == 'DeiT-S + MyMix' and method_title('mymix') == 'MyMix'
    assert describe_key(row_key(model='deit-s', method='mymix', decoder='mask')) == 'deit-s + MyMix decoder=mask'
    assert 'mymix' not in METHOD_TITLES   # published rows: the papers' methods only
    with pytest.raises(ValueError, match="'mymix' is registered already"):
        register_mix_method(MixMethod('mymix', 'Other', recipe='other_recipe'))
    with pytest.raises(KeyError, match="unknown mixing method 'nomix'.*register_mix_method"):
        get_mix_method('nomix')


def test_the_refusal_of_a_model_without_class_token_comes_from_the_mixer():
    from pretrain.mix import MaskMix, TokenMix, TransMix
    for cls in (TransMix, MaskMix, TokenMix):
        assert 'class-token attention' in cls.CLASS_ATTENTION_NEED
