"""Reference elements: node order, shape functions, quadrature and faces.

Everything an element kernel needs to know about an element type lives in one
:class:`ElementType` record of plain arrays, so a new type (tet4, tet10, ...) is added by
describing it here; the numba kernels in :mod:`vertebrafe.fem.kernels` are generic over it.
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
ELEMENT_TYPES = {"hexahedron": HEX8}
