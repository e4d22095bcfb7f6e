"""Axial springs between points of a mesh: linear, tension-only (cables, fibres, ligaments) or
compression-only (contact across a gap).

A description of the springs and their force law, below the FE core: the anatomy builds them (annulus
fibres, ligaments) and :meth:`vertebrafe.fem.Model.add_springs` adds them to a model.

A :class:`SpringSet` is ``k`` two-point springs. Each end is a point whose displacement interpolates
mesh nodes, ``u_end = sum_a w_a u[node_a]``: a single node (weight 1, ``p = 1``) for a ligament between
nodes, or the eight nodes of a host hex8 with its shape-function values for a fibre embedded in a cell.
The spring acts along its unit ``direction`` ``n`` (reference configuration, small displacements):

* elongation ``delta = n . (u_b - u_a)`` (mm);
* force ``F = stiffness (delta - onset)`` (N, tension positive) while the spring is **active**, else 0;
* ``kind = "tension"``: active when ``delta > onset`` (``onset = slack >= 0``: a cable that tightens
  after that much elongation); ``"compression"``: active when ``delta < onset`` (``onset = -gap <= 0``:
  contact after the gap closes); ``"linear"``: always active.

The force pulls the two ends together when positive: ``-F n`` on end b, ``+F n`` on end a.

Attributes are plain arrays, so exporters can write them as spring/truss elements: ``nodes_a, weights_a,
nodes_b, weights_b (k, p)``, ``direction (k, 3)``, ``stiffness (k,)`` N/mm, ``onset (k,)`` mm,
``length (k,)`` mm (reference distance between the ends), ``area (k,)`` mm^2 (for stresses; NaN where
not meaningful), ``kind`` str, ``active (k,)`` bool (the current contact/tautness state, updated by
:func:`vertebrafe.fem.active_set.solve`), ``name`` str and ``group (k,)`` int with ``group_names``
(e.g. one group per ligament or facet joint); ``host_cells (k,)`` int, for springs embedded in cells
(both ends inside one cell, e.g. fibres), the cell of each spring, else None.
``member (k,)`` int, where several springs on the same two ends make up one piecewise-linear element
(e.g. an annulus fibre with a stiffening law), the element each spring belongs to (0..m-1), else None:
:meth:`SpringSet.member_totals` sums per element. :func:`law_springs` builds such elements from a
piecewise-linear tension law.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .errors import InputError

KINDS = ("linear", "tension", "compression")


@dataclass(eq=False)
class SpringSet:
    """``k`` axial springs of one kind (see the module docstring for every attribute)."""

    name: str
    kind: str
    nodes_a: np.ndarray
    weights_a: np.ndarray
    nodes_b: np.ndarray
    weights_b: np.ndarray
    direction: np.ndarray
    stiffness: np.ndarray
    onset: np.ndarray
    length: np.ndarray
    area: np.ndarray
    active: np.ndarray
    group: np.ndarray
    group_names: dict = field(default_factory=dict)
    host_cells: np.ndarray = None
    member: np.ndarray = None
    #: sparse stiffness: part of the matrix the AMG preconditioner is built on
    precondition = True

    @property
    def size(self):
        return int(self.stiffness.size)

    def gradient(self, n_points):
        """Sparse ``G (k, 3 n_points)`` with ``delta = G @ u.ravel()`` (elongations, mm)."""
        k, p = self.nodes_a.shape
        q = self.nodes_b.shape[1]
        rows = np.repeat(np.arange(k), 3 * (p + q))
        cols = np.concatenate([3 * self.nodes_a[:, :, None] + np.arange(3),
                               3 * self.nodes_b[:, :, None] + np.arange(3)], axis=1)      # (k, p+q, 3)
        w = np.concatenate([-self.weights_a, self.weights_b], axis=1)                     # (k, p+q)
        vals = w[:, :, None] * self.direction[:, None, :]
        return sp.csr_matrix((vals.ravel(), (rows, cols.ravel())), shape=(k, 3 * n_points))

    def elongation(self, displacement):
        """Elongations ``(k,)`` mm for node displacements ``(n, 3)``."""
        u = np.asarray(displacement)
        ua = np.einsum("kp,kpi->ki", self.weights_a, u[self.nodes_a])
        ub = np.einsum("kp,kpi->ki", self.weights_b, u[self.nodes_b])
        return np.einsum("ki,ki->k", self.direction, ub - ua)

    def wants_active(self, delta):
        """The state each spring should be in at elongation ``delta`` (bool ``(k,)``)."""
        if self.kind == "tension":
            return delta > self.onset
        if self.kind == "compression":
            return delta < self.onset
        return np.ones(self.size, bool)

    def forces(self, displacement, active=None):
        """Axial forces ``(k,)`` N (tension positive) in the state ``active`` (default the current one)."""
        active = self.active if active is None else active
        return np.where(active, self.stiffness * (self.elongation(displacement) - self.onset), 0.0)

    def nodal_forces(self, displacement, n_points, active=None):
        """Forces ``(n, 3)`` N that the springs exert on the nodes' internal-force balance (``G^T F``)."""
        F = self.forces(displacement, active)
        return (self.gradient(n_points).T @ F).reshape(n_points, 3)

    def member_totals(self, values):
        """``(first, total)``: the index of the first spring of each element (see ``member``) and the sum of
        ``values (k,)`` over each element's springs; one element per spring where ``member`` is None."""
        values = np.asarray(values, dtype=float)
        if self.member is None:
            return np.arange(self.size), values
        first = np.full(int(self.member.max()) + 1, self.size)
        np.minimum.at(first, self.member, np.arange(self.size))
        return first, np.bincount(self.member, weights=values, minlength=first.size)

    def group_forces(self, displacement, active=None):
        """Sum of the axial forces per group: ``{group name: N}``."""
        F = self.forces(displacement, active)
        out = np.bincount(self.group, weights=F, minlength=max(self.group_names, default=-1) + 1)
        return {name: float(out[g]) for g, name in self.group_names.items()}

    def __repr__(self):
        return (f"SpringSet({self.name!r}, {self.kind}, {self.size} springs, "
                f"{int(self.active.sum())} active)")


def _as_ends(nodes, weights, k, n_points, label):
    nodes = np.asarray(nodes)
    if nodes.ndim == 1:
        nodes = nodes[:, None]
    if nodes.ndim != 2 or nodes.shape[0] != k or not np.issubdtype(nodes.dtype, np.integer):
        raise InputError(f"{label} nodes have shape {nodes.shape}; expected ({k},) or ({k}, p) node indices")
    if nodes.size and (nodes.min() < 0 or nodes.max() >= n_points):
        raise InputError(f"{label} nodes reference nodes outside 0..{n_points - 1}")
    w = np.ones(nodes.shape) if weights is None else np.asarray(weights, dtype=float)
    if w.ndim == 1 and nodes.shape[1] == 1:
        w = w[:, None]
    if w.shape != nodes.shape or not np.all(np.isfinite(w)):
        raise InputError(f"{label} weights have shape {w.shape}; expected {nodes.shape} finite numbers")
    if np.any(np.abs(w.sum(axis=1) - 1.0) > 1e-9):
        raise InputError(f"{label} weights must sum to 1 per spring (an interpolated point); "
                         f"worst sum {w.sum(axis=1)[np.argmax(np.abs(w.sum(axis=1) - 1))]:.6g}")
    return np.ascontiguousarray(nodes, dtype=np.int64), np.ascontiguousarray(w)


def spring_set(points, nodes_a, nodes_b, stiffness, kind="linear", *, weights_a=None, weights_b=None,
               direction=None, slack=0.0, gap=0.0, area=np.nan, name="springs", group=None, group_names=None):
    """Build a :class:`SpringSet` on a mesh with node coordinates ``points (n, 3)`` mm.

    nodes_a, nodes_b : ``(k,)`` node indices, or ``(k, p)`` with ``weights_a/_b (k, p)`` (rows sum to 1)
        for interpolated end points.
    stiffness : float or ``(k,)`` N/mm (> 0).
    kind : ``"linear"``, ``"tension"`` or ``"compression"``.
    direction : ``(k, 3)``, optional; default the unit vector from end a to end b (required where the
        ends coincide, e.g. contact springs across a zero-thickness interface).
    slack : tension springs: elongation (mm, >= 0) before they tighten.
    gap : compression springs: closure (mm, >= 0) before they touch.
    area : mm^2, for stresses in reports.
    group, group_names : ``(k,)`` int and ``{int: name}`` (default: one group named ``name``).
    """
    if kind not in KINDS:
        raise InputError(f"kind = {kind!r}; allowed: {', '.join(map(repr, KINDS))}")
    points = np.asarray(points, dtype=float)
    n = points.shape[0]
    na = np.asarray(nodes_a)
    k = na.shape[0] if na.ndim else 1
    nodes_a, weights_a = _as_ends(nodes_a, weights_a, k, n, "end a")
    nodes_b, weights_b = _as_ends(nodes_b, weights_b, k, n, "end b")
    xa = np.einsum("kp,kpi->ki", weights_a, points[nodes_a])
    xb = np.einsum("kp,kpi->ki", weights_b, points[nodes_b])
    length = np.linalg.norm(xb - xa, axis=1)
    if direction is None:
        if np.any(length <= 1e-12 * max(1.0, np.abs(points).max())):
            raise InputError("some springs have coincident ends; give their direction (k, 3) explicitly")
        direction = (xb - xa) / length[:, None]
    else:
        direction = np.broadcast_to(np.asarray(direction, dtype=float), (k, 3))
        norm = np.linalg.norm(direction, axis=1)
        if not np.all(norm > 0) or not np.all(np.isfinite(norm)):
            raise InputError("direction must be non-zero finite vectors (k, 3)")
        direction = direction / norm[:, None]
    stiffness = np.broadcast_to(np.asarray(stiffness, dtype=float), (k,)).copy()
    if not np.all(np.isfinite(stiffness) & (stiffness > 0)):
        raise InputError(f"stiffness must be > 0 N/mm; got min {stiffness.min() if k else 0:.4g}")
    slack = np.broadcast_to(np.asarray(slack, dtype=float), (k,))
    gap = np.broadcast_to(np.asarray(gap, dtype=float), (k,))
    if np.any(slack < 0) or np.any(gap < 0) or not (np.all(np.isfinite(slack)) and np.all(np.isfinite(gap))):
        raise InputError("slack and gap must be finite and >= 0 mm")
    onset = {"tension": slack, "compression": -gap, "linear": np.zeros(k)}[kind].copy()
    group = np.zeros(k, np.int64) if group is None else np.broadcast_to(np.asarray(group, np.int64), (k,)).copy()
    group_names = {0: name} if group_names is None else dict(group_names)
    missing = set(np.unique(group).tolist()) - set(group_names)
    if missing:
        raise InputError(f"group ids {sorted(missing)} have no entry in group_names")
    return SpringSet(name=str(name), kind=kind, nodes_a=nodes_a, weights_a=weights_a, nodes_b=nodes_b,
                     weights_b=weights_b, direction=np.ascontiguousarray(direction), stiffness=stiffness,
                     onset=onset, length=length, area=np.broadcast_to(np.asarray(area, float), (k,)).copy(),
                     active=np.ones(k, bool), group=group, group_names=group_names)


def law_springs(points, nodes_a, nodes_b, increments, onsets, *, weights_a=None, weights_b=None, direction=None,
                area=np.nan, name="springs", group=None, group_names=None):
    """Tension-only elements with a piecewise-linear, stiffening force law, as stacks of parallel tension springs
    on each element's two ends: a :class:`SpringSet` with ``member`` set (one member per element).

    The force of element ``e`` at elongation ``d`` (mm) is ``F(d) = sum_j increments[j, e] max(d - onsets[j, e], 0)``
    N: segment ``j`` adds the stiffness ``increments[j, e]`` (N/mm) from the elongation ``onsets[j, e]`` on. Each
    segment with a positive increment is one tension spring, slack up to its onset; the active-set solve finds
    which are taut, and :meth:`SpringSet.member_totals` gives the element's force.

    increments, onsets : ``(s, k)`` (or ``(s,)`` for the same law in every element); increments >= 0 N/mm (zero:
        the element has no such segment; every element needs one positive increment), onsets >= 0 mm.
    The other arguments are those of :func:`spring_set`, one per element (``(k, ...)``); springs are ordered by
    segment, then element (where every first increment is positive, spring ``e`` is element ``e``'s first segment).
    """
    na = np.asarray(nodes_a)
    k = na.shape[0] if na.ndim else 1
    inc, on = (np.asarray(v, dtype=float) for v in (increments, onsets))
    inc, on = (np.repeat(v[:, None], k, axis=1) if v.ndim == 1 else v for v in (inc, on))
    if inc.ndim != 2 or inc.shape[1] != k or on.shape != inc.shape:
        raise InputError(f"increments and onsets must both have shape (segments, {k}) or (segments,); got "
                         f"{np.shape(increments)} and {np.shape(onsets)}")
    if not (np.all(np.isfinite(inc)) and np.all(inc >= 0)):
        raise InputError(f"law increments must be finite and >= 0 N/mm (a stiffening law); got min {inc.min():.4g}")
    if not (np.all(np.isfinite(on)) and np.all(on >= 0)):
        raise InputError(f"law onsets must be finite and >= 0 mm; got min {on.min():.4g}")
    if k and not np.all((inc > 0).any(axis=0)):
        raise InputError("every element needs a positive stiffness increment in its law")
    seg, elem = np.nonzero(inc > 0)
    order = np.lexsort((elem, seg))
    seg, elem = seg[order], elem[order]

    def per_spring(v, trailing):
        """An element-wise argument (``None``, a scalar or ``(k, ...)``) repeated for each spring."""
        if v is None or np.ndim(v) < 1 + trailing:
            return v
        return np.asarray(v)[elem]

    nodes_a, nodes_b = np.asarray(nodes_a), np.asarray(nodes_b)
    group = per_spring(group, 0)
    s = spring_set(points, nodes_a[elem], nodes_b[elem], inc[seg, elem], "tension",
                   weights_a=per_spring(weights_a, 0 if nodes_a.ndim == 1 else 1),
                   weights_b=per_spring(weights_b, 0 if nodes_b.ndim == 1 else 1),
                   direction=per_spring(direction, 1), slack=on[seg, elem], area=per_spring(area, 0), name=name,
                   group=group, group_names=group_names)
    s.member = elem
    return s
