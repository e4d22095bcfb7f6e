"""Linear phantom calibration: CT numbers (HU) -> equivalent mineral density (mg/cm^3).

QCT measures bone mineral as the density of a reference material in a calibration phantom scanned with
the patient: rods of dipotassium phosphate solution (K2HPO4) or hydroxyapatite (HA) of known
concentration. Within the range of bone the CT number is linear in that concentration, so

    rho_eq (mg/cm^3) = slope * HU + intercept

with ``slope`` and ``intercept`` fitted to the rods' mean CT numbers (:meth:`Calibration.fit`,
:func:`fit_from_rods`). The result is the vBMD that :mod:`vertebrafe.materials` takes (its
``ash_per_qct`` factor converts phantom-equivalent to ash density; K2HPO4 / HA equivalents differ by
0.81-1.02 depending on the tube voltage, Goodsitt 1992, so set it for the phantom used).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["Calibration", "fit_from_rods", "PHANTOM_MATERIALS"]

PHANTOM_MATERIALS = ("K2HPO4", "hydroxyapatite")


@dataclass(frozen=True)
class Calibration:
    """``density = slope * HU + intercept`` (mg/cm^3 of ``material``-equivalent).

    ``slope`` in mg/cm^3 per HU (> 0), ``intercept`` in mg/cm^3; ``material`` ``"K2HPO4"`` or
    ``"hydroxyapatite"``; ``r2`` and ``n_rods`` describe a fit (None when given directly).
    """

    slope: float
    intercept: float
    material: str = "K2HPO4"
    r2: float | None = None
    n_rods: int | None = None

    def __post_init__(self):
        for name in ("slope", "intercept"):
            v = getattr(self, name)
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise InputError(f"calibration {name} = {v!r}; expected a number") from None
            if not np.isfinite(v):
                raise InputError(f"calibration {name} = {v!r}; expected a finite number")
            object.__setattr__(self, name, v)
        if not 0.0 < self.slope < 10.0:
            raise InputError(f"calibration slope = {self.slope!r} mg/cm^3 per HU; allowed (0, 10) "
                             f"(typical K2HPO4 calibrations: about 0.6-1.0)")
        if self.material not in PHANTOM_MATERIALS:
            raise InputError(f"calibration material = {self.material!r}; allowed: {list(PHANTOM_MATERIALS)}")

    def density(self, hu):
        """Equivalent density (mg/cm^3) of CT numbers ``hu`` (scalar or array)."""
        return self.slope * np.asarray(hu, dtype=float) + self.intercept

    def hu(self, density):
        """CT number (HU) of equivalent density ``density`` (mg/cm^3): the inverse of :meth:`density`."""
        return (np.asarray(density, dtype=float) - self.intercept) / self.slope

    @classmethod
    def fit(cls, hu, density, material="K2HPO4"):
        """Least-squares line through rod mean CT numbers ``hu`` (HU) and known ``density`` (mg/cm^3).

        Needs at least two rods of different density; ``r2`` reports the fit's coefficient of
        determination (a value below 0.99 usually means a rod region caught its wall or air).
        """
        h = np.asarray(hu, dtype=float).ravel()
        d = np.asarray(density, dtype=float).ravel()
        if h.shape != d.shape or h.size < 2:
            raise InputError(f"calibration fit: {h.size} CT numbers and {d.size} densities; give one per rod, "
                             f"at least two rods")
        if not (np.isfinite(h).all() and np.isfinite(d).all()):
            raise InputError("calibration fit: CT numbers and densities must be finite")
        if np.ptp(h) <= 0:
            raise InputError(f"calibration fit: all rods have the same CT number {h[0]:g} HU; the slope is "
                             f"undetermined")
        slope, intercept = np.polyfit(h, d, 1)
        ss = float(np.sum((d - d.mean()) ** 2))
        r2 = 1.0 - float(np.sum((d - (slope * h + intercept)) ** 2)) / ss if ss > 0 else 1.0
        return cls(float(slope), float(intercept), material, r2, int(h.size))


def fit_from_rods(ct, rods, densities, material="K2HPO4"):
    """Calibration from rod regions of a CT :class:`~vertebrafe.image.Image`.

    ``rods`` is an integer label image on the CT grid (0 = no rod) or a boolean/integer array of that
    shape; ``densities`` maps each rod label to its known equivalent density (mg/cm^3),
    ``{1: 0.0, 2: 100.0, 3: 200.0}``. Each rod's CT number is the mean over its voxels.
    """
    r = np.asarray(getattr(rods, "array", rods))
    if r.shape != ct.shape:
        raise InputError(f"rods of shape {r.shape}; expected the CT grid {ct.shape}")
    hu, dens = [], []
    for label, value in dict(densities).items():
        sel = r == label
        n = int(np.count_nonzero(sel))
        if n == 0:
            raise InputError(f"rod label {label!r} has no voxels in the rod image; labels present: "
                             f"{sorted(int(v) for v in np.unique(r) if v)}")
        hu.append(float(ct.array[sel].mean()))
        dens.append(float(value))
    return Calibration.fit(hu, dens, material)
