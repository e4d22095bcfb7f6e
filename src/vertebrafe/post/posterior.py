"""Metrics of the posterior column: facet-joint forces, ligament forces and the load share between the
disc (anterior column) and the posterior column per level.

Rows (segments built with ``posterior=True``), per disc level ``d``:

* region ``facet_left`` / ``facet_right``, ``facet_force`` (N, >= 0): the compressive force of the joint
  (sum of its compression-only springs);
* region ``ALL``, ``PLL``, ``LF``, ``ISL``, ``SSL``, ``ITL``, ``CL``: ``ligament_force`` (N, >= 0, tension;
  ITL and CL both sides together);
* ``axial_force`` (N, tension positive) along the disc axis ``a`` through the three paths across the
  level: region ``disc``, the mid-height cell layer of the disc (``sigma_aa V / h`` summed over the
  layer's cells, the two middle layers averaged for an even count; an annulus fibre embedded in such a
  cell adds the stress ``(F L / V) n n`` to it (force ``F``, length ``L``, direction ``n``), so
  ``F L (n . a)^2 / h``); region ``longitudinal_ligaments``, the
  ALL and PLL springs; region ``posterior``, the facet joints and the posterior ligaments (LF, ISL, SSL,
  ITL, CL). A spring's share is ``F (n . -a)`` (every spring runs from the upper vertebra, end a, to the
  lower one);
* region ``posterior``: ``load_share`` (-), the posterior axial force over the total of the three; NaN
  when the total is below 5 % of the sum of their magnitudes (e.g. pure moments).

These are the only paths across a level (the arches do not touch), so the three forces add up to the
axial force of the level's free body: under a pure axial load, the applied load.

:func:`level_moments` splits the moment across a level the same way, exactly: the moment (about the disc
centre) of the internal forces that the disc cells (with their annulus fibres and fluid nucleus), each
facet joint and each ligament exert on the part of the segment above the disc. With the loads applied to
that part they balance to the solver's precision (a conservation check, not a definition).
"""
from __future__ import annotations

import math

import numpy as np

from .metrics import axial_stress, mid_height_layers

__all__ = ["posterior_rows", "level_axial_forces", "level_moments", "level_forces", "REGIONS"]

#: The regions of these rows besides ``disc`` and ``posterior`` (study plot names are checked against them).
REGIONS = ("facet_left", "facet_right", "ALL", "PLL", "LF", "ISL", "SSL", "ITL", "CL", "longitudinal_ligaments")

_FACETS = "facet_joints"
_LIGAMENTS = "ligaments"
_LONGITUDINAL = ("ALL", "PLL")
_FIBRES = "annulus_fibres"


def _disc_axis(segment, disc):
    up, lo = disc.split("-")
    z = segment.frames[up][0][:, 2] + segment.frames[lo][0][:, 2]
    return z / np.linalg.norm(z)


def level_axial_forces(segment, solution, disc):
    """``{"disc", "longitudinal_ligaments", "posterior": N}``: axial forces (tension positive) across level
    ``disc`` (see the module docstring)."""
    a = _disc_axis(segment, disc)
    cross, h = mid_height_layers(segment, disc, a)
    f = axial_stress(solution.cell_stress[cross], a) * solution.cell_volume[cross] / h
    n_layers = np.unique(cross // segment.counts.n_cells).size
    springs = {s.name: s for s in solution.model.springs}
    fib = springs.get(_FIBRES)
    if fib is not None and fib.host_cells is not None:       # the annulus fibres of the layer's cells
        sel = np.isin(fib.host_cells, cross)
        height = np.zeros(solution.cell_volume.size)
        height[cross] = h
        f = np.append(f, solution.spring_forces(_FIBRES)[sel] * fib.length[sel] * (fib.direction[sel] @ a) ** 2
                      / height[fib.host_cells[sel]])
    out = {"disc": float(f.sum() / n_layers), "longitudinal_ligaments": 0.0, "posterior": 0.0}
    for name in (_FACETS, _LIGAMENTS):
        s = springs.get(name)
        if s is None:
            continue
        F = solution.spring_forces(name) * (s.direction @ -a)
        for g, label in s.group_names.items():
            level, part = label.split(":", 1)
            if level == disc:
                key = "longitudinal_ligaments" if part in _LONGITUDINAL else "posterior"
                out[key] += float(F[s.group == g].sum())
    return out


def _above(segment, disc):
    """Cells ``(m,)`` bool of the part of the segment above ``disc`` (the upper vertebra, with its arch, and
    every level cranial to it)."""
    mesh = segment.mesh
    names = mesh.tag_names["level"]
    order = list(segment.levels)
    upper = disc.split("-")[0]
    cranial = set(order[:order.index(upper) + 1]) | {d for d in segment.discs if d.split("-")[1] in order[:order.index(upper) + 1]}
    codes = [c for c, n in names.items() if n in cranial]
    return np.isin(mesh.cell_data["level"], codes)


def _level_nodal_forces(segment, solution, disc):
    """The internal forces across level ``disc`` on the nodes of the part above it (:func:`_above`):
    ``(inside (n,) bool, {"disc" | "<group>": (n, 3) N}, R (3, 3) the disc frame's columns, disc cells)``
    (the entries of :func:`level_moments`, zero outside the part)."""
    from ..fem.kernels import element_tables
    from ..fem.solution import gauss_fields

    mesh, model = segment.mesh, solution.model
    up, lo = disc.split("-")
    frame = segment.frames[up][0] + segment.frames[lo][0]
    q, _ = np.linalg.qr(frame)
    R = q * np.sign(np.diag(q))                                      # orthonormal mean frame (columns)
    above = _above(segment, disc)
    inside = np.zeros(mesh.n_points, bool)
    inside[mesh.cells[above].ravel()] = True
    code = {v: k for k, v in mesh.tag_names["level"].items()}[disc]
    cross = np.flatnonzero(mesh.cell_data["level"] == code)
    touching = np.flatnonzero(~above & inside[mesh.cells].any(axis=1))
    if not np.all(np.isin(touching, cross)):
        raise ValueError(f"cells other than the disc's touch the part above {disc}; no clean cut")
    cells = np.ascontiguousarray(mesh.cells[cross], dtype=np.int64)
    m, k = cells.shape
    nq = mesh.element.weights.size
    fint = np.empty((m, k, 3))
    gauss_fields(np.ascontiguousarray(mesh.points), cells, np.ascontiguousarray(solution.displacement),
                  model._C, np.ascontiguousarray(model._material[cross]), element_tables(mesh.element),
                  np.ascontiguousarray(model._form[cross]), np.empty((m, nq, 6)), np.empty((m, nq, 6)),
                  np.empty((m, nq)), fint)
    f = -model.initial_stress_load(cross)                      # the pre-stress's forces (a pre-pressure)
    for d in range(3):
        f[:, d] += np.bincount(cells.ravel(), weights=fint[:, :, d].ravel(), minlength=mesh.n_points)
    out = {"disc": f}
    u = solution.displacement
    for s in model.springs:
        active = solution.spring_active[s.name]
        if s.name not in (_FACETS, _LIGAMENTS):                 # fibres, fluid nucleus: part of the disc
            out["disc"] = out["disc"] + s.nodal_forces(u, mesh.n_points, active)
            continue
        F = s.forces(u, active)
        G = s.gradient(mesh.n_points)
        for g, label in s.group_names.items():
            level, part = label.split(":", 1)
            if level != disc:
                continue
            key = f"facet_{part}" if s.name == _FACETS else part
            out[key] = (G.T @ np.where(s.group == g, F, 0.0)).reshape(-1, 3)
    out = {key: np.where(inside[:, None], v, 0.0) for key, v in out.items()}
    return inside, out, R, cross


def level_moments(segment, solution, disc, center=None):
    """Moments (N mm, about ``center``, default the centroid of the disc's cells) that carry the load across
    level ``disc``: ``{"disc": (3,), "<group>": (3,), ..., "applied": (3,)}`` in the disc frame (the mean of
    the two vertebrae's frames: x right, y anterior, z along the disc axis; so component 0 is the
    flexion-extension moment, 1 lateral bending, 2 axial rotation).

    Each entry is the moment of the internal forces a structure exerts on the nodes of the part above the
    disc (:func:`_above`): ``"disc"`` the disc cells (``K_e u_e`` of each) plus the annulus fibres and any
    fluid cavity, one entry per facet joint (``"facet_left"``, ``"facet_right"``) and ligament (``"ALL"``,
    ...). ``"applied"``: the moment of the loads on that part (its nodal loads and the rigid plates whose
    nodes all lie in it). In equilibrium ``applied`` equals the sum of the others (the cells of the part
    itself exert no net moment; a plate with a prescribed rotation adds its unknown reaction moment, which
    ``applied`` leaves out)."""
    mesh, model = segment.mesh, solution.model
    inside, parts, R, cross = _level_nodal_forces(segment, solution, disc)
    c = mesh.points[np.unique(mesh.cells[cross])].mean(axis=0) if center is None else np.asarray(center, float)
    r = mesh.points - c
    out = {key: np.cross(r, f).sum(axis=0) @ R for key, f in parts.items()}
    applied = model.nodal_loads
    M = np.cross(r[inside], applied[inside]).sum(axis=0)
    for p in model.plates:
        if inside[p.nodes].all():
            M = M + p.moment + np.cross(p.center - c, p.force)
    out["applied"] = M @ R
    return out


def level_forces(segment, solution, disc):
    """Forces (N) that carry the load across level ``disc``, exactly: ``{"disc": (3,), "<group>": (3,), ...,
    "applied": (3,)}`` in the disc frame of :func:`level_moments` (component 2 along the disc axis), the sum of
    the internal nodal forces each structure exerts on the part above the disc (the same split as
    :func:`level_moments`). The internal forces are those the part above exerts on the rest, so that in
    equilibrium ``applied`` (the loads on the part: its nodal loads and the forces of the rigid plates whose
    nodes all lie in it) equals the sum of the others to the solver's precision; a compressed path has a
    negative axial component, as the tension-positive ``axial_force`` rows."""
    model = solution.model
    inside, parts, R, _ = _level_nodal_forces(segment, solution, disc)
    out = {key: f.sum(axis=0) @ R for key, f in parts.items()}
    F = model.nodal_loads[inside].sum(axis=0)
    for p in model.plates:
        if inside[p.nodes].all():
            F = F + p.force
    out["applied"] = F @ R
    return out


def posterior_rows(segment, solution):
    """The rows of the module docstring (empty without posterior elements)."""
    if getattr(segment, "posterior", None) is None:
        return []
    springs = {s.name: s for s in solution.model.springs}
    rows = []
    for name, kind in ((_FACETS, "facet"), (_LIGAMENTS, "ligament")):
        s = springs.get(name)
        if s is None:
            continue
        G = s.group_forces(solution.displacement, solution.spring_active[name])
        for g, total in G.items():
            disc, part = g.split(":", 1)
            if kind == "facet":
                rows.append((disc, f"facet_{part}", "facet_force", max(0.0, -total), "N"))
            else:
                rows.append((disc, part, "ligament_force", max(0.0, total), "N"))
    for d in segment.discs:
        forces = level_axial_forces(segment, solution, d)
        total = sum(forces.values())
        mag = sum(abs(v) for v in forces.values())
        rows += [(d, k, "axial_force", v, "N") for k, v in forces.items()]
        share = forces["posterior"] / total if total != 0 and abs(total) >= 0.05 * mag else math.nan
        rows.append((d, "posterior", "load_share", share, "-"))
    return rows
