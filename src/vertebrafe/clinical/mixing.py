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
  anisotropy of the phases. The rule itself lives in :func:`vertebrafe.elasticity.laminate` (also used for the
  cortical shell of voxel meshes).
* ``"voigt"``: ``sum f_p C_p`` (uniform strain; an upper bound; bridges: kept for comparison).
* ``"hashin-shtrikman"``: mean of the HS bounds of two isotropic phases (isotropic hosts only).
"""
from __future__ import annotations

import numpy as np

from ..elasticity import frame_with_normal, laminate, rotate_stiffness

__all__ = ["MIXING_RULES", "laminate", "rotate_stiffness", "frame_with_normal", "cut_normals"]

MIXING_RULES = ("laminate", "voigt", "hashin-shtrikman")

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
