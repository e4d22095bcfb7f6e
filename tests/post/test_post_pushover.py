"""Pushover strength (elastic-perfectly-plastic cells, 0.2 % offset) against closed forms and the lower-bound
property that the linear first-yield criterion lacks (docs/validation.md, "Strength after cement")."""
import numpy as np
import pytest

from vertebrafe.elasticity import isotropic
from vertebrafe.errors import InputError
from vertebrafe.mesh.box import box
from vertebrafe.post.pushover import pushover

E, YC, YT = 300.0, 0.0077, 0.0070
A, L = 20.0 * 20.0, 25.0


def _column(moduli, shape=(2, 2, 4)):
    """A 20 x 20 x 25 mm box of ``shape`` cells; ``moduli`` per cell layer (z), nu = 0 (uniaxial stress)."""
    m = box((20.0, 20.0, L), shape)
    nz = shape[2]
    layer = np.repeat(np.arange(nz), shape[0] * shape[1])
    C = isotropic(np.asarray(moduli, dtype=float)[layer], np.zeros(m.n_cells))
    return m, C


def test_uniform_column_strength_is_the_yield_stress_times_the_area():
    """nu = 0 and a uniform column: uniaxial stress everywhere, every cell yields at the same plate travel,
    the force plateaus at E * yield strain * A, which is then also the 0.2 % offset strength."""
    m, C = _column([E] * 4)
    p = pushover(m, C, m.node_sets["zmin"], m.node_sets["zmax"], L, YC, YT, solver="direct")
    assert p.strength == pytest.approx(E * YC * A, rel=1e-6)
    assert p.stiffness == pytest.approx(E * A / L, rel=1e-9)
    assert p.first_yield_strain == pytest.approx(YC, rel=1e-9)
    assert p.yielded_fraction == pytest.approx(1.0)


def test_series_column_is_as_strong_as_its_weakest_layer():
    """A stiff layer in series with a weak one: the linear first yield comes at the weak layer's yield
    strain, while the limit load is that of the weak layer (same stress in every layer), whatever the
    stiff layer's modulus: stiffening a part of a series column never lowers its pushover strength."""
    weak = 0.25 * E
    m, C = _column([weak, weak, weak, weak])
    base = pushover(m, C, m.node_sets["zmin"], m.node_sets["zmax"], L, YC, YT, solver="direct")
    m2, C2 = _column([weak, 12.0 * E, 12.0 * E, weak])
    stiff = pushover(m2, C2, m2.node_sets["zmin"], m2.node_sets["zmax"], L, YC, YT, solver="direct")
    assert base.strength == pytest.approx(weak * YC * A, rel=1e-6)
    assert stiff.strength == pytest.approx(weak * YC * A, rel=5e-3)     # the secant iteration's tolerance
    assert stiff.stiffness > 1.9 * base.stiffness            # series: 1 / (0.5 / weak + 0.5 / (12 E))
    # the first yield comes earlier in apparent strain (the weak layers take the strain)
    assert stiff.first_yield_strain < 0.6 * base.first_yield_strain


def test_pushover_input_errors():
    m, C = _column([E] * 4)
    with pytest.raises(InputError, match="height"):
        pushover(m, C, m.node_sets["zmin"], m.node_sets["zmax"], 0.0, YC, YT)
    with pytest.raises(InputError, match="rtol_force"):
        pushover(m, C, m.node_sets["zmin"], m.node_sets["zmax"], L, YC, YT, rtol_force=0.5)


def test_simulate_factor_of_risk_with_the_pushover_strength():
    """simulate(strength="pushover") adds plate_strength_pushover and divides the load by it; two loads of
    one call share the strength; a bad criterion name is refused with the allowed ones."""
    import vertebrafe as vf
    from vertebrafe.loads import Load

    seg = vf.segment(["L1"], bmd=80.0, element_size=6.0)
    a, b = vf.simulate(seg, [Load(compression=500.0), Load(compression=1000.0)], strength="pushover",
                       solver="direct")
    S = a.value("plate_strength_pushover", "L1", "vertebra")
    assert a.value("factor_of_risk", "L1", "vertebra") == pytest.approx(500.0 / S, rel=1e-12)
    assert b.value("factor_of_risk", "L1", "vertebra") == pytest.approx(1000.0 / S, rel=1e-12)
    assert b.value("plate_strength_pushover", "L1", "vertebra") == S
    # VerSe19 nonlinear-FE failure loads of the L1-L2 with vBMD 60-80 mg/cm^3: 0.88-3.98 kN (test_simulate.py)
    assert 880.0 < S < 3980.0
    with pytest.raises(InputError, match="strength"):
        vf.simulate(seg, Load(compression=500.0), strength="ultimate")
