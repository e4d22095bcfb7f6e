"""Partial-volume elasticity of cells cut by a cement (or cavity, rim) surface.

A cell that a bolus surface cuts holds several phases (host bone, cement, compacted bone) with volume
fractions ``f_p``. Three rules give its elasticity ``(6, 6)`` (Voigt order xx, yy, zz, xy, yz, xz,
engineering shear strains, MPa):

* ``"laminate"`` (default): the exact homogenised stiffness of a stack of flat layers of the phases with
  unit normal ``n`` (the local normal of the cut surface). Across the layers (normal stress and the two
  shear stresses on the interface plane) the phases act in series, along them (in-plane strains) in
  parallel, so a cell that a surface cuts with a thin sliver of stiff cement is not stiffer across the
  sliver than the sliver allows. This is the first-order consistent rule: a smooth surface is flat at
  the scale of a small cell, so the error of a cut cell falls with its size; it cannot bridge a gap
  between a bolus and an endplate with a column of stiff mixed cells (the Voigt rule does). Formula, in
  the frame where ``n = e_z``, with the strain split into the in-plane part ``t = (xx, yy, xy)`` (equal in
  every layer) and the stress split into the interface part ``n = (zz, yz, xz)`` (equal in every layer)
  and ``C = [[A, B], [B^T, D]]`` per phase::

      D* = <D^-1>^-1,   B*^T = D* <D^-1 B^T>,   A* = <A - B D^-1 B^T> + <B D^-1> D* <D^-1 B^T>

  (``<.>`` the fraction-weighted mean over the phases; Backus 1962, Milton 2002 ch. 9). It holds for any
  anisotropy of the phases.
* ``"voigt"``: ``sum f_p C_p`` (uniform strain; an upper bound; bridges: kept for comparison).
* ``"hashin-shtrikman"``: mean of the HS bounds of two isotropic phases (isotropic hosts only).
"""
from __future__ import annotations

import numpy as np

from ..elasticity import stiffness_tensor, stiffness_voigt
from ..errors import InputError

__all__ = ["MIXING_RULES", "laminate", "rotate_stiffness", "frame_with_normal", "cut_normals"]

MIXING_RULES = ("laminate", "voigt", "hashin-shtrikman")

_T = np.array([0, 1, 3])            # in-plane strains (continuous across layers normal to z)
_N = np.array([2, 4, 5])            # interface stresses (continuous)


def rotate_stiffness(C, Q):
    """Stiffness ``(k, 6, 6)`` expressed in the rotated bases ``Q (k, 3, 3)`` (rows: new axes in old
    coordinates): ``C'_abcd = Q_ai Q_bj Q_ck Q_dl C_ijkl``."""
    T = stiffness_tensor(C)
    R = np.einsum("kai,kbj,kcm,kdl,kijml->kabcd", Q, Q, Q, Q, T, optimize=True)
    return stiffness_voigt(R)


def frame_with_normal(n):
    """Orthonormal bases ``(k, 3, 3)`` (rows: new x, y, z axes) whose z axis is the unit normal ``n (k, 3)``."""
    n = np.asarray(n, dtype=float)
    n = n / np.linalg.norm(n, axis=1, keepdims=True)
    helper = np.where(np.abs(n[:, [0]]) < 0.9, np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]]))
    e1 = np.cross(helper, n)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(n, e1)
    return np.stack([e1, e2, n], axis=1)


def laminate(C_phases, fractions, normals):
    """Homogenised stiffness ``(k, 6, 6)`` of laminates of ``p`` phases.

    ``C_phases (p, k, 6, 6)`` (or ``(p, 6, 6)`` broadcast over the cells), ``fractions (p, k)`` summing to
    1 per cell, ``normals (k, 3)`` the layer normals (any length > 0). See the module docstring."""
    f = np.asarray(fractions, dtype=float)
    p, k = f.shape
    C = np.asarray(C_phases, dtype=float)
    C = np.broadcast_to(C[:, None] if C.ndim == 3 else C, (p, k, 6, 6))
    if not np.allclose(f.sum(axis=0), 1.0, atol=1e-9):
        raise InputError("laminate: the phase fractions must sum to 1 in every cell")
    Q = frame_with_normal(normals)
    Cr = np.stack([rotate_stiffness(C[i], Q) for i in range(p)])         # (p, k, 6, 6)
    A = Cr[:, :, _T[:, None], _T]
    B = Cr[:, :, _T[:, None], _N]
    D = Cr[:, :, _N[:, None], _N]
    Dinv = np.linalg.inv(D)
    DinvBt = Dinv @ np.swapaxes(B, -1, -2)                                # (p, k, 3, 3)
    w = f[:, :, None, None]
    Ds = np.linalg.inv((w * Dinv).sum(axis=0))
    M = (w * DinvBt).sum(axis=0)                                          # <D^-1 B^T>
    Bs_t = Ds @ M
    As = (w * (A - B @ DinvBt)).sum(axis=0) + np.swapaxes(M, -1, -2) @ Ds @ M
    out = np.empty((k, 6, 6))
    out[:, _T[:, None], _T] = As
    out[:, _T[:, None], _N] = np.swapaxes(Bs_t, -1, -2)
    out[:, _N[:, None], _T] = Bs_t
    out[:, _N[:, None], _N] = Ds
    out = 0.5 * (out + np.swapaxes(out, -1, -2))
    return rotate_stiffness(out, np.swapaxes(Q, -1, -2))


def cut_normals(x, w, inside):
    """Normal ``(m, 3)`` of the surface cutting each cell, from sub-cell samples: the direction from the
    centroid of the samples ``inside`` toward the centroid of the cell (first moment of the indicator; for
    a flat cut of a symmetric cell it is the cut's normal, pointing out of the inside). ``x (m, q, 3)``
    sample points, ``w (m, q)`` weights, ``inside (m, q)`` bool. Cells not cut get ``(0, 0, 1)``."""
    fin = np.sum(w * inside, axis=1)
    cell = np.einsum("mq,mqi->mi", w, x)
    with np.errstate(invalid="ignore", divide="ignore"):
        cin = np.einsum("mq,mqi->mi", w * inside, x) / fin[:, None]
    n = cell - cin
    norm = np.linalg.norm(n, axis=1)
    ok = (fin > 0) & (fin < 1) & (norm > 0)
    out = np.tile([0.0, 0.0, 1.0], (x.shape[0], 1))
    out[ok] = n[ok] / norm[ok, None]
    return out
