"""Closed-form verification problems of the FE core, shared by ``tests/verification`` and
``benchmarks/verification_plots.py`` (docs/verification.md).

* Cantilever: a slender beam ``L x B x H`` = 100 x 10 x 10 mm (E = 1000 MPa, nu = 0.3) fixed at
  ``x = 0`` under a tip shear load ``P`` = 1 N (uniform traction on ``x = L``), against Timoshenko beam
  theory ``delta = P L^3 / (3 E I) + P L / (k G A)``, ``k = 5/6``: :func:`cantilever_tip_deflection`.
* Manufactured solution: three plane waves ``u(x) = sum_w a_w sin(k_w . x + phi_w)`` on the box
  :data:`LENGTHS` mm, held by the exact body force ``b = -div sigma = sum_w sin(theta_w) Gamma(k_w) a_w``
  (acoustic tensor ``Gamma_ik(k) = C_ijkl k_j k_l``) with ``u`` prescribed on the boundary:
  :func:`manufactured_errors` returns the relative L2 and energy-norm errors (rates 2 and 1 for hex8).
* :func:`tetra_mesh`: a hex8 mesh split into conforming tet4 or tet10 cells (six per cell on a structured
  grid, twelve around the cell's centre on any mesh).
* Stiff spherical inclusion: :func:`sphere_octant_mesh`, a conforming hex8 mesh of the octant of a box with a
  sphere at its corner, against the uniform inside stress of Eshelby (1957), :func:`eshelby_sphere_stress`
  (``tests/verification/test_inclusion.py``, ``benchmarks/inclusion_convergence.py``).
"""
from __future__ import annotations

import numpy as np

from .elasticity import engineering, isotropic, orthotropic, stiffness_tensor
from .elements import HEX8, TET10_EDGES, gauss_legendre_hex, hex8_shape, hex8_shape_gradients
from .fem import Model
from .mesh import Mesh, box

__all__ = ["subdivide_hexes", "CANTILEVER_MESHES", "DELTA_TIMOSHENKO", "cantilever_tip_deflection", "LENGTHS", "MATERIALS",
           "MANUFACTURED_CASES", "exact_u", "exact_grad", "body_force", "manufactured_mesh",
           "manufactured_errors", "voigt_strain", "engineering", "tetra_mesh", "eshelby_sphere_stress",
           "sphere_octant_mesh"]

# ---------------------------------------------------------------- cantilever
L, B, H = 100.0, 10.0, 10.0                  # mm
E, NU, P = 1000.0, 0.3, 1.0                  # MPa, -, N
I = B * H**3 / 12.0
G = E / (2.0 * (1.0 + NU))
K_SHEAR = 5.0 / 6.0
DELTA_BENDING = P * L**3 / (3.0 * E * I)
DELTA_SHEAR = P * L / (K_SHEAR * G * B * H)
#: tip deflection of Timoshenko beam theory (mm)
DELTA_TIMOSHENKO = DELTA_BENDING + DELTA_SHEAR
#: uniform refinement, cubic 5 / 2.5 / 1.25 mm cells
CANTILEVER_MESHES = [(20, 2, 2), (40, 4, 4), (80, 8, 8)]


def cantilever_tip_deflection(shape, formulation):
    """The cantilever on ``shape = (nx, ny, nz)`` cells with ``formulation``: the deflection (mm) of the
    centre node of the tip face, the clamp reaction ``(3,)`` N and the work-conjugate tip deflection (mm,
    the traction-weighted mean over the tip face)."""
    mesh = box((L, B, H), shape)
    model = Model(mesh, E=E, nu=NU, formulation=formulation)
    clamp = mesh.node_sets["xmin"]
    model.fix(clamp, "xyz")
    model.add_traction(mesh.face_sets["xmax"], (0.0, 0.0, -P / (B * H)))
    sol = model.solve(solver="direct")
    nx, ny, nz = shape

    def node(i, j, k):                       # box numbering: x fastest, then y, then z
        return i + (nx + 1) * (j + (ny + 1) * k)

    # consistent nodal loads of a uniform traction on a uniform ny x nz face grid: products of 1D
    # trapezoid weights
    wy = np.ones(ny + 1)
    wy[[0, -1]] = 0.5
    wz = np.ones(nz + 1)
    wz[[0, -1]] = 0.5
    tip = node(nx, np.arange(ny + 1)[None, :], np.arange(nz + 1)[:, None])
    w = np.outer(wz, wy)
    work = -(w * sol.displacement[tip, 2]).sum() / w.sum()
    return -sol.displacement[node(nx, ny // 2, nz // 2), 2], sol.reaction(clamp), work


# ---------------------------------------------------------------- manufactured solution
LENGTHS = (1.2, 1.0, 0.9)                    # mm
WAVES = [
    (np.pi * np.array([1.0, 0.5, 0.3]), np.array([0.010, -0.004, 0.006]), 0.3),
    (np.pi * np.array([-0.4, 0.8, 0.6]), np.array([0.003, 0.008, -0.005]), 1.1),
    (np.pi * np.array([0.2, -0.3, 0.9]), np.array([-0.004, 0.002, 0.009]), -0.7),
]
MATERIALS = {
    "isotropic": isotropic(1000.0, 0.3),
    "orthotropic": orthotropic(Ex=800.0, Ey=1200.0, Ez=2500.0, nu_xy=0.2, nu_yz=0.25, nu_xz=0.3,
                               Gxy=300.0, Gyz=500.0, Gxz=450.0),
}
#: (material, formulation, mapped mesh) of the convergence study
MANUFACTURED_CASES = [("isotropic", "bbar", False), ("isotropic", "full", True), ("orthotropic", "full", False),
                      ("orthotropic", "bbar", True)]


def exact_u(x):
    """Displacement ``(p, 3)`` mm at points ``x (p, 3)``."""
    return sum(a[None, :] * np.sin(x @ k + phi)[:, None] for k, a, phi in WAVES)


def exact_grad(x):
    """Displacement gradient ``(p, 3, 3)``, [i, j] = du_i/dx_j."""
    return sum(np.cos(x @ k + phi)[:, None, None] * np.outer(a, k)[None] for k, a, phi in WAVES)


def body_force(C):
    """``b(x) = -div(C : eps(u))`` ``(p, 3)`` N/mm^3 for the stiffness C ``(6, 6)`` MPa, as a callable."""
    T = stiffness_tensor(C)
    terms = [(k, np.einsum("ijkl,j,l,k->i", T, k, k, a), phi) for k, a, phi in WAVES]

    def b(x):
        x = np.atleast_2d(x)
        return sum(ga[None, :] * np.sin(x @ k + phi)[:, None] for k, ga, phi in terms)

    return b


def voigt_strain(grad):
    """Tensor-shear Voigt strain ``(..., 6)`` (xx, yy, zz, xy, yz, xz) of displacement gradients ``(..., 3, 3)``."""
    e = 0.5 * (grad + np.swapaxes(grad, -1, -2))
    return np.stack([e[..., 0, 0], e[..., 1, 1], e[..., 2, 2], e[..., 0, 1], e[..., 1, 2], e[..., 0, 2]],
                    axis=-1)


def manufactured_mesh(n, mapped):
    """``n^3`` cells on :data:`LENGTHS`; ``mapped``: moved by a smooth, fixed mapping (not refined away), which
    the asymptotic rates must survive."""
    mesh = box(LENGTHS, (n, n, n))
    if mapped:
        x, y, z = mesh.points.T
        mesh.points = np.stack([x + 0.06 * np.sin(np.pi * y) * np.sin(np.pi * z / 0.9),
                                y + 0.05 * np.sin(np.pi * x / 1.2) * np.sin(np.pi * z / 0.9),
                                z + 0.04 * np.sin(np.pi * x / 1.2) * np.sin(np.pi * y)], axis=1)
    return mesh


def manufactured_errors(n, C, formulation, mapped):
    """Solve the manufactured problem on :func:`manufactured_mesh` ``(n, mapped)`` with stiffness ``C (6, 6)``
    MPa; returns the relative L2 displacement error (3x3x3 Gauss per cell), the relative energy-norm error
    of the strain at the element's Gauss points, and the conservation residual (reactions against the body
    force integrated by the element rule, relative)."""
    mesh = manufactured_mesh(n, mapped)
    model = Model(mesh, C=C, formulation=formulation)
    bnd = np.unique(np.concatenate([mesh.node_sets[s + side] for s in "xyz" for side in ("min", "max")]))
    ub = exact_u(mesh.points[bnd])
    for a, comp in enumerate("xyz"):
        model.prescribe(bnd, comp, ub[:, a])
    bf = body_force(C)
    model.add_body_force(bf)
    sol = model.solve(solver="direct")

    X = mesh.points[mesh.cells]                    # (m, 8, 3)
    xi, w = gauss_legendre_hex(3)
    N, dN = hex8_shape(xi), hex8_shape_gradients(xi)
    detJ = np.linalg.det(np.einsum("qak,mai->mqik", dN, X))
    xq = np.einsum("qa,mai->mqi", N, X).reshape(-1, 3)
    uh = np.einsum("qa,mai->mqi", N, sol.displacement[mesh.cells]).reshape(-1, 3)
    ue = exact_u(xq)
    dV = (detJ * w).ravel()
    l2 = np.sqrt((dV * ((uh - ue) ** 2).sum(1)).sum() / (dV * (ue ** 2).sum(1)).sum())

    el = HEX8
    detJ2 = np.linalg.det(np.einsum("qak,mai->mqik", el.gradients, X))
    xg = np.einsum("qa,mai->mqi", el.shape, X).reshape(-1, 3)
    eps_exact = voigt_strain(exact_grad(xg))
    de = engineering(sol.strain.reshape(-1, 6) - eps_exact)
    ee = engineering(eps_exact)
    dV2 = (detJ2 * el.weights).ravel()
    energy = np.sqrt((dV2 * np.einsum("pi,ij,pj->p", de, C, de)).sum()
                     / (dV2 * np.einsum("pi,ij,pj->p", ee, C, ee)).sum())

    bq = bf(xg)
    b_total = (dV2[:, None] * bq).sum(axis=0)
    cons = np.abs(sol.reaction(bnd) + b_total).max() / (dV2[:, None] * np.abs(bq)).sum(axis=0).max()
    return l2, energy, cons


# ---------------------------------------------------------------- tetrahedra
# Kuhn subdivision of the VTK hexahedron into six tetrahedra around the diagonal 0-6
_KUHN = np.array([[0, 1, 2, 6], [0, 1, 5, 6], [0, 3, 2, 6], [0, 3, 7, 6], [0, 4, 5, 6], [0, 4, 7, 6]])


def tetra_mesh(hexmesh, quadratic=False, split="kuhn"):
    """Conforming tet4 (or tet10, edge midpoints added) mesh of a hex8 mesh, cell data repeated per tetrahedron
    (in the order of the hexahedra).

    ``split="kuhn"``: six tetrahedra around each cell's 0-6 diagonal, no new node; it conforms where
    neighbouring cells are numbered alike (a structured grid), not on an unstructured mesh (neighbours may
    cut their common face along different diagonals). ``split="centre"``: twelve tetrahedra per cell, the
    cell's centre (mean of its corners, a new node) joined to each face halved along the diagonal through
    the face's smallest node number; neighbours halve a common face alike, so it conforms on any hex8 mesh.
    Node sets are kept; with ``quadratic`` they gain the midpoints of the edges whose two ends are in them."""
    p = hexmesh.points
    if split == "kuhn":
        cells, k = hexmesh.cells[:, _KUHN].reshape(-1, 4), 6
    elif split == "centre":
        m = hexmesh.n_cells
        q = hexmesh.cells[:, HEX8.faces]                                    # (m, 6, 4)
        r = np.argmin(q, axis=2)[..., None]
        q = np.take_along_axis(q, (r + np.arange(4)) % 4, axis=2)           # the face's smallest node first
        centre = np.broadcast_to((p.shape[0] + np.arange(m))[:, None, None], (m, 6, 1))
        tets = np.stack([np.concatenate([q[..., [0, 1, 2]], centre], axis=2),
                         np.concatenate([q[..., [0, 2, 3]], centre], axis=2)], axis=2)      # (m, 6, 2, 4)
        cells, k = tets.reshape(-1, 4), 12
        p = np.concatenate([p, p[hexmesh.cells].mean(axis=1)])
    else:
        raise ValueError(f"split = {split!r}: 'kuhn' or 'centre'")
    d = np.linalg.det(np.stack([p[cells[:, i]] - p[cells[:, 0]] for i in (1, 2, 3)], axis=1))
    neg = d < 0
    cells[neg] = cells[neg][:, [0, 2, 1, 3]]
    data = {key: np.repeat(v, k, axis=0) for key, v in hexmesh.cell_data.items()}
    if not quadratic:
        return Mesh(p, cells, cell_data=data, tag_names=hexmesh.tag_names, node_sets=hexmesh.node_sets,
                    cell_type="tetra")
    edges = np.sort(cells[:, TET10_EDGES].reshape(-1, 2), axis=1)
    uniq, inv = np.unique(edges, axis=0, return_inverse=True)
    mid = 0.5 * (p[uniq[:, 0]] + p[uniq[:, 1]])
    cells10 = np.concatenate([cells, p.shape[0] + inv.reshape(-1, 6)], axis=1)
    sets = {}
    for name, nodes in hexmesh.node_sets.items():
        member = np.zeros(p.shape[0], bool)
        member[nodes] = True
        sets[name] = np.concatenate([np.asarray(nodes), p.shape[0] + np.flatnonzero(member[uniq].all(axis=1))])
    return Mesh(np.concatenate([p, mid]), cells10, cell_data=data, tag_names=hexmesh.tag_names, node_sets=sets,
                cell_type="tetra10")


# ---------------------------------------------------------------- spherical inclusion (Eshelby)
def eshelby_sphere_stress(E_m, nu_m, E_i, nu_i, far_stress):
    """Uniform stress ``(6,)`` MPa (Voigt xx, yy, zz, xy, yz, xz) inside a spherical inclusion ``(E_i, nu_i)`` in
    an infinite isotropic matrix ``(E_m, nu_m)`` (MPa, -) under the far-field stress ``far_stress (6,)`` MPa
    (Eshelby 1957): the volumetric strain ``eps_v = eps_v_inf / (1 + alpha (K_i / K_m - 1))``,
    ``alpha = (1 + nu_m) / (3 (1 - nu_m))``, and the deviatoric strain
    ``e = e_inf / (1 + beta (mu_i / mu_m - 1))``, ``beta = 2 (4 - 5 nu_m) / (15 (1 - nu_m))``."""
    K_m, mu_m = E_m / (3 * (1 - 2 * nu_m)), E_m / (2 * (1 + nu_m))
    K_i, mu_i = E_i / (3 * (1 - 2 * nu_i)), E_i / (2 * (1 + nu_i))
    alpha = (1 + nu_m) / (3 * (1 - nu_m))
    beta = 2 * (4 - 5 * nu_m) / (15 * (1 - nu_m))
    s = np.asarray(far_stress, dtype=float)
    p = s[:3].mean()
    dev = s - np.array([p, p, p, 0.0, 0.0, 0.0])
    eps_v = 3 * p / (3 * K_m) / (1 + alpha * (K_i / K_m - 1))      # far-field volumetric strain p / K_m
    dev_in = dev / (2 * mu_m) / (1 + beta * (mu_i / mu_m - 1))      # deviatoric strain (tensor shear)
    return 2 * mu_i * dev_in + K_i * eps_v * np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])


def _structured_cells(index):
    """Hex8 cells (VTK order) ``(m, 8)`` of a structured block of node indices ``index (a+1, b+1, c+1)``."""
    i = index
    c = np.stack([i[:-1, :-1, :-1], i[1:, :-1, :-1], i[1:, 1:, :-1], i[:-1, 1:, :-1],
                  i[:-1, :-1, 1:], i[1:, :-1, 1:], i[1:, 1:, 1:], i[:-1, 1:, 1:]], axis=-1)
    return c.reshape(-1, 8)



def subdivide_hexes(mesh, k=2):
    """``mesh`` (hex8) with every cell split into ``k^3`` by its own trilinear map: the same geometry (the
    same faceted surfaces), cells ``k`` times smaller, so a change against ``mesh`` is the field's
    discretisation alone. Cell data repeated per new cell (``(m k^3, ...)``); each node set gains the new
    nodes whose parent corners all belong to it (its faces and edges refined); face sets are not carried."""
    t = np.linspace(-1, 1, k + 1)
    N = hex8_shape(np.stack(np.meshgrid(t, t, t, indexing="ij"), axis=-1).reshape(-1, 3))    # (q, 8)
    allp = np.einsum("qa,mai->mqi", N, mesh.points[mesh.cells]).reshape(-1, 3)
    scale = np.abs(mesh.points).max()
    _, first, inv = np.unique(np.round(allp / scale * 1e10).astype(np.int64), axis=0, return_index=True,
                              return_inverse=True)
    inv = inv.ravel()
    loc = _structured_cells(np.arange((k + 1) ** 3).reshape(k + 1, k + 1, k + 1))
    cells = inv.reshape(mesh.n_cells, -1)[:, loc].reshape(-1, 8)
    pts = allp[first]
    x = pts[cells]
    neg = np.einsum("mi,mi->m", np.cross(x[:, 1] - x[:, 0], x[:, 3] - x[:, 0]), x[:, 4] - x[:, 0]) < 0
    cells[neg] = cells[neg][:, [0, 3, 2, 1, 4, 7, 6, 5]]
    parent = np.abs(N) > 1e-12                                         # (q, 8): the corners a new node depends on
    sets = {}
    for name, nodes in mesh.node_sets.items():
        member = np.zeros(mesh.n_points, bool)
        member[nodes] = True
        inside = np.all(~parent[None] | member[mesh.cells][:, None, :], axis=2).ravel()     # (m q,)
        on = np.zeros(pts.shape[0], bool)
        on[inv[inside]] = True
        sets[name] = np.flatnonzero(on)
    data = {key: np.repeat(v, k ** 3, axis=0) for key, v in mesh.cell_data.items()}
    return Mesh(pts, cells, cell_data=data, tag_names=mesh.tag_names, node_sets=sets)

def sphere_octant_mesh(n, radius=1.0, box=8.0, core=0.5):
    """Conforming hex8 mesh of the octant ``[0, box]^3`` mm with a sphere of ``radius`` mm centred at the
    origin whose surface is made of cell faces (a "cube-sphere"): an inner cube ``[0, core * radius]^3``, three
    blocks blended from its outer faces to the sphere, and three blocks from the sphere out to the box
    faces. Every node outside the inner cube lies on a ray through the origin; the face grid of the blocks
    is equiangular (``tan(pi s / 4)``), so the sphere's faces have nearly equal size.

    ``n`` (a multiple of 4): cells across the sphere's diameter along an axis (``n / 4`` along the inner
    cube's half-side and ``n / 4`` layers from the cube to the sphere); ``h = 2 radius / n``. Outside the
    sphere ``round(n ln(box / radius) / 2)`` layers with logarithmic spacing, so the first layer is about
    ``h`` thick and the growth ratio ``1 + O(h)`` (a refinement refines the far field too).

    Returns a :class:`~vertebrafe.mesh.Mesh` with the cell tag ``region`` (1 matrix, 2 inclusion), the node
    sets ``xmin ymin zmin xmax ymax zmax`` of the six sides and the outward face sets ``xmax ymax zmax``."""
    if n < 4 or n % 4:
        raise ValueError(f"sphere_octant_mesh: n = {n}; expected a multiple of 4")
    nc = n // 4
    no = max(1, int(round(n * np.log(box / radius) / 2)))
    a = core * radius
    u = np.tan(0.25 * np.pi * np.arange(nc + 1) / nc)             # equiangular face parameter, 0..1
    pts, blocks = [], []

    def add(p):                                                   # p (a+1, b+1, c+1, 3)
        pts.append(p.reshape(-1, 3))
        blocks.append(p.shape[:3])

    cube = a * np.stack(np.meshgrid(u, u, u, indexing="ij"), axis=-1)
    add(cube)
    # layers of a block: rho from the cube face (0) to the sphere (nc) and on to the box face (nc + no)
    t_in = np.arange(nc + 1) / nc
    t_out = (np.exp(np.log(box / radius) * np.arange(1, no + 1) / no) - 1.0) / (box / radius - 1.0)
    S, T = np.meshgrid(u, u, indexing="ij")
    for d in range(3):
        D = np.zeros(S.shape + (3,))
        D[..., d], D[..., (d + 1) % 3], D[..., (d + 2) % 3] = 1.0, S, T   # ray directions, max component 1
        on_cube, on_sphere, on_box = a * D, radius * D / np.linalg.norm(D, axis=-1, keepdims=True), box * D
        inner = on_cube[None] + t_in[:, None, None, None] * (on_sphere - on_cube)[None]
        outer = on_sphere[None] + t_out[:, None, None, None] * (on_box - on_sphere)[None]
        p = np.concatenate([inner, outer])                        # (layers, s, t, 3)
        # order the block's axes so that its index axes follow x, y, z (positive cells)
        axes = [0, 0, 0]
        axes[d], axes[(d + 1) % 3], axes[(d + 2) % 3] = 0, 1, 2
        add(np.transpose(p, axes + [3]))
    allp = np.concatenate(pts)
    key = np.round(allp / (radius * 1e-9)).astype(np.int64)
    _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inv = inv.ravel()
    points = allp[first]
    cells, region, start = [], [], 0
    for b, shape in enumerate(blocks):
        idx = inv[start:start + int(np.prod(shape))].reshape(shape)
        start += int(np.prod(shape))
        c = _structured_cells(idx)
        cells.append(c)
        if b == 0:
            region.append(np.full(c.shape[0], 2))
        else:
            d = b - 1
            layer = np.indices(np.array(shape) - 1)[d].ravel()    # the block's radial cell index
            region.append(np.where(layer < nc, 2, 1))
    cells = np.concatenate(cells)
    x = points[cells]
    vol = np.einsum("mi,mi->m", np.cross(x[:, 1] - x[:, 0], x[:, 3] - x[:, 0]), x[:, 4] - x[:, 0])
    neg = vol < 0
    cells[neg] = cells[neg][:, [0, 3, 2, 1, 4, 7, 6, 5]]
    node_sets = {}
    for d, ax in enumerate("xyz"):
        node_sets[ax + "min"] = np.flatnonzero(np.abs(points[:, d]) < 1e-9 * radius)
        node_sets[ax + "max"] = np.flatnonzero(np.abs(points[:, d] - box) < 1e-9 * radius)
    face_sets = {}
    for d, ax in enumerate("xyz"):
        on = np.zeros(points.shape[0], bool)
        on[node_sets[ax + "max"]] = True
        faces = []
        for local in HEX8.faces:
            f = cells[:, local]
            faces.append(f[on[f].all(axis=1)])
        f = np.concatenate(faces)
        nrm = np.cross(points[f[:, 1]] - points[f[:, 0]], points[f[:, 3]] - points[f[:, 0]])
        f[nrm[:, d] < 0] = f[nrm[:, d] < 0][:, ::-1]
        face_sets[ax + "max"] = f
    return Mesh(points, cells, cell_data={"region": np.concatenate(region).astype(np.int64)},
                tag_names={"region": {1: "matrix", 2: "inclusion"}}, node_sets=node_sets, face_sets=face_sets)
