"""Surface integrals over quad faces (pressures, tractions, cavity volumes)."""
from __future__ import annotations

import numpy as np

from ..elements import gauss_legendre_quad, quad4_shape, quad4_shape_gradients

__all__ = ["face_integrals"]


def face_integrals(points, faces):
    """Per quad face and node (2x2 Gauss): integral of N_a dA ``(k, 4)`` mm^2 and of N_a n dA ``(k, 4, 3)``
    (``n`` the unit normal by the right-hand rule of the face's node order)."""
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
