"""Small mesh builders and quadrature helpers for the verification tests (imported by the tests).

The builders here do not depend on :func:`vertebrafe.mesh.box` so that distorted meshes, layered
materials and custom node sets can be made directly. All lengths in mm.

Node numbering of a structured grid with ``shape = (nx, ny, nz)`` cells:
``node(i, j, k) = i + (nx + 1) * (j + (ny + 1) * k)``; cells are hex8 in VTK order.
"""
from dataclasses import dataclass, field

import numpy as np

from vertebrafe.elements import HEX8, gauss_legendre_hex, hex8_shape, hex8_shape_gradients
from vertebrafe.verification import engineering, voigt_strain  # noqa: F401 (for the tests)

try:  # the public names once the core is integrated
    from vertebrafe import Mesh, Model  # noqa: F401
except ImportError:  # pragma: no cover - before integration
    from vertebrafe.mesh import Mesh  # noqa: F401
    from vertebrafe.fem.model import Model  # noqa: F401

# Local faces of a structured cell (VTK order) that lie on each side of the box, outward normals;
# same node order as vertebrafe.elements.HEX8_FACES.
_SIDE_FACE = {
    "zmin": HEX8.faces[0], "zmax": HEX8.faces[1],
    "ymin": HEX8.faces[2], "ymax": HEX8.faces[3],
    "xmin": HEX8.faces[4], "xmax": HEX8.faces[5],
}


@dataclass
class Grid:
    """A structured hex8 grid and its index bookkeeping.

    points ``(n, 3)`` mm, cells ``(m, 8)`` int64 (VTK order), ijk ``(n, 3)`` node grid indices,
    cell_ijk ``(m, 3)`` cell grid indices, node_sets and face_sets of the six sides (``xmin`` ...).
    """

    shape: tuple
    lengths: tuple
    origin: tuple
    points: np.ndarray
    cells: np.ndarray
    ijk: np.ndarray
    cell_ijk: np.ndarray
    node_sets: dict = field(default_factory=dict)
    face_sets: dict = field(default_factory=dict)

    def node(self, i, j, k):
        nx, ny, _ = self.shape
        return i + (nx + 1) * (j + (ny + 1) * k)

    @property
    def boundary(self):
        """Bool mask ``(n,)`` of nodes on the outer surface of the grid."""
        n = np.asarray(self.shape)
        return ((self.ijk == 0) | (self.ijk == n)).any(axis=1)

    def mesh(self, cell_data=None):
        return Mesh(self.points.copy(), self.cells.copy(), cell_data=cell_data,
                    node_sets={k: v.copy() for k, v in self.node_sets.items()},
                    face_sets={k: v.copy() for k, v in self.face_sets.items()})


def grid(shape, lengths=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)):
    """Structured box of ``shape`` cells spanning ``lengths`` mm from ``origin``; returns :class:`Grid`."""
    nx, ny, nz = shape
    axes = [np.linspace(o, o + L, n + 1) for o, L, n in zip(origin, lengths, shape)]
    k, j, i = np.meshgrid(np.arange(nz + 1), np.arange(ny + 1), np.arange(nx + 1), indexing="ij")
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1).astype(np.int64)
    points = np.stack([axes[0][ijk[:, 0]], axes[1][ijk[:, 1]], axes[2][ijk[:, 2]]], axis=1)

    ck, cj, ci = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    cell_ijk = np.stack([ci.ravel(), cj.ravel(), ck.ravel()], axis=1).astype(np.int64)

    def nid(i, j, k):
        return i + (nx + 1) * (j + (ny + 1) * k)

    ci, cj, ck = cell_ijk.T
    cells = np.stack([nid(ci, cj, ck), nid(ci + 1, cj, ck), nid(ci + 1, cj + 1, ck), nid(ci, cj + 1, ck),
                      nid(ci, cj, ck + 1), nid(ci + 1, cj, ck + 1), nid(ci + 1, cj + 1, ck + 1),
                      nid(ci, cj + 1, ck + 1)], axis=1).astype(np.int64)
    g = Grid(tuple(shape), tuple(lengths), tuple(origin), points, cells, ijk, cell_ijk)
    for axis, name in enumerate("xyz"):
        n = shape[axis]
        g.node_sets[name + "min"] = np.flatnonzero(ijk[:, axis] == 0)
        g.node_sets[name + "max"] = np.flatnonzero(ijk[:, axis] == n)
        g.face_sets[name + "min"] = cells[cell_ijk[:, axis] == 0][:, _SIDE_FACE[name + "min"]]
        g.face_sets[name + "max"] = cells[cell_ijk[:, axis] == n - 1][:, _SIDE_FACE[name + "max"]]
    return g


def perturb(g, amount, seed=0, which=None, axes=(0, 0, 0), keep=None):
    """Move nodes of grid ``g`` randomly by up to ``amount`` times the local cell size per axis.

    ``which``: bool mask of nodes to move (default: interior nodes only, so that the box faces stay
    planar). ``axes``: per axis, 1 to move along it (default: all three when ``(0, 0, 0)``).
    ``keep``: optional bool mask ``(n, 3)`` of coordinates that must not move. Returns ``g`` (modified).
    """
    rng = np.random.default_rng(seed)
    if which is None:
        which = ~g.boundary
    h = np.asarray(g.lengths, dtype=float) / np.asarray(g.shape)
    move = np.ones(3) if not any(axes) else np.asarray(axes, dtype=float)
    d = rng.uniform(-amount, amount, size=g.points.shape) * h * move
    d[~which] = 0.0
    if keep is not None:
        d[keep] = 0.0
    g.points = g.points + d
    return g


def jacobian_dets(points, cells, order=2):
    """Jacobian determinants ``(m, q)`` and physical points ``(m, q, 3)`` of a Gauss rule of ``order``."""
    xi, w = gauss_legendre_hex(order)
    N = hex8_shape(xi)                 # (q, 8)
    dN = hex8_shape_gradients(xi)      # (q, 8, 3)
    X = points[cells]                  # (m, 8, 3)
    J = np.einsum("qak,mai->mqik", dN, X)
    return np.linalg.det(J), np.einsum("qa,mai->mqi", N, X), w, N


def gauss_points(points, cells, element=HEX8):
    """Physical coordinates ``(m, q, 3)`` of the element quadrature points of ``element``."""
    return np.einsum("qa,mai->mqi", element.shape, points[cells])


def reaction_moment(sol, nodes, points, about):
    """Force ``(3,)`` N and moment ``(3,)`` N mm about ``about`` of the reactions at ``nodes``.

    Uses one ``sol.reaction([node])`` per node (small node sets only).
    """
    R = np.array([sol.reaction(np.array([n])) for n in nodes])
    r = points[nodes] - np.asarray(about)
    return R.sum(axis=0), np.cross(r, R).sum(axis=0)
