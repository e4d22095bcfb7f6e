"""Range-of-motion harness (vertebrafe.validation.rom_rows, benchmarks/validation_rom.py): the verdicts
of the comparison, and the pure-moment response of the fibre-reinforced disc on a coarse mesh."""
import numpy as np
import pytest

import vertebrafe as vf
from vertebrafe.errors import InputError
from vertebrafe.loads import Load
from vertebrafe.simulate import simulate
from vertebrafe.validation import ROM_MODES, ROM_REFERENCES, rom_rows

H = 6.0


def _published(scale=1.0, specimen="disc"):
    """Rotations equal to ``scale`` x the own values of every reference of ``specimen``."""
    out = {}
    for r in (r for r in ROM_REFERENCES if r.specimen == specimen):
        for mode, (lo, hi, _) in r.values.items():
            if r.moments[0] is not None:
                out[(mode, r.moments[0])] = scale * lo
            out[(mode, r.moments[1])] = scale * hi
    return out


def test_rom_rows_verdicts():
    """The published values themselves are inside every band that exists; three times them is outside the
    mean +- SD bands and the flexibility span; medians without a spread get no verdict."""
    rows = rom_rows(_published(1.0))
    assert len(rows) == 2 * len(ROM_MODES) * len([r for r in ROM_REFERENCES if r.specimen == "disc"])
    for row in rows:
        assert row["inside"] is (None if row["band"] is None else True)
    far = rom_rows(_published(3.0))
    assert all(row["inside"] is False for row in far if row["band"] is not None)
    with pytest.raises(InputError, match="specimen"):
        rom_rows(_published(1.0), specimen="spine")


def test_intact_rows_without_a_lower_moment():
    """Intact references with the rotation at one moment only (Yamamoto 1989, L4-5 at 10 N m, means without
    a spread; Niosi 2006, L3-L4 at 7.5 N m, mean and SD): one rotation row per reference and mode at its
    moment, no flexibility row; a verdict only where an SD is published (the published means themselves are
    inside, three times them outside); the rows report the model's magnitude whatever its sign."""
    refs = {r.name: r for r in ROM_REFERENCES if r.specimen == "intact"}
    assert refs and all(r.moments[0] is None for r in refs.values())
    rot = {k: -v for k, v in _published(1.0, "intact").items()}
    rows = rom_rows(rot, specimen="intact")
    assert [row["quantity"] for row in rows] == ["rotation"] * len(ROM_MODES) * len(refs)
    assert {row["moment"] for row in rows} == {7.5, 10.0}
    for row in rows:
        ref = refs[row["reference"]]
        assert row["moment"] == ref.moments[1]
        assert row["found"] == pytest.approx(row["published"])
        assert row["inside"] is (None if ref.values[row["mode"]][2] is None else True)
    far = rom_rows(_published(3.0, "intact"), specimen="intact")
    assert all(row["inside"] is (None if row["band"] is None else False) for row in far)


@pytest.fixture(scope="module")
def disc_only():
    """The disc-only specimen of the in vitro tests, from stress-free discs (no swelling pressure at rest: the
    response to a pure moment is then positively homogeneous, and the documented rows are of p = 0)."""
    return vf.segment(["L4", "L5"], bmd=120.0, element_size=H, fibres=dict(law="linear"), posterior=False,
                      nucleus_prepressure=0.0)


def test_pure_moment_rotations_are_positively_homogeneous(disc_only):
    """Linear tension-only fibres without slack: the active set does not depend on the size of a pure
    moment, so every rotation doubles exactly when the moment doubles (to the solver tolerance), in bending
    and in torsion."""
    modes = ["extension", "axial_rotation"]
    loads = [Load(**{ROM_MODES[m][0]: M}) for m in modes for M in (3.75, 7.5)]
    res = simulate(disc_only, loads, factor_of_risk=False)
    for i, m in enumerate(modes):
        r1, r2 = res[2 * i], res[2 * i + 1]
        a1 = r1.value(ROM_MODES[m][1], level="L4-L5", region="disc")
        a2 = r2.value(ROM_MODES[m][1], level="L4-L5", region="disc")
        assert abs(a2) > 0.5
        assert a2 == pytest.approx(2.0 * a1, rel=1e-5)
        assert np.array_equal(r1.solution.spring_active["annulus_fibres"], r2.solution.spring_active["annulus_fibres"])


def test_toe_region_fibres_stiffen_with_the_moment():
    """Published trend (in vitro discs stiffen with rotation: Heuer 2007's disc-only medians rise from 6.64 to
    10.11 deg in flexion and from 2.70 to 5.73 deg in torsion as the moment triples from 2.5 to 7.5 N m):
    with the default toe-region fibres, tripling the moment less than triples the rotation, in bending and
    in torsion; the harness therefore runs every published moment instead of scaling one."""
    seg = vf.segment(["L4", "L5"], bmd=120.0, element_size=H, fibres=True, posterior=False)
    modes = ["flexion", "axial_rotation"]
    loads = [Load(**{ROM_MODES[m][0]: M}) for m in modes for M in (2.5, 7.5)]
    res = simulate(seg, loads, factor_of_risk=False)
    for i, m in enumerate(modes):
        a1 = abs(res[2 * i].value(ROM_MODES[m][1], level="L4-L5", region="disc"))
        a2 = abs(res[2 * i + 1].value(ROM_MODES[m][1], level="L4-L5", region="disc"))
        assert a1 > 0.2 and 1.5 * a1 < a2 < 2.95 * a1
