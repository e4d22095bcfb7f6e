"""How many cells across a cement bolus: the mesh resolution of an augmented vertebra's cement.

A stiff inclusion is resolved by the number of cells across it, not by the element size alone: a stiff
sphere (74 times the bone, as the cement-bone composite against L1's cancellous bone) n cells across its
diameter has its mean stress overestimated by +15 / +9 / +4 % at n = 8 / 16 / 32 with a fitted (snapped)
surface (docs/validation.md, "Stiff spherical inclusion (Eshelby)"). :func:`find_boluses` measures each
bolus of a set of cells; :func:`resolution` summarises a treated level, and :func:`vertebroplasty
<vertebrafe.clinical.vertebroplasty>` and :func:`kyphoplasty <vertebrafe.clinical.kyphoplasty>` record it in
their operation's results (``bolus_count``, ``bolus_narrowest_mm``, ``bolus_cells_across``).

Definitions:

* cement cells of a level: its cells tagged ``cement`` (PMMA) or ``cement_bone`` (cement-bone composite), and
  cells whose ``cement_fraction`` is at least 0.5 (a cut cell of a mixed surface counts whole with the
  cement when it is at least half cement, as the region tags do);
* a bolus: a connected set of cement cells, two cells being connected when they share a node;
* its volume: the sum of its cells' volumes (mm^3), whole cells;
* its narrowest extent (mm): ``2 sqrt(5 lambda_min)``, with ``lambda_min`` the least eigenvalue of the
  volume-weighted second moment (covariance) of the bolus about its centroid, each cell counted as a cube
  of its own volume (its centroid's moment plus ``h_i^2 / 12`` on each axis, ``h_i`` the cube root of its
  volume). For a uniform solid ellipsoid the second moment along a principal axis is ``a^2 / 5``, so the rule
  gives its least diameter ``2 a_min`` exactly (a box of side ``L`` gives ``sqrt(5 / 3) L``, 1.29 L);
* its local cell size ``h``: the cube root of the mean volume of its cells (mm);
* cells across: narrowest extent / ``h``, the ``n`` of the inclusion study (cells across the diameter).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._common import make_operation

__all__ = ["Bolus", "CEMENT_TISSUES", "find_boluses", "cement_cells", "level_boluses", "resolution",
           "record_resolution"]

#: Region tags of cement: PMMA (kyphoplasty, vertebroplasty with ``material="pmma"``) and the cement-bone
#: composite (vertebroplasty's default), as :data:`vertebrafe.post.metrics.CEMENT_REGIONS`.
CEMENT_TISSUES = ("cement_bone", "cement")


@dataclass(frozen=True)
class Bolus:
    """One connected bolus of cement cells (see the module docstring for the definitions)."""

    cells: np.ndarray           #: cell indices into the mesh
    volume_mm3: float
    narrowest_mm: float
    cell_size_mm: float
    cells_across: float

    @property
    def n_cells(self):
        return int(self.cells.size)


def _components(cells, selected):
    """Component label ``(k,)`` of each selected cell (cells sharing a node are connected)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    conn = cells[selected]
    k, per = conn.shape
    nodes, local = np.unique(conn.ravel(), return_inverse=True)
    # the bipartite graph cell -- node: its components are the boluses (with their nodes)
    rows = np.repeat(np.arange(k), per)
    graph = coo_matrix((np.ones(k * per), (rows, k + local.ravel())), shape=(k + nodes.size,) * 2)
    _, label = connected_components(graph, directed=False)
    _, label = np.unique(label[:k], return_inverse=True)
    return label


def find_boluses(cells, centres, volumes, selected):
    """The connected boluses of the ``selected`` cells, largest first.

    Parameters
    ----------
    cells : (m, k) int array
        Connectivity (node indices) of every cell of the mesh.
    centres : (m, 3) array
        Cell centroids (mm).
    volumes : (m,) array
        Cell volumes (mm^3).
    selected : (m,) bool array or index array
        The cement cells.

    Returns a list of :class:`Bolus`.
    """
    cells = np.asarray(cells)
    idx = np.flatnonzero(selected) if np.asarray(selected).dtype == bool else np.asarray(selected, dtype=np.int64)
    if idx.size == 0:
        return []
    label = _components(cells, idx)
    out = []
    for c in range(label.max() + 1):
        mine = idx[label == c]
        v = np.asarray(volumes, dtype=float)[mine]
        x = np.asarray(centres, dtype=float)[mine]
        vol = float(v.sum())
        mean = v @ x / vol
        d = x - mean
        own = np.cbrt(np.abs(v)) ** 2 / 12.0                       # each cell a cube of its own volume
        M = (d * v[:, None]).T @ d / vol + np.eye(3) * float(v @ own) / vol
        lam = max(float(np.linalg.eigvalsh(M)[0]), 0.0)
        narrow = 2.0 * math.sqrt(5.0 * lam)
        h = float(np.cbrt(vol / mine.size))
        out.append(Bolus(cells=mine, volume_mm3=vol, narrowest_mm=narrow, cell_size_mm=h,
                         cells_across=narrow / h))
    return sorted(out, key=lambda b: -b.volume_mm3)


def cement_cells(mesh, level):
    """Boolean mask ``(m,)`` of the cement cells of vertebra ``level`` (module docstring)."""
    code = {v: k for k, v in mesh.tag_names["level"].items()}[level]
    in_level = mesh.cell_data["level"] == code
    names = mesh.tag_names.get("region", {})
    codes = [k for k, v in names.items() if v in CEMENT_TISSUES]
    cement = np.isin(mesh.cell_data["region"], codes)
    if "cement_fraction" in mesh.cell_data:
        cement |= np.asarray(mesh.cell_data["cement_fraction"], dtype=float) >= 0.5
    return in_level & cement


def level_boluses(mesh, level):
    """The boluses (:func:`find_boluses`) of vertebra ``level`` of ``mesh``."""
    sel = cement_cells(mesh, level)
    if not sel.any():
        return []
    return find_boluses(mesh.cells, mesh.cell_centers(), mesh.cell_volumes(), sel)


def resolution(mesh, level):
    """``{"bolus_count", "bolus_narrowest_mm", "bolus_cells_across"}`` of vertebra ``level``: the number of
    boluses and the narrowest extent (mm) and cells across of the bolus with the fewest cells across (NaN
    without cement)."""
    found = level_boluses(mesh, level)
    if not found:
        return {"bolus_count": 0, "bolus_narrowest_mm": math.nan, "bolus_cells_across": math.nan}
    worst = min(found, key=lambda b: b.cells_across)
    return {"bolus_count": len(found), "bolus_narrowest_mm": worst.narrowest_mm,
            "bolus_cells_across": worst.cells_across}


def record_resolution(segment):
    """``segment`` (a newly derived one, modified in place) with :func:`resolution` of the level of its last
    operation added to that operation's results."""
    op = segment.history[-1]
    results = dict(op.results, **resolution(segment.mesh, op.level))
    segment.history = segment.history[:-1] + (make_operation(op.kind, op.level, op.parameters, results, op.data),)
    return segment
