"""Level table: completeness, sources, derivation rules, overrides and validation."""
import math

import pytest

from vertebrafe.anatomy import levels as lv
from vertebrafe.errors import InputError

# reference/levels.md section 5: VB wedge (+ lordotic) and central height Hm per level
TABLE_WEDGE_HM = {"T10": (-3.5, 21.5), "T11": (-4.4, 21.9), "T12": (-4.2, 22.5), "L1": (-3.4, 23.5),
                  "L2": (-1.7, 24.3), "L3": (0.0, 24.5), "L4": (2.0, 24.1), "L5": (6.0, 23.6)}


def test_order_and_names():
    assert lv.vertebra_names() == ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5")
    assert lv.disc_names()[0] == "T10-T11" and lv.disc_names()[-1] == "L5-S1"
    assert lv.level_order(["L2", "T12", "L1"]) == ("T12", "L1", "L2")
    assert lv.level_order("L2-T12") == ("T12", "L1", "L2")
    assert lv.segment_names("T12-L2") == ("T12", "T12-L1", "L1", "L1-L2", "L2")
    assert lv.adjacent_discs("L5") == ("L4-L5", "L5-S1")
    with pytest.raises(InputError, match="not consecutive"):
        lv.level_order(["T12", "L2"])
    with pytest.raises(InputError, match="repeats"):
        lv.level_order(["L1", "L1"])
    with pytest.raises(InputError, match="'C5'"):
        lv.level_order(["C5"])


def test_every_value_has_a_known_source():
    for table in (lv.VERTEBRA_TABLE, lv.DISC_TABLE):
        for name, row in table.items():
            for field, (value, src) in row.items():
                assert math.isfinite(value)
                assert src in lv.SOURCES, (name, field, src)
    assert lv.VERTEBRA_TABLE["L5"]["superior_depth"] == (35.7, "CB21")
    assert lv.VERTEBRA_TABLE["T12"]["superior_width"] == (39.2, "P91")
    assert lv.DISC_TABLE["L5-S1"]["segmental_angle"] == (21.6, "SR22")


@pytest.mark.parametrize("name", list(TABLE_WEDGE_HM))
def test_derivation_rules_reproduce_the_reference_table(name):
    d = lv.level_dimensions(name)
    wedge, hm = TABLE_WEDGE_HM[name]
    assert d.wedge == pytest.approx(wedge, abs=0.1)
    assert d.central_height == pytest.approx(hm, abs=0.1)


def test_disc_heights_reproduce_the_reference_table():
    from vertebrafe.anatomy.disc import disc_rim_heights, disc_wedge

    for name in lv.disc_names()[:-1]:
        up, lo = name.split("-")
        d, U, L = lv.level_dimensions(name), lv.level_dimensions(up), lv.level_dimensions(lo)
        w_ref, central, ant, post, depth = lv.DISC_REFERENCE[name]
        assert disc_wedge(d, U) == pytest.approx(w_ref, abs=0.1)
        a, p = disc_rim_heights(d, L, U)
        assert a == pytest.approx(ant, abs=0.15) and p == pytest.approx(post, abs=0.15)
        assert d.rim_height + U.inferior_concavity + L.superior_concavity == pytest.approx(central, abs=0.15)


def test_overrides_and_scale():
    d = lv.level_dimensions("L1", anterior_height=20.0)
    assert d.anterior_height == 20.0 and d.sources["anterior_height"] == "override"
    assert d.sources["posterior_height"] == "B24"
    s = lv.level_dimensions("L1", scale=0.9)
    base = lv.level_dimensions("L1")
    assert s.superior_width == pytest.approx(0.9 * base.superior_width)
    assert s.wedge == pytest.approx(base.wedge)                    # angles unchanged by scale
    disc = lv.level_dimensions("L1-L2", scale=0.9, nucleus_fraction=0.3)
    assert disc.segmental_angle == 1.2 and disc.rim_height == pytest.approx(0.9 * 6.9)
    assert disc.nucleus_fraction == 0.3
    assert lv.level_dimensions("T9-T10").segmental_angle == lv.level_dimensions("T10-T11").segmental_angle


def test_validation_messages_name_key_value_and_range():
    with pytest.raises(InputError, match=r"anterior_height = 100.*\[5.0, 60.0\]"):
        lv.level_dimensions("L1", anterior_height=100)
    with pytest.raises(InputError, match=r"'height'.*allowed.*anterior_height"):
        lv.level_dimensions("L1", height=20)
    with pytest.raises(InputError, match=r"'L7'.*allowed"):
        lv.level_dimensions("L7")
    with pytest.raises(InputError, match=r"scale = 3.*\(0.5, 2.0\)"):
        lv.level_dimensions("L1", scale=3)
    with pytest.raises(InputError, match="nucleus_fraction = 0.95"):
        lv.level_dimensions("L1-L2", nucleus_fraction=0.95)
    with pytest.raises(InputError, match="concavity"):
        lv.level_dimensions("L1", superior_concavity=6.0, inferior_concavity=6.0, anterior_height=15,
                            posterior_height=15)
    with pytest.raises(InputError, match="not a number"):
        lv.level_dimensions("L1", anterior_height="tall")
