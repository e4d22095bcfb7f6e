"""Structured box meshes (tests, verification, examples)."""
from __future__ import annotations

import numpy as np

from ..elements import HEX8_FACES
from ..errors import MeshError
from .core import Mesh

__all__ = ["box"]


def box(lengths=(1.0, 1.0, 1.0), shape=(1, 1, 1), origin=(0.0, 0.0, 0.0)):
    """A structured hexahedral box mesh.

    Parameters
    ----------
    lengths : (3,) float
        Edge lengths ``(lx, ly, lz)``, mm, all > 0.
    shape : (3,) int
        Cells per direction ``(nx, ny, nz)``, all >= 1.
    origin : (3,) float
        Lower corner, mm.

    Returns
    -------
    Mesh
        ``nx*ny*nz`` cells, ``(nx+1)(ny+1)(nz+1)`` points (x fastest, then y, then z), node sets and
        outward face sets ``xmin, xmax, ymin, ymax, zmin, zmax`` for the six sides. A million cells
        take about a second.
    """
    lengths = np.asarray(lengths, dtype=np.float64).ravel()
    origin = np.asarray(origin, dtype=np.float64).ravel()
    shp = np.asarray(shape).ravel()
    if lengths.shape != (3,) or not np.all(np.isfinite(lengths)) or np.any(lengths <= 0):
        raise MeshError(f"box: lengths {lengths.tolist()}; expected three finite values > 0 (mm)")
    if origin.shape != (3,) or not np.all(np.isfinite(origin)):
        raise MeshError(f"box: origin {origin.tolist()}; expected three finite values (mm)")
    if (shp.shape != (3,) or not np.issubdtype(shp.dtype, np.integer) or np.any(shp < 1)):
        raise MeshError(f"box: shape {shp.tolist()}; expected three integers >= 1")
    nx, ny, nz = (int(v) for v in shp)
    px, py, pz = nx + 1, ny + 1, nz + 1
    axes = [origin[d] + lengths[d] * np.linspace(0.0, 1.0, s + 1) for d, s in enumerate((nx, ny, nz))]
    pts = np.empty((pz, py, px, 3))
    pts[..., 0] = axes[0][None, None, :]
    pts[..., 1] = axes[1][None, :, None]
    pts[..., 2] = axes[2][:, None, None]
    pts = pts.reshape(-1, 3)
    # lower-corner node of each cell, cells ordered x fastest
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    base = (i + px * (j + py * k)).ravel().astype(np.int64)
    offs = np.array([0, 1, 1 + px, px, px * py, 1 + px * py, 1 + px + px * py, px + px * py],
                    dtype=np.int64)
    cells = base[:, None] + offs[None, :]
    # sides: node sets from the grid indices, face sets from the local faces of the side cells
    node_ijk = np.stack(np.meshgrid(np.arange(pz), np.arange(py), np.arange(px), indexing="ij"),
                        axis=-1).reshape(-1, 3)[:, ::-1]             # (n, 3) = (i, j, k)
    cell_ijk = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1)
    counts = (nx, ny, nz)
    node_sets, face_sets = {}, {}
    # local faces: xi-1 -> 4, xi+1 -> 5, eta-1 -> 2, eta+1 -> 3, zeta-1 -> 0, zeta+1 -> 1
    local = {("x", 0): 4, ("x", 1): 5, ("y", 0): 2, ("y", 1): 3, ("z", 0): 0, ("z", 1): 1}
    for d, ax in enumerate("xyz"):
        for side, label in ((0, "min"), (1, "max")):
            node_sets[ax + label] = np.flatnonzero(node_ijk[:, d] == side * counts[d])
            on = cell_ijk[:, d] == side * (counts[d] - 1)
            face_sets[ax + label] = cells[on][:, HEX8_FACES[local[(ax, side)]]]
    return Mesh(pts, cells, node_sets=node_sets, face_sets=face_sets)
