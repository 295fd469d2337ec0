import numpy as np
import pytest

from appshot_model.context.selection import select_attributes, spearman_table
from appshot_model.core.errors import AppshotInputError


def _constructed_case():
    """Two cities; 'rank_up' is a monotone function of traffic, 'rank_down' its reverse on one city
    only, 'noise' unrelated, 'flat' constant."""
    rng = np.random.default_rng(3)
    contexts, traffic = {}, {}
    for city, sign in (("a", 1.0), ("b", -1.0)):
        base = rng.random((6, 7))
        traffic[city] = np.stack([base, base ** 2])  # two services, same ranks
        contexts[city] = np.stack([
            np.exp(base),                 # monotone increasing: SCC +1
            sign * base,                  # +1 in city a, -1 in city b: average 0, |average| 1
            rng.random((6, 7)),           # unrelated
            np.full((6, 7), 2.0),         # constant: undefined
        ])
    return contexts, traffic, ["rank_up", "rank_flip", "noise", "flat"], ["s1", "s2"]


def test_spearman_table_values():
    contexts, traffic, attributes, services = _constructed_case()
    table = spearman_table(contexts, traffic, attributes, services)
    assert table.shape == (4, 4)
    np.testing.assert_allclose(table["rank_up"], 1.0)
    np.testing.assert_allclose(table.loc["a", "rank_flip"], 1.0)
    np.testing.assert_allclose(table.loc["b", "rank_flip"], -1.0)
    assert table["flat"].isna().all()
    assert table["noise"].abs().max() < 0.6


def test_select_attributes_uses_average_absolute_scc():
    contexts, traffic, attributes, services = _constructed_case()
    table = spearman_table(contexts, traffic, attributes, services)
    selected, average = select_attributes(table, threshold=0.8)
    assert selected == ["rank_up", "rank_flip"]
    assert average["rank_flip"] == pytest.approx(0.0)
    with pytest.raises(AppshotInputError, match="no attribute reaches"):
        select_attributes(table.drop(columns=["rank_up", "rank_flip"]), threshold=0.9)


def test_spearman_table_rejects_mismatched_cities():
    contexts, traffic, attributes, services = _constructed_case()
    del traffic["b"]
    with pytest.raises(AppshotInputError, match="differ"):
        spearman_table(contexts, traffic, attributes, services)
