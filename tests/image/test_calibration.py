"""Linear phantom calibration HU -> equivalent mineral density."""
import numpy as np
import pytest

from vertebrafe.errors import InputError
from vertebrafe.image import Calibration, fit_from_rods, phantom


def test_fit_recovers_an_exact_line_and_inverts():
    hu = np.array([-2.0, 60.0, 130.0, 260.0])
    cal = Calibration.fit(hu, 0.8 * hu + 3.0)
    assert cal.slope == pytest.approx(0.8) and cal.intercept == pytest.approx(3.0) and cal.r2 == pytest.approx(1.0)
    assert cal.hu(cal.density(123.0)) == pytest.approx(123.0)


@pytest.mark.parametrize("kw, match", [
    (dict(hu=[10.0], density=[5.0]), "at least two rods"),
    (dict(hu=[10.0, 10.0], density=[0.0, 100.0]), "same CT number"),
])
def test_fit_errors(kw, match):
    with pytest.raises(InputError, match=match):
        Calibration.fit(**kw)


def test_bad_slope_and_material():
    with pytest.raises(InputError, match="slope = -1.0"):
        Calibration(-1.0, 0.0)
    with pytest.raises(InputError, match="material = 'CaCO3'"):
        Calibration(0.8, 0.0, "CaCO3")


def test_rods_of_a_noisy_phantom_give_its_calibration():
    ph = phantom("L1", bmd=80.0, spacing=1.5, noise=20.0, margin=2.0)
    cal = fit_from_rods(ph.ct, ph.rods, ph.rod_densities)
    assert cal.n_rods == 4 and cal.r2 > 0.999
    assert cal.slope == pytest.approx(ph.calibration.slope, rel=0.02)
    assert cal.density(ph.calibration.hu(100.0)) == pytest.approx(100.0, abs=2.0)
    with pytest.raises(InputError, match="rod label 9 has no voxels"):
        fit_from_rods(ph.ct, ph.rods, {9: 0.0, 1: 50.0})
