"""Six-point measurement of intact vertebrae against the anatomy's dimensions."""

import pytest

import vertebrafe as vf
from vertebrafe.clinical import Measurement, measure
from vertebrafe.clinical.measure import genant_grade
from vertebrafe.errors import InputError


def test_intact_measurement_matches_dimensions():
    seg = vf.segment("T12-L2", element_size=3.0)
    for v in seg.levels:
        d = seg.dimensions[v]
        m = measure(seg, v)
        assert isinstance(m, Measurement)
        assert m.anterior_height_mm == pytest.approx(d.anterior_height, abs=0.05)
        assert m.posterior_height_mm == pytest.approx(d.posterior_height, abs=0.05)
        assert m.middle_height_mm == pytest.approx(d.central_height, abs=0.1)
        assert m.height_loss_ratio == 0.0 and m.genant_grade == 0 and not m.fractured
        # anatomical wedge is + lordotic; the measured one is + kyphotic
        assert m.wedge_angle_deg == pytest.approx(-d.wedge, abs=0.2)
        assert m.cement_volume_mL == 0.0 and m.treatment == "none"
    # kyphotic angle of L1: from the superior endplate of T12 to the inferior endplate of L2, i.e. minus
    # the lordotic sum of the T12, L1 and L2 wedges and the two segmental disc wedges
    m = measure(seg, "L1")
    assert m.kyphotic_angle_endplates == ("T12:superior", "L2:inferior")
    lordosis = sum(seg.dimensions[v].wedge for v in seg.levels) - sum(
        r["wedge_deg"] for r in seg.geometry() if r["kind"] == "disc")
    assert m.kyphotic_angle_deg == pytest.approx(-lordosis, abs=0.3)
    d = m.as_dict()
    assert d["level"] == "L1" and isinstance(d["kyphotic_angle_endplates"], list)
    assert set(d) >= {"anterior_height_mm", "wedge_angle_deg", "kyphotic_angle_deg", "cement_volume_mL"}
    with pytest.raises(InputError, match="is a disc"):
        measure(seg, "T12-L1")
    with pytest.raises(InputError, match="known vertebrae"):
        measure(seg, "L3")


def test_genant_grade_boundaries():
    assert [genant_grade(x) for x in (0.1, 0.2, 0.249, 0.25, 0.399, 0.4, 0.6)] == [0, 1, 1, 2, 2, 3, 3]
