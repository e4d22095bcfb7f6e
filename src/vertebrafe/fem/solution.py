"""The result of a solve: displacements, reactions, plate motion, strains, stresses and energies.

Units: mm, N, MPa; strain energy density in mJ/mm^3 (= MPa). Output tensors are in Voigt order
xx, yy, zz, xy, yz, xz with *tensor* shear components (eps_xy = gamma_xy / 2), as ParaView expects.
Derived fields are computed on first access and cached. Strains and stresses of cells with
incompatible modes include the modes, recovered per cell as alpha = -Kaa^-1 Kau u_e.
"""
from functools import cached_property

import numpy as np
from numba import prange

from ..elasticity import voigt_to_tensor
from ..errors import ConvergenceError, InputError
from .jit import threaded
from .kernels import (MEAN_DILATATION, MODES, element_geometry, element_stiffness, element_tables, mode_amplitudes,
                      strain_matrix)

_VOIGT = ("xx", "yy", "zz", "xy", "yz", "xz")


@threaded
def gauss_fields(points, cells, u, C, mat, tables, form, eps_out, sig_out, wdet_out, fint_out):
    """Per cell and Gauss point: engineering strain (m, q, 6), stress (m, q, 6) MPa, the integration
    weight w_g det J_g (m, q) mm^3, and the element internal force vector ``fint_out (m, k, 3)`` N.

    Cells with incompatible modes include the strain of their condensed modes, so that the stress is
    the one the stiffness was built from and ``fint`` equals the condensed K_e u_e. The strains are
    computed here rather than in a per-element kernel: numba compiles the code of every kernel a kernel
    calls again into the caller (benchmarks/README.md, "First run of the README main job: fewer levels of
    kernels")."""
    m, k = cells.shape
    w = tables[1]
    q = w.shape[0]
    n = k + tables[3].shape[1]  # nodes + internal modes
    for e in prange(m):
        xe = np.empty((k, 3))
        ue = np.empty((n, 3))
        for a in range(k):
            for d in range(3):
                xe[a, d] = points[cells[e, a], d]
                ue[a, d] = u[cells[e, a], d]
        grad = np.empty((q, n, 3))
        detJ = np.empty(q)
        gbar = np.empty((k, 3))
        CB = np.empty((6, 3 * n))
        Ke = np.empty((3 * n, 3 * n))
        B = np.empty((6, 3 * n))
        eps = eps_out[e]
        Ce = C[mat[e]]
        code = form[e]
        # strains at the Gauss points; with modes, their amplitudes alpha = -Kaa^-1 Kau u_e in ue[k:] first
        if code & MODES:
            element_stiffness(xe, tables, Ce, code, grad, detJ, gbar, CB, Ke)
            mode_amplitudes(Ke, k, ue)
            nc = n
        else:
            nc = element_geometry(xe, tables, code, grad, detJ, gbar)[1]
        bbar = (code & MEAN_DILATATION) != 0
        Bn = B[:, :3 * nc]
        for g in range(q):
            strain_matrix(grad[g, :nc], gbar, bbar, Bn)
            for i in range(6):
                s = 0.0
                for a in range(nc):
                    for d in range(3):
                        s += Bn[i, 3 * a + d] * ue[a, d]
                eps[g, i] = s
        Bk = B[:, :3 * k]
        for a in range(k):
            for d in range(3):
                fint_out[e, a, d] = 0.0
        for g in range(q):
            for i in range(6):
                s = 0.0
                for j in range(6):
                    s += Ce[i, j] * eps[g, j]
                sig_out[e, g, i] = s
            f = w[g] * detJ[g]
            wdet_out[e, g] = f
            strain_matrix(grad[g, :k], gbar, bbar, Bk)
            for a in range(k):
                for d in range(3):
                    s = 0.0
                    for i in range(6):
                        s += Bk[i, 3 * a + d] * sig_out[e, g, i]
                    fint_out[e, a, d] += f * s


#: Largest strain, stress or force magnitude accepted: quadratic quantities (von Mises, energy) stay finite.
_MAX_FIELD = np.sqrt(np.finfo(float).max) / 10.0


def _average(wdet, volume, field):
    """Volume average per cell of a Gauss-point ``field (m, q, ...)`` with weights ``wdet (m, q)`` and the cells'
    ``volume (m,)``."""
    return np.einsum("cg,cg...->c...", wdet, field) / volume.reshape((-1,) + (1,) * (field.ndim - 2))


class Solution:
    """Displacements and derived fields of a solved :class:`~vertebrafe.fem.model.Model`."""

    def __init__(self, model, displacement, plate_motion, info):
        self.model = model
        self.mesh = model.mesh
        #: ndarray (n, 3): nodal displacements (mm)
        self.displacement = displacement
        self._plate_motion = plate_motion
        #: dict: solver, dofs, iterations, residual (||Ku - f|| / ||f||) and phase times (s)
        self.info = info
        #: {spring set name: bool (k,)}: the state of the one-sided springs in this solution
        self.spring_active = {s.name: s.active.copy() for s in model.springs}
        #: Solution or None: the rest state that :attr:`motion` is measured from, a solve of the same model
        #: without loads (e.g. a pre-stressed disc swelling at rest); None: the stress-free reference
        self.rest = None

    @property
    def motion(self):
        """Node displacements ``(n, 3)`` mm from the rest state (:attr:`rest`): :attr:`displacement` minus the
        rest's, or :attr:`displacement` itself without one. Strains, stresses and spring forces are of the
        total :attr:`displacement`."""
        return self.displacement if self.rest is None else self.displacement - self.rest.displacement

    # -- Gauss-point fields -------------------------------------------------------------------------
    def _gauss(self, cells=None):
        """Strain (tensor shear), stress (with the initial stress), integration weight and element internal
        forces at the Gauss points of the cells ``cells`` (indices; default all): :func:`gauss_fields`."""
        mesh, model = self.mesh, self.model
        pick = (lambda a: a) if cells is None else (lambda a: np.ascontiguousarray(a[cells]))
        conn = np.ascontiguousarray(pick(mesh.cells), dtype=np.int64)
        m, k = conn.shape
        el = mesh.element
        q = el.weights.size
        eps = np.empty((m, q, 6))
        sig = np.empty((m, q, 6))
        wdet = np.empty((m, q))
        fint = np.empty((m, k, 3))
        gauss_fields(np.ascontiguousarray(mesh.points), conn, np.ascontiguousarray(self.displacement), model._C,
                     pick(model._material), element_tables(el), pick(model._form), eps, sig, wdet, fint)
        if not all(np.abs(a).max(initial=0.0) < _MAX_FIELD for a in (eps, sig, fint)):  # NaN fails too
            raise ConvergenceError(f"the strains or stresses of the solution are not finite or above {_MAX_FIELD:.3g} (displacements of "
                                   f"up to {np.abs(self.displacement).max():.3g} mm); the loads are beyond "
                                   "floating point range or the model is degenerate")
        eps[:, :, 3:] *= 0.5  # engineering -> tensor shear
        if model.initial_stress is not None:       # sigma = C eps + sigma_0
            sig += pick(model.initial_stress)[:, None, :]
        return eps, sig, wdet, fint

    @cached_property
    def _fields(self):
        mesh, model = self.mesh, self.model
        eps, sig, wdet, fint = self._gauss()
        nodal = np.zeros((mesh.n_points, 3))
        for d in range(3):
            nodal[:, d] = np.bincount(mesh.cells.ravel(), weights=fint[:, :, d].ravel(), minlength=mesh.n_points)
        if model.initial_stress is not None:       # the initial stress's forces int B^T sigma_0 dV
            nodal -= model.initial_stress_load()
        return eps, sig, wdet, nodal

    def cell_stress_of(self, cells):
        """``(stress (k, 6) MPa, volume (k,) mm^3)`` of the cells ``cells`` (indices or a bool mask): those rows of
        :attr:`cell_stress` and :attr:`cell_volume`, computed for these cells alone unless the fields of every
        cell are there already (a nucleus's pressure between the solves of a rest state costs its cells only)."""
        cells = np.asarray(cells)
        cells = np.flatnonzero(cells) if cells.dtype == bool else cells.astype(np.int64)
        if "_fields" in self.__dict__:
            return self.cell_stress[cells], self.cell_volume[cells]
        _, sig, wdet, _ = self._gauss(cells)
        vol = wdet.sum(axis=1)
        return _average(wdet, vol, sig), vol

    @property
    def strain(self):
        """Strain at the Gauss points ``(m, q, 6)``, tensor components (eps_xy, not gamma_xy)."""
        return self._fields[0]

    @property
    def stress(self):
        """Cauchy stress at the Gauss points ``(m, q, 6)`` in MPa; with the model's
        :attr:`~vertebrafe.fem.Model.initial_stress`, ``C eps + sigma_0``."""
        return self._fields[1]

    @property
    def _gauss_weights(self):
        """Integration weight of each Gauss point ``(m, q)`` (mm^3): w_g det J_g."""
        return self._fields[2]

    @cached_property
    def cell_volume(self):
        """Cell volumes ``(m,)`` in mm^3 (undeformed)."""
        return self._gauss_weights.sum(axis=1)

    def _cell_average(self, field):
        return _average(self._gauss_weights, self.cell_volume, field)

    @cached_property
    def cell_strain(self):
        """Volume-averaged strain per cell ``(m, 6)`` (tensor shear components)."""
        return self._cell_average(self.strain)

    @cached_property
    def cell_stress(self):
        """Volume-averaged stress per cell ``(m, 6)`` in MPa."""
        return self._cell_average(self.stress)

    @cached_property
    def von_mises(self):
        """Von Mises equivalent stress of the cell-averaged stress ``(m,)`` in MPa."""
        return von_mises(self.cell_stress)

    @cached_property
    def principal_stresses(self):
        """Principal stresses of the cell-averaged stress ``(m, 3)`` in MPa, largest first."""
        return principal_values(self.cell_stress)

    @cached_property
    def principal_strains(self):
        """Principal strains of the cell-averaged strain ``(m, 3)``, largest first."""
        return principal_values(self.cell_strain)

    @cached_property
    def strain_energy_density(self):
        """Strain energy density per cell ``(m,)`` in mJ/mm^3: volume average of sigma : eps / 2, with the elastic
        stress ``C eps`` (without the model's initial stress)."""
        eps, sig = self.strain, self.stress
        if self.model.initial_stress is not None:
            sig = sig - self.model.initial_stress[:, None, :]
        dens = 0.5 * (np.einsum("cgi,cgi->cg", sig[:, :, :3], eps[:, :, :3])
                      + 2.0 * np.einsum("cgi,cgi->cg", sig[:, :, 3:], eps[:, :, 3:]))
        return self._cell_average(dens)

    @property
    def strain_energy(self):
        """Total strain energy in mJ (N mm)."""
        return float(np.sum(self.strain_energy_density * self.cell_volume))

    # -- forces -----------------------------------------------------------------------------------
    @cached_property
    def internal_forces(self):
        """Nodal internal forces ``(n, 3)`` in N (K u plus the initial stress's ``int B^T sigma_0 dV``, assembled;
        cells and springs)."""
        f = self._fields[3]
        for s in self.model.springs:
            f = f + s.nodal_forces(self.displacement, self.mesh.n_points, self.spring_active[s.name])
        return f

    def spring_forces(self, name):
        """Axial forces ``(k,)`` N (tension positive) of the model's spring set ``name``."""
        return self.model.spring_set(name).forces(self.displacement, self.spring_active[name])

    @property
    def nodal_reactions(self):
        """Nodal reaction forces ``(n, 3)`` in N: internal minus applied nodal loads (zero at free DOFs)."""
        return self.internal_forces - self.model._force

    def reaction(self, nodes):
        """Total reaction force ``(3,)`` in N on ``nodes`` (index array or bool mask)."""
        idx = self.model._nodes(nodes)
        return self.nodal_reactions[idx].sum(axis=0)

    def reaction_moment(self, nodes, center):
        """Total reaction moment ``(3,)`` in N mm of ``nodes`` about ``center (3,)`` mm."""
        idx = self.model._nodes(nodes)
        r = self.mesh.points[idx] - np.asarray(center, dtype=float)
        return np.cross(r, self.nodal_reactions[idx]).sum(axis=0)

    def _plate(self, plate):
        if plate not in self.model.plates:
            raise InputError(f"{plate!r} does not belong to this model")
        return plate

    def plate_motion(self, plate, from_rest=False):
        """Translation ``(3,)`` mm and rotation ``(3,)`` rad of a rigid plate's reference point; ``from_rest``: from
        the rest state (:attr:`rest`, the plate of the same index there) instead of the reference."""
        p = self._plate(plate)
        v = self._plate_motion[p.index]
        if from_rest and self.rest is not None:
            v = v - self.rest._plate_motion[p.index]
        return v[:3].copy(), v[3:].copy()

    def plate_reaction(self, plate):
        """Force ``(3,)`` N and moment ``(3,)`` N mm (about the plate centre) that the plate's supports exert.

        Zero for a free plate (equilibrium); for a fixed or prescribed plate it is the support reaction,
        and minus it is the load the plate transmits to the body.
        """
        p = self._plate(plate)
        r = self.mesh.points[p.nodes] - p.center
        fn = self.nodal_reactions[p.nodes]
        return fn.sum(axis=0) - p.force, np.cross(r, fn).sum(axis=0) - p.moment

    # -- output -----------------------------------------------------------------------------------
    def fields(self):
        """All point and cell fields as two dicts of arrays, named with units, for VTU output (with a rest state
        also ``motion_mm``, the displacement from it)."""
        point = {"displacement_mm": self.displacement, "reaction_N": self.nodal_reactions}
        if self.rest is not None:
            point["motion_mm"] = self.motion                 # from the rest state
        cell = {
            "stress_MPa": self.cell_stress,
            "strain": self.cell_strain,
            "von_mises_MPa": self.von_mises,
            "principal_stress_MPa": self.principal_stresses,
            "principal_strain": self.principal_strains,
            "strain_energy_density_mJ_per_mm3": self.strain_energy_density,
            "youngs_modulus_axial_MPa": 1.0 / np.linalg.inv(self.model._C)[self.model._material, 2, 2],
        }
        return point, cell

    def to_meshio(self):
        """A meshio mesh with the model's tags and sets plus all result fields."""
        m = self.mesh.to_meshio()
        point, cell = self.fields()
        m.point_data.update(point)
        for name, value in cell.items():
            m.cell_data[name] = [value]
        return m

    def save(self, path):
        """Write the mesh, tags with their names, node and face sets and all result fields
        (``.vtu`` keeps everything; for ParaView and PyVista)."""
        from ..io.vtu import write

        write(path, self.to_meshio())


def von_mises(s):
    """Von Mises stress of Voigt stresses ``(..., 6)`` (tensor shear) in the same unit."""
    s = np.asarray(s)
    return np.sqrt(0.5 * ((s[..., 0] - s[..., 1]) ** 2 + (s[..., 1] - s[..., 2]) ** 2
                          + (s[..., 2] - s[..., 0]) ** 2) + 3.0 * (s[..., 3] ** 2 + s[..., 4] ** 2 + s[..., 5] ** 2))


def principal_values(s):
    """Eigenvalues ``(..., 3)`` of Voigt tensors ``(..., 6)`` (tensor shear), largest first."""
    return np.linalg.eigvalsh(voigt_to_tensor(s))[..., ::-1]
