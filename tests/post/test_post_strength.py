"""Single-vertebra strength between rigid plates (VerSe19-type linear strength)."""
import pytest

import vertebrafe as vf
from vertebrafe.errors import InputError
from vertebrafe.post import vertebra_strength


@pytest.fixture(scope="module")
def l1_osteoporotic():
    return vf.segment(["L1"], bmd=70.0, element_size=6.0)


def test_strength_definitions_are_consistent(l1_osteoporotic):
    vs = vertebra_strength(l1_osteoporotic, "L1")
    assert vs.height == pytest.approx(25.2, abs=1.0)
    assert vs.strength_apparent == pytest.approx(vs.stiffness * 0.002 * vs.height, rel=1e-9)
    # linear: twice the apparent strain, twice the force; the yield-volume estimate does not change
    v2 = vertebra_strength(l1_osteoporotic, "L1", apparent_yield=0.004)
    assert v2.strength_apparent == pytest.approx(2 * vs.strength_apparent, rel=1e-6)
    assert v2.strength_yield == pytest.approx(vs.strength_yield, rel=1e-6)
    # a lower yield-volume fraction or yield strain gives a lower strength
    assert vertebra_strength(l1_osteoporotic, "L1", fraction=0.005).strength_yield < vs.strength_yield
    assert vertebra_strength(l1_osteoporotic, "L1", yield_compression=0.005,
                             yield_tension=0.005).strength_yield < vs.strength_yield


def test_strength_rises_with_density():
    weak = vertebra_strength(vf.segment(["L1"], bmd=60.0, element_size=6.0), "L1")
    strong = vertebra_strength(vf.segment(["L1"], bmd=150.0, element_size=6.0), "L1")
    assert strong.stiffness > weak.stiffness and strong.strength_yield > weak.strength_yield


def test_strength_input_errors(l1_osteoporotic):
    with pytest.raises(InputError, match="level"):
        vertebra_strength(l1_osteoporotic, "L2")
    with pytest.raises(InputError, match="fraction"):
        vertebra_strength(l1_osteoporotic, "L1", fraction=1.5)
    with pytest.raises(InputError, match="elasticity"):
        vertebra_strength(vf.segment(["L1"], element_size=6.0), "L1")
