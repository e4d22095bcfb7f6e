"""Geometry of the cells: Jacobians per Gauss point and the :class:`Quality` measures built from them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Quality", "cell_quality", "cell_volumes", "det3", "jacobians", "CHUNK"]

CHUNK = 1 << 16           # cells per chunk in the geometry loops (bounded memory)


@dataclass(frozen=True)
class Quality:
    """Per-cell quality measures, see :meth:`Mesh.quality`.

    Attributes
    ----------
    min_jacobian : ndarray ``(m,)``
        Minimum of ``det(dx/dxi)`` over the Gauss points of each cell, mm^3 per unit reference
        volume (a cube of edge ``h`` gives ``h**3 / 8``). ``<= 0`` means inverted or degenerate.
    scaled_jacobian : ndarray ``(m,)``
        Minimum over the corners of the determinant of the three unit edge vectors at that corner
        (dimensionless, in ``[-1, 1]``): 1 for a cube (or any rectangular box), lower for distorted
        cells, ``<= 0`` for inverted corners. Cells with a zero-length edge get 0.
    """

    min_jacobian: np.ndarray
    scaled_jacobian: np.ndarray

    @property
    def inverted(self):
        """Indices ``(i,)`` of the cells with ``min_jacobian <= 0``."""
        return np.flatnonzero(self.min_jacobian <= 0.0)

    def __repr__(self):
        m = self.min_jacobian.size
        if m == 0:
            return "Quality(0 cells)"
        return (f"Quality({m} cells: min det J {self.min_jacobian.min():.4g} mm^3, "
                f"scaled Jacobian min {self.scaled_jacobian.min():.4g} / "
                f"mean {self.scaled_jacobian.mean():.4g}, inverted {self.inverted.size})")


def det3(a):
    """Determinant from the nine entries ``a(i, j)`` (arrays of any common shape)."""
    return (a(0, 0) * (a(1, 1) * a(2, 2) - a(1, 2) * a(2, 1))
            - a(0, 1) * (a(1, 0) * a(2, 2) - a(1, 2) * a(2, 0))
            + a(0, 2) * (a(1, 0) * a(2, 1) - a(1, 1) * a(2, 0)))


def jacobians(points, cells, grads):
    """Yield ``(start, J)`` per chunk of cells; ``J (3, q, 3, c)`` with ``J[i, p, j, e]`` =
    dx_i/dxi_j at reference point ``p`` of cell ``start + e``.

    ``grads`` is ``(q, k, 3)`` reference gradients. Three GEMMs per chunk,
    ``(q*3, k) @ (k, c)``, with the cell index last so the arithmetic after is contiguous.
    """
    q, k, _ = grads.shape
    GT = np.ascontiguousarray(grads.transpose(0, 2, 1).reshape(q * 3, k))    # rows (p, j)
    PT = np.ascontiguousarray(points.T)                                      # (3, n)
    buf = None
    for start in range(0, cells.shape[0], CHUNK):
        idx = np.ascontiguousarray(cells[start:start + CHUNK].T)           # (k, c)
        c = idx.shape[1]
        if buf is None or buf.shape[2] != c:
            buf = np.empty((3, q * 3, c))
        for i in range(3):                                                   # x, y, z
            np.matmul(GT, PT[i][idx], out=buf[i])
        yield start, buf.reshape(3, q, 3, c)


def cell_volumes(points, cells, element):
    """Volumes ``(m,)`` in mm^3 of ``cells (m, k)`` on ``points (n, 3)`` (mm) by Gauss integration of
    ``det(dx/dxi)`` (exact for trilinear hexahedra with the 2x2x2 rule); inverted cells give negative volumes."""
    vol = np.empty(cells.shape[0])
    for start, J in jacobians(points, cells, element.gradients):
        vol[start:start + J.shape[-1]] = element.weights @ det3(lambda i, j: J[i, :, j])      # (q, c) -> (c,)
    return vol


def cell_quality(points, cells, element):
    """Per-cell :class:`Quality` of ``cells (m, k)`` on ``points (n, 3)`` (mm) for an element type of
    :data:`vertebrafe.elements.ELEMENT_TYPES` (cells may use a subset of the points).

    Vectorised in chunks of :data:`CHUNK` cells: a million hexahedra take one to two seconds and
    ~100 MB of temporary memory.
    """
    q = element.gradients.shape[0]
    grads = np.concatenate([element.gradients, element.corner_gradients], axis=0)
    min_j = np.empty(cells.shape[0])
    scaled = np.empty(cells.shape[0])
    for start, J in jacobians(points, cells, grads):
        d = det3(lambda i, j: J[i, :, j])                       # (q + corners, c)
        stop = start + J.shape[-1]
        min_j[start:stop] = d[:q].min(axis=0)
        Jc = J[:, q:]                                            # (3, corners, 3, c)
        norms = np.sqrt(Jc[0] ** 2 + Jc[1] ** 2 + Jc[2] ** 2).prod(axis=1)  # (corners, c)
        s = np.divide(d[q:], norms, out=np.zeros_like(norms), where=norms > 0)
        scaled[start:stop] = s.min(axis=0)
    return Quality(min_jacobian=min_j, scaled_jacobian=scaled)
