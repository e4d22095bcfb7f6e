"""A closed fluid-filled cavity: one uniform pressure from the change of its volume.

The cavity is bounded by quad ``faces`` of the mesh (normals outward from the fluid). Its volume
change is a linear functional of the node displacements, ``dV = sum_faces int u . n dA = g . u``
(mm^3), and a fluid of bulk modulus ``K`` (MPa) in a cavity of volume ``V`` (mm^3) has the uniform
pressure ``p = -K dV / V`` (MPa, compression positive) and the energy ``K dV^2 / (2 V)``. An ``initial_pressure`` ``p0`` (MPa, e.g. the
swelling pressure of a nucleus) makes it ``p = p0 - K dV / V``: the spring's onset is ``p0 V / K``. Its
stiffness ``(K / V) g g^T`` is a rank-one term: the fluid is exactly uniform, nearly incompressible for a
water-like ``K`` (``dV / V = -p / K``, 2e-4 at 0.5 MPa), and it does not lock, because no element
carries the incompressibility.

A :class:`FluidCavity` follows the protocol of :class:`~vertebrafe.springs.SpringSet` (one
``"linear"`` spring whose elongation is ``dV`` and whose force is ``K dV / V = -p``), so
:meth:`vertebrafe.fem.Model.add_springs` takes it and the solve treats it like a spring; its dense
rank-one stiffness is left out of the AMG hierarchy (``precondition = False``) and added to the V-cycle
exactly by the Woodbury identity (:func:`vertebrafe.fem.solvers.low_rank_corrected`).

Attributes for exporters: ``name``, ``faces (f, 4)``, ``volume`` (mm^3, reference), ``bulk_modulus``
(MPa), ``initial_pressure`` (MPa).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .elements import face_integrals
from .errors import InputError

#: Bulk modulus of water at body temperature (MPa), about 2.2 GPa.
WATER_BULK_MODULUS = 2200.0


class FluidCavity:
    """Fluid of bulk modulus ``bulk_modulus`` (MPa) filling the closed surface ``faces`` (see the module)."""

    kind = "linear"
    precondition = False

    def __init__(self, name, points, faces, volume, bulk_modulus=WATER_BULK_MODULUS, initial_pressure=0.0):
        faces = np.asarray(faces)
        if faces.ndim != 2 or faces.shape[1] != 4 or not np.issubdtype(faces.dtype, np.integer) or not faces.size:
            raise InputError(f"cavity faces have shape {faces.shape}; expected (f, 4) node indices of quads")
        if not (np.isfinite(volume) and volume > 0):
            raise InputError(f"cavity volume = {volume!r} mm^3; must be > 0")
        if not (np.isfinite(bulk_modulus) and bulk_modulus > 0):
            raise InputError(f"bulk_modulus = {bulk_modulus!r} MPa; must be > 0")
        self.name = str(name)
        self.faces = np.ascontiguousarray(faces, dtype=np.int64)
        self.volume = float(volume)
        self.bulk_modulus = float(bulk_modulus)
        _, vec = face_integrals(np.asarray(points, dtype=float), self.faces)       # (f, 4, 3)
        nodes, inv = np.unique(self.faces.ravel(), return_inverse=True)
        g = np.zeros((nodes.size, 3))
        np.add.at(g, inv, vec.reshape(-1, 3))
        closure = np.abs(g.sum(axis=0)).max() / np.abs(g).sum(axis=1).max()
        if closure > 1e-8:
            raise InputError(f"cavity {name!r}: the faces do not close a surface (sum of the normals "
                             f"{g.sum(axis=0).round(6).tolist()} mm^2)")
        self.nodes, self._g = nodes, g
        self.stiffness = np.array([self.bulk_modulus / self.volume])
        self.initial_pressure = initial_pressure
        self.active = np.ones(1, bool)

    @property
    def size(self):
        return 1

    @property
    def initial_pressure(self):
        """Pressure (MPa) of the fluid at zero volume change; the spring's onset is ``p0 V / K`` mm^3."""
        return self._initial_pressure

    @initial_pressure.setter
    def initial_pressure(self, value):
        if isinstance(value, bool) or not np.isfinite(value):
            raise InputError(f"initial_pressure = {value!r} MPa; must be a finite number")
        self._initial_pressure = float(value)
        self.onset = np.array([self._initial_pressure * self.volume / self.bulk_modulus])

    def gradient(self, n_points):
        """Sparse ``(1, 3 n_points)``: the volume change (mm^3) per node displacement."""
        cols = (3 * self.nodes[:, None] + np.arange(3)).ravel()
        return sp.csr_matrix((self._g.ravel(), (np.zeros(cols.size, np.int64), cols)), shape=(1, 3 * n_points))

    def volume_change(self, displacement):
        """Volume change ``dV`` (mm^3) for node displacements ``(n, 3)``."""
        return float(np.einsum("ki,ki->", self._g, np.asarray(displacement)[self.nodes]))

    def elongation(self, displacement):
        return np.array([self.volume_change(displacement)])

    def pressure(self, displacement):
        """Fluid pressure (MPa, compression positive)."""
        return self.initial_pressure - self.bulk_modulus * self.volume_change(displacement) / self.volume

    def wants_active(self, delta):
        return np.ones(1, bool)

    def forces(self, displacement, active=None):
        """``[K (dV - onset) / V]`` = ``[-p]`` (MPa): the spring-protocol force."""
        return np.array([-self.pressure(displacement)])

    def nodal_forces(self, displacement, n_points, active=None):
        """Internal forces ``(n, 3)`` N of the fluid on the walls' balance: ``-p int N_a n dA``."""
        out = np.zeros((n_points, 3))
        out[self.nodes] = -self.pressure(displacement) * self._g
        return out

    def __repr__(self):
        return (f"FluidCavity({self.name!r}, {self.faces.shape[0]} faces, V = {self.volume:.4g} mm^3, "
                f"K = {self.bulk_modulus:g} MPa" + (f", p0 = {self.initial_pressure:g} MPa" if self.initial_pressure else "") + ")")


def cavity_faces(cells, faces_of_cell):
    """Boundary faces ``(f, 4)`` of a set of cells (outward), given their faces in local node indices
    ``faces_of_cell (6, 4)`` (``HEX8_FACES``): the faces that no other cell of the set shares."""
    cells = np.asarray(cells)
    faces = cells[:, faces_of_cell].reshape(-1, 4)
    key = np.sort(faces, axis=1)
    _, inv, count = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    return faces[count[inv.ravel()] == 1]
