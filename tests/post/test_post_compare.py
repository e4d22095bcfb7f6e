"""Comparison tables and the naming of levels around the treated one."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from vertebrafe.errors import InputError
from vertebrafe.post import compare, relations, treated_level

LEVELS = ("T12", "L1", "L2", "L3")


def _op(kind, level):
    return SimpleNamespace(kind=kind, level=level)


def test_relations_around_the_treated_level():
    rel = relations(LEVELS, "L1")
    assert rel["L1"] == "treated"
    assert rel["T12"] == "adjacent_superior" and rel["L2"] == "adjacent_inferior"
    assert rel["T12-L1"] == "disc_superior" and rel["L1-L2"] == "disc_inferior"
    assert rel["L3"] == "remote" and rel["L2-L3"] == "remote" and rel["segment"] == "segment"
    top = relations(LEVELS, "T12")
    assert top["L1"] == "adjacent_inferior" and "adjacent_superior" not in top.values()
    assert relations(LEVELS, None)["L1"] == ""
    with pytest.raises(InputError, match="L5"):
        relations(LEVELS, "L5")


def test_treated_level_prefers_the_last_treatment():
    assert treated_level(SimpleNamespace(levels=LEVELS)) is None
    assert treated_level(SimpleNamespace(history=(_op("fracture", "L1"),))) == "L1"
    h = (_op("fracture", "L1"), _op("fracture", "L2"), _op("vertebroplasty", "L1"))
    assert treated_level(SimpleNamespace(history=h)) == "L1"
    h = (_op("fracture", "L1"), _op("kyphoplasty", "L2"), _op("fracture", "L3"))
    assert treated_level(SimpleNamespace(history=h)) == "L2"


def _table(case, values):
    rows = [dict(case=case, level=lv, region=r, metric=m, value=v, unit=u) for lv, r, m, v, u in values]
    return pd.DataFrame(rows)


def test_compare_ratio_change_and_labels():
    a = _table("vp", [("L1", "bone", "von_mises_mean", 2.0, "MPa"), ("L2", "bone", "von_mises_mean", 3.0, "MPa"),
                      ("segment", "segment", "axial_stiffness", 1200.0, "N/mm"), ("L3", "bone", "only_here", 1.0, "-"),
                      ("L2", "bone", "yield_fraction", 0.01, "-")])
    b = _table("intact", [("L1", "bone", "von_mises_mean", 4.0, "MPa"), ("L2", "bone", "von_mises_mean", 2.0, "MPa"),
                          ("segment", "segment", "axial_stiffness", 1000.0, "N/mm"),
                          ("L2", "bone", "yield_fraction", 0.0, "-")])
    c = compare(a, b, LEVELS, "L1")
    assert len(c) == 4                                     # the metric only in one table is dropped
    row = c.set_index(["level", "metric"])
    assert row.loc[("L1", "von_mises_mean"), "ratio"] == pytest.approx(0.5)
    assert row.loc[("L1", "von_mises_mean"), "change"] == pytest.approx(-2.0)
    assert row.loc[("L2", "von_mises_mean"), "relation"] == "adjacent_inferior"
    assert row.loc[("segment", "axial_stiffness"), "ratio"] == pytest.approx(1.2)
    assert np.isnan(row.loc[("L2", "yield_fraction"), "ratio"])             # reference 0
    assert row.loc[("L2", "yield_fraction"), "change"] == pytest.approx(0.01)
    assert set(c["case"]) == {"vp"} and set(c["reference_case"]) == {"intact"}
