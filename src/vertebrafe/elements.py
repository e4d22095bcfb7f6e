"""Reference elements: node order, shape functions, quadrature and faces.

Everything an element kernel needs to know about an element type lives in one
:class:`ElementType` record of plain arrays, so a new type (tet4, tet10, ...) is added by
describing it here; the numba kernels in :mod:`vertebrafe.fem.kernels` are generic over it
(hex8, and the tetrahedra tet4 and tet10 for external meshes).
That includes the optional internal (incompatible) displacement modes: hex8 carries the nine
modes of Wilson et al. (1973), P = 1 - xi^2, 1 - eta^2, 1 - zeta^2 per displacement component.
"""
from dataclasses import dataclass

import numpy as np

# Hex8 corners in VTK order, reference coordinates (xi, eta, zeta) in [-1, 1]^3.
HEX8_CORNERS = np.array(
    [[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1],
     [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], dtype=np.float64)

# Faces of a hex8 as local node indices, ordered so that the normal (right-hand rule) points outward.
HEX8_FACES = np.array(
    [[0, 3, 2, 1],   # zeta = -1 (bottom)
     [4, 5, 6, 7],   # zeta = +1 (top)
     [0, 1, 5, 4],   # eta = -1
     [2, 3, 7, 6],   # eta = +1
     [0, 4, 7, 3],   # xi = -1
     [1, 2, 6, 5]],  # xi = +1
    dtype=np.int64)

QUAD4_CORNERS = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)


def gauss_legendre_hex(order=2):
    """Tensor Gauss-Legendre rule on [-1, 1]^3: points ``(order**3, 3)`` and weights ``(order**3,)``."""
    g, w = np.polynomial.legendre.leggauss(order)
    pts = np.array([[a, b, c] for c in g for b in g for a in g])
    wts = np.array([wa * wb * wc for wc in w for wb in w for wa in w])
    return pts, wts


def gauss_legendre_quad(order=2):
    """Tensor Gauss-Legendre rule on [-1, 1]^2: points ``(order**2, 2)`` and weights ``(order**2,)``."""
    g, w = np.polynomial.legendre.leggauss(order)
    pts = np.array([[a, b] for b in g for a in g])
    wts = np.array([wa * wb for wb in w for wa in w])
    return pts, wts


def hex8_shape(xi):
    """Trilinear shape functions at reference points ``xi (p, 3)``: ``(p, 8)``."""
    xi = np.atleast_2d(xi)
    c = HEX8_CORNERS
    return 0.125 * np.prod(1.0 + xi[:, None, :] * c[None, :, :], axis=2)


def hex8_shape_gradients(xi):
    """Reference gradients dN/dxi at points ``xi (p, 3)``: ``(p, 8, 3)``."""
    xi = np.atleast_2d(xi)
    c = HEX8_CORNERS
    f = 1.0 + xi[:, None, :] * c[None, :, :]  # (p, 8, 3)
    d = np.empty((xi.shape[0], 8, 3))
    d[..., 0] = 0.125 * c[:, 0] * f[..., 1] * f[..., 2]
    d[..., 1] = 0.125 * c[:, 1] * f[..., 0] * f[..., 2]
    d[..., 2] = 0.125 * c[:, 2] * f[..., 0] * f[..., 1]
    return d


def hex8_mode_gradients(xi):
    """Reference gradients of the incompatible modes P_i = 1 - xi_i^2 at points ``xi (p, 3)``: ``(p, 3, 3)``.

    Mode i depends on reference coordinate i only: dP_i/dxi_j = -2 xi_i delta_ij.
    """
    xi = np.atleast_2d(xi)
    return -2.0 * xi[:, :, None] * np.eye(3)[None, :, :]


def quad4_shape(xi):
    """Bilinear shape functions at reference points ``xi (p, 2)``: ``(p, 4)``."""
    xi = np.atleast_2d(xi)
    c = QUAD4_CORNERS
    return 0.25 * np.prod(1.0 + xi[:, None, :] * c[None, :, :], axis=2)


def quad4_shape_gradients(xi):
    """Reference gradients of the bilinear shape functions at ``xi (p, 2)``: ``(p, 4, 2)``."""
    xi = np.atleast_2d(xi)
    c = QUAD4_CORNERS
    d = np.empty((xi.shape[0], 4, 2))
    d[..., 0] = 0.25 * c[:, 0] * (1.0 + xi[:, None, 1] * c[:, 1])
    d[..., 1] = 0.25 * c[:, 1] * (1.0 + xi[:, None, 0] * c[:, 0])
    return d


@dataclass(frozen=True)
class ElementType:
    """Tables that define an isoparametric solid element for the generic kernels.

    Attributes
    ----------
    name : str
        meshio/VTK cell type name (``"hexahedron"``).
    n_nodes : int
        Nodes per cell.
    points, weights : ndarray ``(q, 3)``, ``(q,)``
        Quadrature rule on the reference cell.
    shape : ndarray ``(q, n_nodes)``
        Shape function values at the quadrature points.
    gradients : ndarray ``(q, n_nodes, 3)``
        Reference shape-function gradients at the quadrature points.
    corner_gradients : ndarray ``(c, n_nodes, 3)``
        Reference gradients at the corners (for the scaled Jacobian).
    faces : ndarray ``(f, k)``
        Local node indices of each face, outward normal by the right-hand rule.
    center_gradients : ndarray ``(n_nodes, 3)``
        Reference shape-function gradients at the element centre (the Jacobian J0 that maps the
        incompatible modes).
    mode_gradients : ndarray ``(q, r, 3)``
        Reference gradients of the ``r`` scalar incompatible modes at the quadrature points; each mode
        adds one internal unknown per displacement component. ``r = 0``: the type has none.
    """

    name: str
    n_nodes: int
    points: np.ndarray
    weights: np.ndarray
    shape: np.ndarray
    gradients: np.ndarray
    corner_gradients: np.ndarray
    faces: np.ndarray
    center_gradients: np.ndarray
    mode_gradients: np.ndarray


def _hex8():
    pts, wts = gauss_legendre_hex(2)
    return ElementType(
        name="hexahedron", n_nodes=8, points=pts, weights=wts,
        shape=hex8_shape(pts), gradients=hex8_shape_gradients(pts),
        corner_gradients=hex8_shape_gradients(HEX8_CORNERS), faces=HEX8_FACES,
        center_gradients=hex8_shape_gradients(np.zeros(3))[0], mode_gradients=hex8_mode_gradients(pts))


HEX8 = _hex8()

# Tetrahedra in VTK order: corners (0,0,0), (1,0,0), (0,1,0), (0,0,1); tet10 adds the mid-edge nodes
# 4: 0-1, 5: 1-2, 6: 0-2, 7: 0-3, 8: 1-3, 9: 2-3.
TET4_CORNERS = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
TET10_EDGES = np.array([[0, 1], [1, 2], [0, 2], [0, 3], [1, 3], [2, 3]], dtype=np.int64)
# Faces (outward by the right-hand rule); tet10 faces list the three corners, then the mid-edge nodes
# of the edges corner0-corner1, corner1-corner2, corner2-corner0 (meshio's triangle6 order).
TET4_FACES = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], dtype=np.int64)
TET10_FACES = np.array([[0, 2, 1, 6, 5, 4], [0, 1, 3, 4, 8, 7], [0, 3, 2, 7, 9, 6], [1, 2, 3, 5, 9, 8]],
                       dtype=np.int64)


def _barycentric(xi):
    xi = np.atleast_2d(np.asarray(xi, dtype=np.float64))
    return np.column_stack([1.0 - xi.sum(axis=1), xi])                 # (p, 4)


_DL = np.array([[-1.0, -1.0, -1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])   # dL_i/dxi


def tet4_shape(xi):
    """Linear shape functions (barycentric coordinates) at reference points ``xi (p, 3)``: ``(p, 4)``."""
    return _barycentric(xi)


def tet4_shape_gradients(xi):
    """Reference gradients of the tet4 shape functions (constant): ``(p, 4, 3)``."""
    return np.broadcast_to(_DL, (np.atleast_2d(xi).shape[0], 4, 3)).copy()


def tet10_shape(xi):
    """Quadratic shape functions at ``xi (p, 3)``: ``(p, 10)``; corners ``L (2 L - 1)``, edges ``4 L_a L_b``."""
    L = _barycentric(xi)
    return np.concatenate([L * (2.0 * L - 1.0), 4.0 * L[:, TET10_EDGES[:, 0]] * L[:, TET10_EDGES[:, 1]]], axis=1)


def tet10_shape_gradients(xi):
    """Reference gradients of the tet10 shape functions at ``xi (p, 3)``: ``(p, 10, 3)``."""
    L = _barycentric(xi)
    corners = (4.0 * L - 1.0)[:, :, None] * _DL[None, :, :]
    a, b = TET10_EDGES[:, 0], TET10_EDGES[:, 1]
    edges = 4.0 * (L[:, b, None] * _DL[None, a, :] + L[:, a, None] * _DL[None, b, :])
    return np.concatenate([corners, edges], axis=1)


def keast_tet(degree):
    """Symmetric quadrature on the reference tetrahedron (volume 1/6): points ``(q, 3)``, weights ``(q,)``.

    ``degree`` 1: the centroid; 2: four points at barycentric (a, b, b, b), a = 0.5854101966249685,
    exact for quadratic integrands (the tet10 stiffness on straight-edged cells).
    """
    if degree == 1:
        return np.full((1, 3), 0.25), np.array([1.0 / 6.0])
    a, b = 0.5854101966249685, 0.1381966011250105
    bary = np.full((4, 4), b) + np.eye(4) * (a - b)
    return bary[:, 1:], np.full(4, 1.0 / 24.0)


def _tet(name, n, shape, grads, faces, degree):
    pts, wts = keast_tet(degree)
    return ElementType(
        name=name, n_nodes=n, points=pts, weights=wts, shape=shape(pts), gradients=grads(pts),
        corner_gradients=grads(TET4_CORNERS), faces=faces, center_gradients=grads(np.full(3, 0.25))[0],
        mode_gradients=np.zeros((pts.shape[0], 0, 3)))


#: Linear tetrahedron: one-point rule (constant strain).
TET4 = _tet("tetra", 4, tet4_shape, tet4_shape_gradients, TET4_FACES, 1)
#: Quadratic tetrahedron: four-point rule (linear strain).
TET10 = _tet("tetra10", 10, tet10_shape, tet10_shape_gradients, TET10_FACES, 2)

ELEMENT_TYPES = {"hexahedron": HEX8, "tetra": TET4, "tetra10": TET10}


def face_integrals(points, faces):
    """Per quad face and node (2x2 Gauss) of the faces ``(k, 4)`` of points ``(n, 3)`` mm: integral of
    N_a dA ``(k, 4)`` mm^2 and of N_a n dA ``(k, 4, 3)`` mm^2 (``n`` the unit normal by the right-hand rule
    of the face's node order). Pressures, tractions and cavity volumes integrate over faces with these."""
    pts, w = gauss_legendre_quad(2)
    N = quad4_shape(pts)  # (g, 4)
    dN = quad4_shape_gradients(pts)  # (g, 4, 2)
    x = points[faces]  # (k, 4, 3)
    t1 = np.einsum("ga,kai->kgi", dN[:, :, 0], x)
    t2 = np.einsum("ga,kai->kgi", dN[:, :, 1], x)
    nda = np.cross(t1, t2)  # (k, g, 3) area-scaled normal
    da = np.linalg.norm(nda, axis=2)
    scalar = np.einsum("g,ga,kg->ka", w, N, da)
    vector = np.einsum("g,ga,kgi->kai", w, N, nda)
    return scalar, vector
