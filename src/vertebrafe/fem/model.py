"""The linear-elastic finite-element model: material, constraints, loads, and the solve.

Units: mm, N, MPa. A :class:`Model` collects per-cell elasticity, Dirichlet conditions, rigid plates
and loads on a :class:`vertebrafe.mesh.Mesh`; :meth:`Model.solve` assembles, eliminates the
constraints exactly (no penalty), checks that no rigid-body motion is left free, solves and returns a
:class:`vertebrafe.fem.solution.Solution`.
"""
import copy
import hashlib
import time

import numba
import numpy as np
import scipy.sparse as sp

from ..cavity import FluidCavity
from ..elements import face_integrals
from ..errors import ConstraintError, InputError, InvertedElementError, UnderConstrainedError
from .. import elasticity
from ..elasticity import voigt_to_tensor
from ..springs import SpringSet
from . import active_set, assembly, solver_choice, solvers
from .bodies import Bodies, check_labels
from .kernels import MEAN_DILATATION, MODES, element_tables
from .solution import Solution

#: Formulation names and their kernel flags (:mod:`vertebrafe.fem.kernels`).
FORMULATIONS = {"full": 0, "bbar": MEAN_DILATATION, "incompatible": MODES}


def _formulation_codes(formulation, m, element):
    """Per-cell kernel flags ``(m,)`` int64 from a name, an array of names or a bool array (True = B-bar)."""
    allowed = ", ".join(repr(f) for f in FORMULATIONS)
    arr = np.asarray(formulation)
    if arr.dtype == bool:
        if arr.shape != (m,):
            raise InputError(f"formulation array has shape {arr.shape}; expected ({m},) for {m} cells")
        codes = np.where(arr, FORMULATIONS["bbar"], FORMULATIONS["full"])
    elif arr.dtype.kind in "UO" and arr.shape in ((), (m,)):
        names, inverse = np.unique(arr.astype(str), return_inverse=True)
        bad = [str(n) for n in names if n not in FORMULATIONS]
        if bad:
            raise InputError(f"formulation = {bad[0]!r}; allowed: {allowed}, an array ({m},) of them, "
                             f"or a bool array ({m},) (True = B-bar)")
        codes = np.array([FORMULATIONS[n] for n in names])[inverse.ravel()]
    else:
        given = repr(formulation) if arr.ndim == 0 else f"an array of shape {arr.shape}, dtype {arr.dtype}"
        raise InputError(f"formulation = {given}; allowed: {allowed}, an array ({m},) of them, "
                         f"or a bool array ({m},) (True = B-bar)")
    codes = np.array(np.broadcast_to(codes, (m,)), dtype=np.int64)      # writable: one kernel signature
    if np.any(codes & MODES) and element.mode_gradients.shape[1] == 0:
        raise InputError(f"formulation 'incompatible' needs internal modes, which element type {element.name!r} "
                         f"does not define; allowed for it: 'full', 'bbar'")
    return codes


def _max_node(springs):
    """Largest node index a spring set or cavity refers to."""
    if isinstance(springs, FluidCavity):
        return int(springs.nodes.max())
    return int(max(springs.nodes_a.max(initial=-1), springs.nodes_b.max(initial=-1)))


def _dof_mask(dofs):
    """``"xz"`` -> bool (3,)."""
    if not isinstance(dofs, str) or not dofs or any(c not in "xyz" for c in dofs.lower()):
        raise InputError(f"dofs = {dofs!r}; allowed: a string of the letters 'x', 'y', 'z' such as 'xyz' or 'z'")
    return np.array([c in dofs.lower() for c in "xyz"])


class RigidPlate:
    """A rigid body with a 6-DOF reference point that a node set is tied to exactly.

    Tied nodes follow ``u = t + theta x (x - center)`` (small rotations). Created by
    :meth:`Model.rigid_plate`; the translation ``t`` (mm) and rotation ``theta`` (rad) are unknowns
    unless fixed or prescribed.
    """

    def __init__(self, model, index, nodes, center):
        self._model = model
        self.index = index
        self.nodes = nodes
        self.center = center
        self.force = np.zeros(3)
        self.moment = np.zeros(3)
        self.prescribed = np.zeros(6, bool)
        self.values = np.zeros(6)

    def load(self, force=(0.0, 0.0, 0.0), moment=(0.0, 0.0, 0.0)):
        """Add a force (N) and a moment (N mm, about the plate centre) on the reference point."""
        self.force = self.force + _vector("force", force)
        self.moment = self.moment + _vector("moment", moment)
        return self

    def fix(self):
        """Hold the plate in place (all six DOFs zero)."""
        return self.prescribe(translation=(0, 0, 0), rotation=(0, 0, 0))

    def prescribe(self, translation=None, rotation=None):
        """Prescribe translation (mm) and/or rotation (rad) components; ``None`` entries stay free."""
        for offset, name, value in ((0, "translation", translation), (3, "rotation", rotation)):
            if value is None:
                continue
            value = np.asarray([np.nan if v is None else v for v in value], dtype=float)
            if value.shape != (3,):
                raise InputError(f"{name} = {value!r}; expected three components (x, y, z), None for free")
            given = ~np.isnan(value)
            if np.any(~np.isfinite(value[given])):
                raise InputError(f"{name} = {value!r}; components must be finite numbers or None")
            self.prescribed[offset:offset + 3] |= given
            self.values[offset:offset + 3][given] = value[given]
        return self

    def __repr__(self):
        return (f"RigidPlate(index={self.index}, nodes={self.nodes.size}, center={self.center.round(4).tolist()} mm, "
                f"prescribed={''.join('txyz'[i % 3 + 1] if i < 3 else 'rxyz'[i % 3 + 1] for i in np.flatnonzero(self.prescribed)) or 'none'})")


def _vector(name, value, shape=(3,)):
    v = np.asarray(value, dtype=float)
    if v.shape != shape or not np.all(np.isfinite(v)):
        raise InputError(f"{name} = {value!r}; expected {shape} finite numbers")
    return v


def digest(text, *arrays):
    """Hex digest of a text and arrays (dtype, shape and bytes): the key of a shared set-up."""
    h = hashlib.blake2b(text.encode(), digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype, a.shape)).encode())
        h.update(a.view(np.uint8).ravel() if a.size else b"")
    return h.hexdigest()


class Setup:
    """Assembled stiffness and solver set-up (factorisation or AMG hierarchy) shared by the solves of
    several models that differ only in their loads: pass the same ``Setup()`` to each
    :meth:`Model.solve`. It holds the latest set-up only (a factorisation can take hundreds of MB);
    drop it to free the memory. ``derived`` is a dict for the caller's load-independent results of the
    same model (:func:`vertebrafe.simulate.simulate` keeps the plate strengths there). ``solves``: how many
    solves are expected to share the set-up (the loads, and the steps of a nucleus pre-pressure's rest state);
    ``solver="auto"`` weighs AMG-CG's cost per solve by it against the direct solver's one factorisation
    (:func:`~vertebrafe.fem.solver_choice.choose`).
    """

    def __init__(self, solves=1):
        if not (isinstance(solves, (int, np.integer)) and solves >= 1):
            raise InputError(f"solves = {solves!r}; expected an integer >= 1 (solves sharing the set-up)")
        self.solves = int(solves)
        self._key = None
        self._entry = None
        self._pattern = None          # (key, sparsity pattern and colouring of the mesh)
        self.derived = {}

    def _get(self, key):
        return self._entry if key == self._key else None

    def _put(self, key, entry):
        self._key, self._entry = key, entry

    def __repr__(self):
        return f"Setup({'empty' if self._entry is None else 'holding one set-up'})"


def _unique_rows(rows):
    """``np.unique(rows, axis=0, return_index=True, return_inverse=True)`` for a float array ``(m, k)``:
    rows are grouped by a weighted sum of their entries (one 1-D sort instead of numpy's sort of ``m``
    records of ``k`` fields: 8x faster for a segment's per-cell 6x6 matrices), checked to be equal within
    each group (otherwise numpy's function decides), and the table sorted as numpy sorts it."""
    rows = np.ascontiguousarray(rows, dtype=float)
    key = (rows * np.linspace(1.0, 2.0, rows.shape[1])).sum(axis=1)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    table = rows[first]
    if not np.array_equal(rows, table[inverse.ravel()]):
        return np.unique(rows, axis=0, return_index=True, return_inverse=True)
    order = np.lexsort(table.T[::-1])
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return table[order], first[order], rank[inverse.ravel()]


class Model:
    """Linear-elastic FE model on a mesh.

    Parameters
    ----------
    mesh : vertebrafe.Mesh
        Cells ``(m, 8)`` hex8, points ``(n, 3)`` in mm.
    E, nu : float or ndarray ``(m,)``
        Isotropic Young's modulus (MPa, > 0) and Poisson's ratio (-1 < nu < 0.5), per cell or uniform.
    C : ndarray ``(6, 6)`` or ``(m, 6, 6)``
        Alternatively, symmetric positive-definite elasticity matrices (MPa) in Voigt order
        xx, yy, zz, xy, yz, xz with engineering shear strains.
    formulation : str, ndarray ``(m,)`` of str, or bool ndarray ``(m,)``
        ``"bbar"``: mean-dilatation B-bar (Hughes 1980), free of volumetric locking up to nu = 0.4999;
        ``"full"``: plain 2x2x2 integration; ``"incompatible"``: hex8 with nine condensed incompatible
        modes (Wilson 1973, Taylor et al. 1976), free of shear locking, so one cell through a thin layer
        bends correctly, but it locks partly as nu -> 0.5 (use B-bar for nearly incompressible cells).
        An array of these names selects per cell (e.g. ``"bbar"`` for the nucleus, ``"incompatible"``
        elsewhere); a boolean array selects B-bar (True) or full per cell. See docs/verification.md.
    """

    def __init__(self, mesh, E=None, nu=None, C=None, formulation="bbar"):
        self.mesh = mesh
        m = mesh.n_cells
        if C is not None:
            if E is not None or nu is not None:
                raise InputError("give either E and nu or C, not both")
            C = np.asarray(C, dtype=float)
            if C.ndim == 2:
                C = np.broadcast_to(C, (m, 6, 6))
            if C.shape != (m, 6, 6):
                raise InputError(f"C has shape {C.shape}; expected (6, 6) or ({m}, 6, 6) for {m} cells")
            table, first, self._material = _unique_rows(C.reshape(m, 36))
            self._C = elasticity.validate(table.reshape(-1, 6, 6), cell_ids=first)
        else:
            if E is None or nu is None:
                raise InputError("give the isotropic E (MPa) and nu, or C (6x6 per cell)")
            E = np.broadcast_to(np.asarray(E, dtype=float), (m,))
            nu = np.broadcast_to(np.asarray(nu, dtype=float), (m,))
            elasticity.check_range("E (MPa)", E, 0.0, np.inf)
            elasticity.check_range("nu", nu, -1.0, 0.5)
            table, self._material = np.unique(np.column_stack([E, nu]), axis=0, return_inverse=True)
            self._C = elasticity.isotropic(table[:, 0], table[:, 1])
        self._material = np.ascontiguousarray(self._material.ravel(), dtype=np.int64)
        self._form = _formulation_codes(formulation, m, mesh.element)
        n = mesh.n_points
        self._fixed = np.zeros((n, 3), bool)
        self._fixed_value = np.zeros((n, 3))
        self._force = np.zeros((n, 3))
        self.plates = []
        #: list of :class:`~vertebrafe.springs.SpringSet`: axial springs between (interpolated) node
        #: points, linear or one-sided (tension-only, compression-only); see :meth:`add_springs`.
        self.springs = []
        self._pattern_cache = None
        #: Assemble a mesh of identical cells (voxels) from shared reference stiffnesses
        #: (:func:`~vertebrafe.fem.assembly.reference_stiffness`); False integrates every cell.
        self.voxel_fast_path = True
        self._bodies = None
        self._initial_stress = None
        self._integrals = None        # (conn, points, int grad N dV) of the last cells of initial_stress_load

    @property
    def bodies(self):
        """Stiff bodies joined by soft cells and springs (the bones between discs): an int label per cell
        ``(m,)`` (-1: a cell in no body), or None (the default). With springs and the direct solver, the CG of
        the active-set loop deflates each body's rigid-body motions (fewer iterations where stiff one-sided
        springs join the bodies: :mod:`vertebrafe.fem.bodies`); the solution does not depend on them. A
        shared :class:`Setup` keeps the deflation of its first solve."""
        return self._bodies

    @bodies.setter
    def bodies(self, labels):
        self._bodies = check_labels(labels, self.mesh.n_cells)

    @property
    def initial_stress(self):
        """Initial (eigen-) stress of every cell ``(m, 6)`` MPa (Voigt xx, yy, zz, xy, yz, xz), uniform in each
        cell, or None (the default: a stress-free reference). The stress of a cell is ``C eps + initial_stress``;
        the solve carries its nodal forces ``-int B^T sigma_0 dV`` as a load (:meth:`initial_stress_load`), so a
        self-equilibrated pre-stress (e.g. a pressurised region inside an elastic shell: ``-p0 I`` in its cells)
        is in the same solve as the loads and the one-sided springs. Set it to None to remove it."""
        return self._initial_stress

    @initial_stress.setter
    def initial_stress(self, stress):
        if stress is None:
            self._initial_stress = None
            return
        m = self.mesh.n_cells
        s = np.asarray(stress, dtype=float)
        if s.shape != (m, 6) or not np.all(np.isfinite(s)):
            raise InputError(f"initial_stress has shape {s.shape}; expected ({m}, 6) finite stresses (MPa), one "
                             "Voigt row xx, yy, zz, xy, yz, xz per cell, or None")
        self._initial_stress = s.copy()

    def initial_stress_load(self, cells=None):
        """Nodal forces ``(n, 3)`` N of the initial stress: ``-int grad N_a . sigma_0 dV`` over each cell (zeros
        without one), of the cells ``cells`` (indices; default all). With a stress uniform in each cell this is the
        consistent load of every formulation: the mean-dilatation part integrates to the same, and the
        incompatible modes integrate to zero over a cell."""
        n = self.mesh.n_points
        out = np.zeros((n, 3))
        if self._initial_stress is None:
            return out
        pick = np.arange(self.mesh.n_cells) if cells is None else np.asarray(cells, dtype=np.int64)
        cells = pick[np.any(self._initial_stress[pick] != 0.0, axis=1)]
        sig = voigt_to_tensor(self._initial_stress[cells])                         # (c, 3, 3)
        chunk = 65536
        for start in range(0, cells.size, chunk):
            conn = self.mesh.cells[cells[start:start + chunk]]
            fe = -np.einsum("cij,caj->cai", sig[start:start + chunk], self._gradient_integrals(conn))
            np.add.at(out, conn.ravel(), fe.reshape(-1, 3))
        return out

    def _gradient_integrals(self, conn):
        """``int grad N_a dV`` ``(c, k, 3)`` of the cells ``conn (c, k)``. The integrals of the last cells asked
        for (at most one chunk of :meth:`initial_stress_load`) are kept while their nodes stay where they are:
        a rest state's secant steps change the stress of the same cells (the nucleus) at every solve."""
        x = self.mesh.points[conn]                                                 # (c, k, 3)
        kept = self._integrals
        if kept is not None and np.array_equal(kept[0], conn) and np.array_equal(kept[1], x):
            return kept[2]
        el = self.mesh.element
        J = np.einsum("gai,caj->cgij", el.gradients, x)                            # dx_j / dxi_i
        detJ = np.linalg.det(J)
        grad = np.einsum("cgij,gaj->cgai", np.linalg.inv(J), el.gradients)         # dN_a / dx_i
        integral = np.einsum("g,cg,cgai->cai", el.weights, detJ, grad)             # int grad N_a dV
        self._integrals = (conn, x, integral)
        return integral

    # -- material access ------------------------------------------------------------------------
    @property
    def C(self):
        """Per-cell elasticity ``(m, 6, 6)`` (MPa); a view assembled from the material table."""
        return self._C[self._material]

    @property
    def bbar(self):
        """Bool ``(m,)``: cells whose compatible strain uses mean dilatation (B-bar)."""
        return (self._form & MEAN_DILATATION) != 0

    @property
    def formulation(self):
        """Formulation name of every cell ``(m,)`` (str)."""
        names = np.empty(max(FORMULATIONS.values()) + 1, dtype=object)
        for name, code in FORMULATIONS.items():
            names[code] = name
        return names[self._form].astype(str)

    # -- constraints ------------------------------------------------------------------------------
    def _nodes(self, nodes, name="nodes"):
        n = self.mesh.n_points
        arr = np.asarray(nodes)
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise InputError(f"{name} mask has shape {arr.shape}; expected ({n},)")
            return np.flatnonzero(arr)
        arr = np.atleast_1d(arr)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise InputError(f"{name} must be an integer index array or a bool mask of length {n}")
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            bad = arr[(arr < 0) | (arr >= n)][0]
            raise InputError(f"{name} contains node {bad}; allowed range 0..{n - 1}")
        if arr.size == 0:
            raise InputError(f"{name} is empty; select at least one node")
        return arr.astype(np.int64)

    def fix(self, nodes, dofs="xyz"):
        """Fix the given displacement components (``"x"``, ``"yz"``, ``"xyz"``...) of ``nodes`` at zero."""
        return self.prescribe(nodes, dofs, 0.0)

    def prescribe(self, nodes, dofs, value):
        """Prescribe displacement components of ``nodes`` (index array or bool mask).

        ``value`` (mm): a scalar, one value per node ``(k,)`` or one per node and component ``(k, d)``.
        """
        idx = self._nodes(nodes)
        mask = _dof_mask(dofs)
        value = np.asarray(value, dtype=float)
        try:
            if value.ndim == 1 and value.shape[0] == idx.size:
                value = value[:, None]
            value = np.broadcast_to(value, (idx.size, int(mask.sum())))
        except ValueError:
            raise InputError(f"value has shape {value.shape}; expected a scalar, ({idx.size},) or "
                             f"({idx.size}, {int(mask.sum())})") from None
        if not np.all(np.isfinite(value)):
            raise InputError("prescribed displacement values must be finite")
        cols = np.flatnonzero(mask)
        self._fixed[np.ix_(idx, cols)] = True
        self._fixed_value[np.ix_(idx, cols)] = value
        return self

    def rigid_plate(self, nodes, center=None):
        """Tie ``nodes`` to a new rigid plate with reference point ``center (3,)`` mm (default: their centroid)."""
        idx = np.unique(self._nodes(nodes))
        if center is None:
            center = self.mesh.points[idx].mean(axis=0)
        plate = RigidPlate(self, len(self.plates), idx, _vector("center", center).copy())
        for other in self.plates:
            common = np.intersect1d(other.nodes, idx)
            if common.size:
                raise ConstraintError(f"{common.size} node(s) (first: {common[0]}) already belong to rigid plate "
                                      f"{other.index}; a node can be tied to one plate only")
        self.plates.append(plate)
        self._pattern_cache = None
        return plate

    def add_springs(self, springs):
        """Add a :class:`~vertebrafe.springs.SpringSet` (build one with
        :func:`~vertebrafe.springs.spring_set`) or a :class:`~vertebrafe.cavity.FluidCavity`.
        With one-sided springs :meth:`solve` runs the active-set loop of :mod:`vertebrafe.fem.active_set`.
        Returns the set."""
        if not isinstance(springs, (SpringSet, FluidCavity)):
            raise InputError(f"springs = {springs!r}; expected a vertebrafe.springs.SpringSet or a "
                             "vertebrafe.cavity.FluidCavity")
        n = self.mesh.n_points
        if _max_node(springs) >= n:
            raise InputError(f"spring set {springs.name!r} references nodes beyond this mesh's {n} nodes")
        if any(s.name == springs.name for s in self.springs):
            raise InputError(f"a spring set named {springs.name!r} is already in the model; names must be unique")
        self.springs.append(springs)
        return springs

    def spring_set(self, name):
        """The spring set called ``name``."""
        for s in self.springs:
            if s.name == name:
                return s
        raise InputError(f"spring set {name!r} not in the model; sets: {[s.name for s in self.springs]}")

    # -- loads ------------------------------------------------------------------------------------
    @property
    def nodal_loads(self):
        """Applied nodal forces ``(n, 3)`` in N so far (a copy; plate loads not included)."""
        return self._force.copy()

    def add_force(self, nodes, force):
        """Add nodal forces (N): ``force (3,)`` on every node or ``(k, 3)`` one per node."""
        idx = self._nodes(nodes)
        f = np.asarray(force, dtype=float)
        try:
            f = np.broadcast_to(f, (idx.size, 3))
        except ValueError:
            raise InputError(f"force has shape {f.shape}; expected (3,) or ({idx.size}, 3)") from None
        if not np.all(np.isfinite(f)):
            raise InputError("forces must be finite")
        np.add.at(self._force, idx, f)
        return self

    def copy(self):
        """An independent copy on the same mesh: its loads, supports, plates, spring sets and initial stress can
        change without changing this model (a rest state solves an unloaded copy of the loaded model)."""
        return copy.deepcopy(self, {id(self.mesh): self.mesh})

    def remove_loads(self):
        """Zero every applied load (nodal forces, plate forces and moments) and every prescribed value; the
        supports (what is fixed or prescribed) and the initial stress stay. Returns the model."""
        self._force[:] = 0.0
        self._fixed_value[:] = 0.0
        for p in self.plates:
            p.force, p.moment = np.zeros(3), np.zeros(3)
            p.values = np.zeros(6)
        return self

    def _faces(self, faces):
        faces = np.asarray(faces)
        n = self.mesh.n_points
        if faces.ndim != 2 or faces.shape[1] != 4 or not np.issubdtype(faces.dtype, np.integer):
            raise InputError(f"faces has shape {faces.shape}; expected (k, 4) integer node indices (quads)")
        if faces.size and (faces.min() < 0 or faces.max() >= n):
            raise InputError(f"faces reference nodes outside 0..{n - 1}")
        return faces.astype(np.int64)

    def add_traction(self, faces, traction):
        """Add a traction (MPa; force per area) on quad ``faces (k, 4)`` as consistent nodal loads.

        ``traction``: ``(3,)`` uniform, or ``(k, 3)`` one per face.
        """
        faces = self._faces(faces)
        t = np.asarray(traction, dtype=float)
        try:
            t = np.broadcast_to(t, (faces.shape[0], 3))
        except ValueError:
            raise InputError(f"traction has shape {t.shape}; expected (3,) or ({faces.shape[0]}, 3)") from None
        weights, _ = self._face_integrals(faces)  # (k, 4) area weights per node
        np.add.at(self._force, faces.ravel(), (weights[:, :, None] * t[:, None, :]).reshape(-1, 3))
        return self

    def add_pressure(self, faces, pressure):
        """Add a pressure (MPa) on quad ``faces (k, 4)``: positive pushes against the outward normal.

        ``pressure``: scalar or ``(k,)``. Consistent nodal loads by 2x2 Gauss integration.
        """
        faces = self._faces(faces)
        p = np.broadcast_to(np.asarray(pressure, dtype=float), (faces.shape[0],))
        if not np.all(np.isfinite(p)):
            raise InputError("pressure must be finite")
        _, vec = self._face_integrals(faces)  # (k, 4, 3) integral of N_a n dA
        np.add.at(self._force, faces.ravel(), (-p[:, None, None] * vec).reshape(-1, 3))
        return self

    def _face_integrals(self, faces):
        """Per face and node: integral of N_a dA ``(k, 4)`` mm^2 and of N_a n dA ``(k, 4, 3)``."""
        return face_integrals(self.mesh.points, faces)

    def add_body_force(self, b):
        """Add a body force (N/mm^3): ``b (3,)`` uniform or a callable ``b(x (p, 3)) -> (p, 3)`` at points in mm."""
        el = self.mesh.element
        chunk = 65536
        for start in range(0, self.mesh.n_cells, chunk):
            cells = self.mesh.cells[start:start + chunk]
            x = self.mesh.points[cells]  # (c, k, 3)
            J = np.einsum("gai,caj->cgij", el.gradients, x)
            detJ = np.linalg.det(J)  # (c, g)
            xg = np.einsum("ga,caj->cgj", el.shape, x)
            if callable(b):
                val = np.asarray(b(xg.reshape(-1, 3)), dtype=float).reshape(xg.shape)
            else:
                val = np.broadcast_to(_vector("b", b), xg.shape)
            fe = np.einsum("g,ga,cg,cgi->cai", el.weights, el.shape, detJ, val)
            np.add.at(self._force, cells.ravel(), fe.reshape(-1, 3))
        return self

    # -- export -----------------------------------------------------------------------------------
    def export(self, path, **options):
        """Write the complete model for another solver, the format by extension: ``.inp`` (CalculiX/Abaqus)
        or ``.feb`` (FEBio 4.0); see docs/interop.md. ``options`` go to the writer, e.g. ``overwrite=True``
        to replace an existing file. Returns the path written."""
        from ..io.export import export

        return export(self, path, **options)

    # -- solve ------------------------------------------------------------------------------------
    def _node_plate(self):
        node_plate = np.full(self.mesh.n_points, -1, np.int64)
        for p in self.plates:
            node_plate[p.nodes] = p.index
        return node_plate

    def _check_ties(self):
        """Plate index of every node ``(n,)`` (-1: not tied); ConstraintError if a tied node is also prescribed."""
        node_plate = self._node_plate()
        clash = (node_plate >= 0) & self._fixed.any(axis=1)
        if clash.any():
            i = int(np.flatnonzero(clash)[0])
            raise ConstraintError(f"node {i} is tied to rigid plate {node_plate[i]} and also has prescribed "
                                  f"displacements ({int(clash.sum())} node(s)); constrain the plate instead")
        return node_plate

    def _plate_loads(self, force):
        """Force (N) and moment (N mm, about the centre) on each plate ``(n_plates, 6)``: the plate's own load
        plus the nodal forces ``force (n, 3)`` on its tied nodes, which the plate carries."""
        loads = np.zeros((len(self.plates), 6))
        for p in self.plates:
            fp = force[p.nodes]
            r = self.mesh.points[p.nodes] - p.center
            loads[p.index] = np.concatenate([p.force + fp.sum(axis=0), p.moment + np.cross(r, fp).sum(axis=0)])
        return loads

    def _pattern(self, node_plate, setup=None):
        if self._pattern_cache is not None and np.array_equal(self._pattern_cache[0], node_plate):
            return self._pattern_cache[1]
        mesh = self.mesh
        cells = np.ascontiguousarray(mesh.cells, dtype=np.int64)
        n, npl = mesh.n_points, len(self.plates)
        key = digest(str((n, npl, numba.get_num_threads())), cells, node_plate) if setup is not None else None
        if setup is not None and setup._pattern is not None and setup._pattern[0] == key:
            self._pattern_cache = (node_plate, setup._pattern[1])
            return setup._pattern[1]
        indptr, indices = assembly.block_pattern(cells, node_plate, n, npl)
        tied = (node_plate[cells] >= 0).any(axis=1)
        color_ptr, chunk_ptr, order = assembly.color_cells(cells, n, ~tied, numba.get_num_threads())
        # position of the diagonal block of every row (rows are sorted)
        rows = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
        diag = np.flatnonzero(indices == rows)
        used = np.zeros(n + 2 * npl, bool)
        used[cells.ravel()] = True
        used[n:] = True
        label = assembly.block_components(cells, node_plate, n, npl)
        pattern = dict(label=label, indptr=indptr, indices=indices, color_ptr=color_ptr, chunk_ptr=chunk_ptr,
                       order=order, tied=np.flatnonzero(tied), diag=diag, used=used)
        self._pattern_cache = (node_plate, pattern)
        if setup is not None:
            setup._pattern = (key, pattern)
        return pattern

    def _choose(self, pat, info, solves=1):
        """``"direct"`` or ``"amg"`` for ``"auto"`` with PARDISO above
        :data:`~vertebrafe.fem.solver_choice.ESTIMATE_MIN_DOFS` unknowns, from the predicted cost of both
        (:mod:`~vertebrafe.fem.solver_choice`; the direct cost is kept with the pattern) for ``solves`` solves
        sharing the set-up (:attr:`Setup.solves`); adds the predictions to ``info``."""
        if "direct_cost" not in pat:
            pat["direct_cost"] = solver_choice.direct_cost(pat["indptr"], pat["indices"])
        stiffness = np.einsum("kii->k", self._C[:, :3, :3]) / 3.0
        method, reasons = solver_choice.choose(3 * (pat["indptr"].size - 1), pat["direct_cost"],
                                               stiffness.max() / stiffness.min(), sum(s.size for s in self.springs), solves)
        info.update({"choice_" + k: reasons[k] for k in ("direct_seconds", "direct_bytes", "amg_seconds",
                                                         "memory_budget", "analysis_seconds")})
        info["choice_solves"] = solves
        return method

    def _material_strength(self, pat, cells, n_plates):
        """AMG strength graph that keeps aggregates inside one material, or None for a uniform stiffness.

        A node's stiffness is the largest mean normal stiffness (trace of C[:3, :3] / 3, MPa) of its cells;
        plate blocks count as the stiffest material. The nodes of nearly incompressible cells (bulk modulus
        above :data:`solvers.INCOMPRESSIBLE_RATIO` times the shear modulus) are marked for the exact solve
        of :func:`solvers.amg_hierarchy`.
        """
        C = self._C
        stiffness = np.einsum("kii->k", C[:, :3, :3]) / 3.0
        if stiffness.max() <= solvers.MATERIAL_JUMP * stiffness.min():
            return None
        n = self.mesh.n_points
        block = np.full(n + 2 * n_plates, stiffness.max())
        block[:n] = stiffness.min()
        np.maximum.at(block, cells.ravel(), np.repeat(stiffness[self._material], cells.shape[1]))
        bulk = C[:, :3, :3].sum(axis=(1, 2)) / 9.0
        shear = np.einsum("kii->k", C[:, 3:, 3:]) / 3.0
        incompressible = np.zeros(block.size, bool)
        incompressible[cells[(bulk > solvers.INCOMPRESSIBLE_RATIO * shear)[self._material]].ravel()] = True
        return solvers.material_strength(pat["indptr"], pat["indices"], block, incompressible=incompressible)

    def _spring_arrays(self):
        """The arrays that define the spring sets (for the key of a shared set-up)."""
        out = []
        for s in self.springs:
            G = s.gradient(self.mesh.n_points)
            out += [np.frombuffer(f"{s.name}/{s.kind}/{s.precondition}".encode(), np.uint8), G.indptr, G.indices,
                    G.data, s.stiffness, s.onset]
        return out

    def _check_spring_nodes(self, used):
        n = self.mesh.n_points
        for s in self.springs:
            G = s.gradient(n)
            nodes = np.unique(G.indices[G.data != 0] // 3)         # duplicates summed: the nonzero columns
            bad = nodes[~used[nodes]]
            if bad.size:
                raise InputError(f"spring set {s.name!r} is attached to node {int(bad[0])}, which no cell uses; "
                                 "attach springs to nodes of the mesh's cells")

    def _dofs(self, node_plate, pat):
        """DOF bookkeeping on the extended unknowns (3 per node, then 6 per plate): ``constrained`` (N,) bool,
        their values ``g`` (N,) and ``eliminated`` (N,) bool (constrained, tied to a plate or in no cell)."""
        n = self.mesh.n_points
        N = 3 * (n + 2 * len(self.plates))
        constrained = np.zeros(N, bool)
        g = np.zeros(N)
        constrained[:3 * n] = self._fixed.ravel()
        g[:3 * n] = self._fixed_value.ravel()
        for p in self.plates:
            s = 3 * n + 6 * p.index
            constrained[s:s + 6] = p.prescribed
            g[s:s + 6] = np.where(p.prescribed, p.values, 0.0)
        eliminated = constrained.copy()
        eliminated[:3 * n] |= np.repeat((node_plate >= 0) | ~pat["used"][:n], 3)
        return constrained, g, eliminated

    def _arrays(self):
        """Contiguous ``cells`` (int64), ``points`` and plate ``centers`` (npl, 3) for the kernels."""
        cells = np.ascontiguousarray(self.mesh.cells, dtype=np.int64)
        points = np.ascontiguousarray(self.mesh.points, dtype=np.float64)
        return cells, points, np.array([p.center for p in self.plates]).reshape(len(self.plates), 3)

    def stiffness(self, setup=None):
        """The assembled system :meth:`solve` starts from, without solving: ``(K, f_g, info)``.

        ``K`` (N, N) sparse (BSR 3x3) over the extended unknowns (3 per node, then 6 per rigid plate), with
        the eliminated DOFs (prescribed, tied to a plate, in no cell) decoupled; ``f_g = -K_fc g`` (N) N,
        the load of the prescribed displacements; ``info``: ``assembly_time`` (s, the kernel) and
        ``reference_cells`` (whether the shared reference stiffness of identical cells was used,
        :attr:`voxel_fast_path`). ``setup``: a :class:`Setup` whose sparsity pattern is reused."""
        node_plate = self._check_ties()
        pat = self._pattern(node_plate, setup)
        _, g, eliminated = self._dofs(node_plate, pat)
        cells, points, centers = self._arrays()
        info = {}
        K, rhs = self._assemble(pat, node_plate, centers, points, cells, ~eliminated, eliminated, g, info)
        return K, rhs, info

    def _assemble(self, pat, node_plate, centers, points, cells, free, eliminated, g, info):
        """Stiffness ``K`` (BSR 3x3, constraints eliminated) and the load of the prescribed values
        ``-K_fc g`` (N,); records ``assembly_time``."""
        t1 = time.perf_counter()
        mesh = self.mesh
        data = np.zeros((pat["indices"].size, 3, 3))
        rhs = np.zeros(eliminated.size)
        min_det = np.zeros(mesh.n_cells)
        tables = element_tables(mesh.element)
        try:
            ref = (assembly.reference_stiffness(points, cells, self._C, self._material, self._form, tables)
                   if self.voxel_fast_path else assembly.no_reference(cells.shape[1]))
            info["reference_cells"] = ref[1].size > 0
            assembly.assemble(points, cells, self._C, self._material, tables, self._form, ref, node_plate,
                              centers, pat["indptr"], pat["indices"], pat["color_ptr"], pat["chunk_ptr"], pat["order"], pat["tied"], free, g, data, rhs, min_det)
        except (SystemError, ZeroDivisionError):   # a singular cell (a bow-tie hex) inside a compiled kernel:
            # SystemError from a parallel build, ZeroDivisionError from a serial twin (one numba thread)
            q = mesh.quality()
            bad = np.flatnonzero((q.min_jacobian <= 0) | (q.scaled_jacobian <= 0))
            if not bad.size:
                raise
            raise InvertedElementError(
                f"{bad.size} cell(s) are twisted, inverted or degenerate (a singular Jacobian inside the cell, "
                f"e.g. a bow-tie hex with crossed faces), first: {bad[:10].tolist()}; fix the mesh (node order "
                "of each hex: bottom face counter-clockwise seen from above, then the top face)", cells=bad) from None
        info["assembly_time"] = time.perf_counter() - t1
        if np.any(min_det <= 0):
            bad = np.flatnonzero(min_det <= 0)
            raise InvertedElementError(
                f"{bad.size} cell(s) are inverted or degenerate (Jacobian determinant <= 0 at a Gauss point), "
                f"first: {bad[:10].tolist()}; fix the mesh before solving", cells=bad)
        # decoupled rows for eliminated DOFs, scaled like the stiffness so conditioning is not hurt
        diag = data[pat["diag"]]  # (nb, 3, 3)
        dvals = np.einsum("bii->bi", diag).ravel()
        scale = dvals[free].mean() if free.any() else 1.0
        elim_idx = np.flatnonzero(eliminated)
        data[pat["diag"][elim_idx // 3], elim_idx % 3, elim_idx % 3] = scale
        N = eliminated.size
        return sp.bsr_matrix((data, pat["indices"], pat["indptr"]), shape=(N, N)), rhs

    def _start(self, start, eliminated):
        """The extended unknowns ``(N,)`` of ``start = (displacement (n, 3), plate motion (plates, 6))``, 0 on the
        ``eliminated`` ones (constrained, tied to a plate, in no cell)."""
        try:
            u, plates = (np.asarray(a, dtype=float) for a in start)
            given = f"arrays of shapes {u.shape} and {plates.shape}"
        except (TypeError, ValueError):
            u = plates = None
            given = repr(start)[:60]
        shapes = ((self.mesh.n_points, 3), (len(self.plates), 6))
        if u is None or (u.shape, plates.shape) != shapes or not (np.isfinite(u).all() and np.isfinite(plates).all()):
            raise InputError(f"start = {given}; expected None or (displacement {shapes[0]}, plate motion "
                             f"{shapes[1]}) of finite values (mm, rad)")
        return np.where(eliminated, 0.0, np.concatenate([u.ravel(), plates.ravel()]))

    def solve(self, solver="auto", rtol=1e-8, maxiter=None, max_active_set_iterations=active_set.MAX_ITERATIONS,
              setup=None, start=None):
        """Assemble and solve; returns a :class:`Solution`.

        solver: ``"auto"`` (with PARDISO: direct up to :data:`~vertebrafe.fem.solver_choice.ESTIMATE_MIN_DOFS`
        unknowns, above whichever of direct and AMG-CG is predicted cheaper for this model and fits in memory
        (:mod:`~vertebrafe.fem.solver_choice`; ``info`` adds the ``choice_*`` predictions); without PARDISO
        direct up to :func:`~vertebrafe.fem.solvers.direct_max_dofs` unknowns, else AMG-CG),
        ``"direct"`` or ``"amg"``; rtol: relative residual target ||K u - f|| / ||f|| of the
        iterative solve; maxiter: CG limit.
        setup: a :class:`Setup` shared by the solves of models that differ only in their loads (same mesh,
        materials, formulation, constraints, plates and prescribed values): the first solve stores the
        assembled matrix and its factorisation or AMG hierarchy, the others reuse them
        (``info["setup_reused"]``); anything else that differs makes a new set-up.
        With one-sided springs (:attr:`springs`) the active-set loop runs (at most
        ``max_active_set_iterations`` linear solves) and ``info`` adds ``active_set_iterations``.
        start: ``(displacement (n, 3) mm, plate motion (plates, 6) mm and rad)`` or None, a guess of the solution (e.g. a
        combination of solutions of the same model under other loads): where it solves the model to ``rtol``
        (with springs: in the springs' current states, which it leaves as they are) it is returned without a
        solve (``info["start_accepted"]``), otherwise AMG-CG starts from it; the direct solves do not use it.
        ``Solution.info`` reports iterations, the true residual and the time of each phase (s).
        Raises UnderConstrainedError, InvertedElementError, ConvergenceError, ConstraintError.
        """
        if setup is not None and not isinstance(setup, Setup):
            raise InputError(f"setup = {setup!r}; expected a vertebrafe.fem.Setup or None")
        mesh = self.mesh
        n, npl = mesh.n_points, len(self.plates)
        nb = n + 2 * npl
        method = solvers.choose(solver, 3 * nb)
        info = {}
        t0 = time.perf_counter()
        node_plate = self._check_ties()
        pat = self._pattern(node_plate, setup)
        t1 = time.perf_counter()
        info["pattern_time"] = t1 - t0
        if solver == "auto" and solvers.pardiso_available() and 3 * nb > solver_choice.ESTIMATE_MIN_DOFS:
            method = self._choose(pat, info, 1 if setup is None else setup.solves)

        N = 3 * nb
        constrained, g, eliminated = self._dofs(node_plate, pat)
        free = ~eliminated
        cells, points, centers = self._arrays()
        key = digest(method, self._C, self._material, self._form, points, cells, node_plate, centers, eliminated,
                      np.where(constrained, g, 0.0), *self._spring_arrays()) if setup is not None else None
        entry = setup._get(key) if setup is not None else None
        coords = np.concatenate([points, np.repeat(centers, 2, axis=0)]) if npl else points
        rotation_blocks = np.zeros(nb, bool)
        rotation_blocks[n + 1::2] = True
        if entry is None:
            K, rhs_g = self._assemble(pat, node_plate, centers, points, cells, free, eliminated, g, info)
            t2 = time.perf_counter()
            held = False
            if self.springs:            # held: a part that only springs hold (K alone is singular)
                try:
                    solvers.check_rigid_body_modes(pat["label"], coords, rotation_blocks, free, constrained,
                                                   pat["used"])
                except UnderConstrainedError:
                    held = True
            if held or not self.springs:
                label = active_set.join_parts(pat["label"], self.springs) if self.springs else pat["label"]
                solvers.check_rigid_body_modes(label, coords, rotation_blocks, free, constrained, pat["used"])
            B = solvers.rigid_body_modes(coords, rotation_blocks) if method == "amg" else None
            strength = self._material_strength(pat, cells, npl) if method == "amg" else None
            entry = {"K": K, "rhs": rhs_g, "near_nullspace": B, "strength": strength, "prepared": None,
                     "held": held, "springs": {}}
            if setup is not None:
                setup._put(key, entry)
            info["constraints_time"] = time.perf_counter() - t2
        else:
            info.update(assembly_time=0.0, constraints_time=0.0)
        K = entry["K"]
        # loads: nodal forces on free node DOFs; forces on tied nodes go to their plate
        rhs = entry["rhs"].copy()
        x0 = None if start is None else self._start(start, eliminated)
        force = self._force + self.initial_stress_load()
        rhs[:3 * n] += np.where(free[:3 * n], force.ravel(), 0.0)
        if npl:
            rhs[3 * n:] += np.where(free[3 * n:], self._plate_loads(force).ravel(), 0.0)
        if self.springs:
            self._check_spring_nodes(pat["used"][:n])
            T = active_set.node_map(n, self.plates, points, N)
            bodies = (Bodies(self.bodies, cells, [p.nodes for p in self.plates], coords, rotation_blocks, free)
                      if self.bodies is not None and method == "direct" else None)
            x, sinfo = active_set.solve(K, rhs, self.springs, T, free, constrained, g, n, method, rtol=rtol,
                                        maxiter=maxiter, near_nullspace=entry["near_nullspace"],
                                        strength=entry["strength"], max_iterations=max_active_set_iterations,
                                        cache=entry["springs"], held=entry["held"], bodies=bodies, x0=x0)
        else:
            if entry["prepared"] is None:
                entry["prepared"] = solvers.Prepared(K, method, entry["near_nullspace"], entry["strength"])
            x, sinfo = entry["prepared"].solve(rhs, rtol, maxiter, x0)
        info.update(sinfo)
        info["dofs"] = int(free.sum())
        info["total_time"] = time.perf_counter() - t0
        x[eliminated] = 0.0
        x[constrained] = g[constrained]
        # recover node displacements; tied nodes follow their plate
        u = x[:3 * n].reshape(n, 3).copy()
        plate_motion = x[3 * n:].reshape(npl, 6)
        for p in self.plates:
            t, th = plate_motion[p.index, :3], plate_motion[p.index, 3:]
            u[p.nodes] = t + np.cross(th, points[p.nodes] - p.center)
        return Solution(self, u, plate_motion.copy(), info)
