"""Vertebral compression fractures: wedge, biconcave and crush deformities with a damaged zone.

Geometry (in the local frame of the fractured vertebra; its inferior endplate stays in place):

* **Rigid part** ``T``: the superior endplate, and with it everything above the vertebra, moves as a rigid
  body: a rotation ``theta`` about the medio-lateral axis through the **posterior-superior corner** plus a
  translation ``tau`` along the vertebra's z axis. For a wedge ``tau = 0`` and the pivot keeps the
  posterior height exactly (the posterior wall is the hinge, as in an anterior-column compression); the
  rotation is solved so that the anterior height matches the request, and the segmental (kyphotic)
  angle changes by exactly ``theta``. For a crush, ``tau`` and ``theta`` are solved so that the
  anterior and the posterior height both lose the requested fraction.
* **Depression**: the central endplates sink into the body by ``delta / 2`` each (superior down,
  inferior up) with the smooth radial profile ``psi(rho) = (1 + cos(pi rho / 0.8)) / 2`` for
  ``rho < 0.8`` of the endplate's star coordinate (0 beyond, so the rim and the cortical wall keep their
  heights). ``delta`` is solved so that the middle height matches the request (biconcave: middle height
  loss = request; crush: the middle height loses the same fraction as the others; wedge: none).
* Inside the body a node at column fraction ``eta`` (0 at the inferior, 1 at the superior endplate) is
  rotated by ``eta * theta`` about the point ``eta`` of the way up the posterior corner line, translated
  by ``eta * tau`` and depressed by ``eta`` x the superior and ``1 - eta`` x the inferior depression. The
  disc above (below) carries the endplate depression and fades it out linearly toward the next vertebra,
  so the adjacent discs fill the depression and the segment stays conforming.

Heights, losses and angles are defined and measured as in :mod:`vertebrafe.clinical.measure`.

Damaged zone: the bone cells (``damage_regions``; default cancellous, cortex and endplate) of the
vertebra whose volume decreased by at least
``damage_threshold * height_loss`` (the compacted part of the body: anterior for a wedge, central for a
biconcave, all for a crush fracture) keep their region tag and get the cell field ``damage`` =
``1 - damage_factor``; their elasticity is multiplied by ``damage_factor`` (see ``docs/clinical.md``
for how the default was chosen against Wegrzyn et al. 2011).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from ..anatomy.vertebra import VertebraGeometry
from ..errors import InputError, InvertedElementError
from ._common import (check_level, column_fraction, derive, level_nodes, make_operation, operations_of,
                      to_global, to_local)
from .measure import body_heights

__all__ = ["fracture", "FRACTURE_TYPES", "GRADE_HEIGHT_LOSS", "DEFAULT_DAMAGE_FACTOR", "DEFAULT_DAMAGE_STRENGTH_FACTOR",
           "DEFAULT_DAMAGE_THRESHOLD", "DEFAULT_DAMAGE_REGIONS", "DEPRESSION_EXTENT", "MAX_HEIGHT_LOSS"]

FRACTURE_TYPES = ("wedge", "biconcave", "crush")
#: Height loss used for a Genant grade: mid-points of the grade ranges 20-25 % and 25-40 % (Genant SQ,
#: literature.md 5.1); grade 3 (> 40 %) uses 45 % [assumption].
GRADE_HEIGHT_LOSS = {1: 0.225, 2: 0.325, 3: 0.45}
#: Genant grade used when neither grade nor height loss is given.
DEFAULT_GRADE = 2
#: Largest height loss accepted (fraction).
MAX_HEIGHT_LOSS = 0.6
#: Modulus factor of the damaged cancellous zone, calibrated so that a 25 % wedge of an L1 body between
#: rigid plates loses about 53 % of its axial stiffness (Wegrzyn et al. 2011; docs/clinical.md).
DEFAULT_DAMAGE_FACTOR = 0.25
#: Strength factor of the damaged zone (its yield stress over the undamaged one): **calibration** against
#: the post-fracture failure load of Wegrzyn et al. 2011 (21 L3 compressed to a 25 % deformity, then
#: retested: failure load 11 +/- 19 % and stiffness 53 +/- 18 % below initial): with the modulus factor
#: 0.25, the fractured L1 keeps the intact's pushover limit load less 11 % (docs/validation.md). Damaged
#: trabecular bone loses more modulus than strength, so its yield strain rises by strength / modulus
#: factor (cell field ``yield_factor``).
DEFAULT_DAMAGE_STRENGTH_FACTOR = 0.9
#: Damaged zone: cells compacted (volume decrease) by at least this fraction of the height loss [assumption].
DEFAULT_DAMAGE_THRESHOLD = 0.25
#: Regions damaged in the compacted zone: trabecular compaction and buckled/fractured cortex [assumption].
DEFAULT_DAMAGE_REGIONS = ("cancellous", "cortex", "endplate")
#: Extent of the endplate depression in star coordinates (0 centre, 1 outline) [assumption].
DEPRESSION_EXTENT = 0.8


def _bump(rho, extent=DEPRESSION_EXTENT):
    rho = np.asarray(rho, dtype=float)
    return np.where(rho < extent, 0.5 * (1.0 + np.cos(np.pi * np.minimum(rho, extent) / extent)), 0.0)


def _rotate_x(yz, pivot, angle):
    """Rotate points ``(k, 2)`` (y, z) about ``pivot`` by ``angle`` (rad, per point or scalar)."""
    cm1, s = -2.0 * np.sin(0.5 * np.asarray(angle)) ** 2, np.sin(angle)     # cos - 1 without cancellation
    d = yz - pivot
    # yz + (R - I) d: a zero angle leaves the points bit for bit unchanged
    return yz + np.stack([cm1 * d[..., 0] - s * d[..., 1], s * d[..., 0] + cm1 * d[..., 1]], axis=-1)


class Deformer:
    """The fracture map of one vertebra of a segment, evaluated on the intact local coordinates."""

    def __init__(self, segment, level, points=None):
        self.segment, self.level = segment, level
        P = segment.mesh.points if points is None else points
        nodes = level_nodes(segment, level)
        self.nodes = nodes
        n2 = nodes.n2
        arch = nodes.arch if nodes.arch is not None else np.arange(0)
        idx = [nodes.body, nodes.disc_above, nodes.disc_below, nodes.above, arch]
        self.idx = np.concatenate(idx)
        self.group = np.concatenate([np.full(len(a), g) for g, a in enumerate(idx)])
        self.local = to_local(segment, level, P[self.idx])
        frac = np.zeros(len(self.idx))
        k0, k1 = len(nodes.body), len(nodes.body) + len(nodes.disc_above)
        k2 = k1 + len(nodes.disc_below)
        frac[:k0] = column_fraction(P, nodes.body, nodes.inferior, nodes.superior, n2)
        if len(nodes.disc_above):
            frac[k0:k1] = column_fraction(P, nodes.disc_above, nodes.superior, nodes.upper_inferior, n2)
        if len(nodes.disc_below):
            frac[k1:k2] = column_fraction(P, nodes.disc_below, nodes.inferior, nodes.lower_superior, n2)
        col = self.idx % n2
        if len(arch):
            # the arch (group 4) keeps its shape and orientation and drops with the mean height change of
            # the posterior-wall nodes its pedicles start from (a wedge fracture keeps the posterior wall)
            wall = int(nodes.inferior[np.argmin(to_local(segment, level, P[nodes.inferior])[:, 1])] % n2)
            k3 = len(self.idx) - len(arch)
            shared = np.intersect1d(segment.mesh.cells[segment.stack_cells:], nodes.body)   # pedicle roots
            frac[k3:] = float(column_fraction(P, shared, nodes.inferior, nodes.superior, n2).mean())
            col[k3:] = wall
        self.frac = frac
        self.col = col
        geo = VertebraGeometry.from_dimensions(segment.dimensions[level])
        sup_xy = to_local(segment, level, P[nodes.superior])[:, :2]
        inf_xy = to_local(segment, level, P[nodes.inferior])[:, :2]
        self.psi_sup = _bump(geo.superior.rho(sup_xy))           # per column
        self.psi_inf = _bump(geo.inferior.rho(inf_xy))
        # corners of the intact body (local y, z)
        loc = np.zeros((segment.mesh.n_points, 3))
        loc[self.idx] = self.local
        self.intact_heights, top, bot = body_heights(loc, nodes.inferior, nodes.superior)
        self.P_ps, self.P_pi = top[0], bot[0]
        self.P_as, self.P_ai = top[2], bot[2]
        self.body_local = self.local[:k0].copy()
        # node positions (within self.idx) of the endplate layers, for fast height evaluation
        b0 = nodes.body[0]
        self.sel_inf = nodes.inferior - b0
        self.sel_sup = nodes.superior - b0

    def apply(self, theta, tau, delta, subset=None):
        """New local coordinates ``(k, 3)`` of ``self.idx`` (or of the positions ``subset``)."""
        sl = slice(None) if subset is None else subset
        x = self.local[sl].copy()
        g, f, col = self.group[sl], self.frac[sl], self.col[sl]
        ds = -0.5 * delta * self.psi_sup[col]                    # superior endplate moves down
        di = 0.5 * delta * self.psi_inf[col]                     # inferior endplate moves up
        dz = np.where(g == 0, f * ds + (1.0 - f) * di,
                      np.where(g == 1, (1.0 - f) * ds, np.where(g == 2, (1.0 - f) * di, 0.0)))
        x[:, 2] += dz
        w = np.where(g == 0, f, np.where((g == 2) | (g == 4), 0.0, 1.0))       # share of the rotation
        pivot = self.P_pi + w[:, None] * (self.P_ps - self.P_pi)
        x[:, 1:] = _rotate_x(x[:, 1:], pivot, w * theta)
        x[:, 2] += np.where(g == 4, f, w) * tau
        return x

    def heights(self, theta, tau, delta):
        loc = np.zeros((self.segment.mesh.n_points, 3))
        sub = np.concatenate([self.sel_inf, self.sel_sup])
        loc[self.idx[sub]] = self.apply(theta, tau, delta, subset=sub)
        h, _, _ = body_heights(loc, self.nodes.inferior, self.nodes.superior)
        return h

    def rigid_for(self, Ha, Hp):
        """(theta, tau) so that the corner heights are ``Ha`` and ``Hp`` (mm)."""
        tau = Hp - (self.P_ps[1] - self.P_pi[1])

        def f(t):
            a = _rotate_x(self.P_as[None], self.P_ps, t)[0]
            return float(a[1] + tau - self.P_ai[1]) - Ha
        return brentq(f, -1.2, 0.6, xtol=1e-14), tau

    def solve(self, kind, loss):
        ha, hm, hp = self.intact_heights
        if kind == "wedge":
            theta, tau = self.rigid_for((1.0 - loss) * ha, hp)
            return theta, tau, 0.0
        if kind == "crush":
            theta, tau = self.rigid_for((1.0 - loss) * ha, (1.0 - loss) * hp)
        else:
            theta, tau = 0.0, 0.0
        target = (1.0 - loss) * hm
        delta = brentq(lambda d: self.heights(theta, tau, d)[1] - target, -0.5 * hm, 1.5 * hm, xtol=1e-12)
        return theta, tau, delta

    def global_points(self, theta, tau, delta, base_points):
        """All mesh points ``(n, 3)`` after the map (``base_points`` for the untouched ones)."""
        P = np.array(base_points, dtype=float, copy=True)
        u = self.apply(theta, tau, delta) - self.local            # local displacement; 0 stays exactly 0
        R, _ = self.segment.frames[self.level]
        P[self.idx] += u @ R.T
        return P

    def frames(self, theta, tau):
        """Frames of the vertebrae above after the rigid motion: ``{name: (R, origin)}``."""
        seg, level = self.segment, self.level
        RL, oL = seg.frames[level]
        c, s = math.cos(theta), math.sin(theta)
        Q = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
        out = {}
        i = seg.levels.index(level)
        for v in seg.levels[:i]:
            R, o = seg.frames[v]
            ol = to_local(seg, level, o[None])[0]
            yz = _rotate_x(ol[None, 1:], self.P_ps, theta)[0]
            ol = np.array([ol[0], yz[0], yz[1] + tau])
            out[v] = (RL @ Q @ RL.T @ R, to_global(seg, level, ol[None])[0])
        return out


def resolve_height_loss(grade, height_loss):
    if grade is not None and height_loss is not None:
        raise InputError(f"give either grade ({grade!r}) or height_loss ({height_loss!r}), not both")
    if height_loss is None:
        g = DEFAULT_GRADE if grade is None else grade
        if g not in GRADE_HEIGHT_LOSS or isinstance(g, bool):
            raise InputError(f"grade = {grade!r}; allowed Genant grades 1, 2, 3")
        return int(g), GRADE_HEIGHT_LOSS[int(g)]
    try:
        hl = float(height_loss)
    except (TypeError, ValueError):
        raise InputError(f"height_loss = {height_loss!r}; expected a fraction in (0, {MAX_HEIGHT_LOSS}]") from None
    if not (0.0 < hl <= MAX_HEIGHT_LOSS):
        raise InputError(f"height_loss = {height_loss!r}; allowed range (0, {MAX_HEIGHT_LOSS}] (fraction of "
                         "the intact height)")
    return None, hl


def fracture(segment, level, kind="wedge", grade=None, height_loss=None, damage_factor=DEFAULT_DAMAGE_FACTOR,
             damage_threshold=DEFAULT_DAMAGE_THRESHOLD, damage_regions=DEFAULT_DAMAGE_REGIONS,
             damage_strength_factor=DEFAULT_DAMAGE_STRENGTH_FACTOR):
    """Vertebral compression fracture of ``level``; returns a new Segment (the input is not modified).

    Parameters
    ----------
    segment : Segment
    level : str
        The fractured vertebra (e.g. ``"L1"``).
    kind : {"wedge", "biconcave", "crush"}
        Wedge: anterior height loss about the posterior wall; biconcave: middle height loss by central
        endplate depressions; crush: every height loses the same fraction.
    grade : {1, 2, 3}, optional
        Genant grade; sets ``height_loss`` to 0.225, 0.325 or 0.45 (:data:`GRADE_HEIGHT_LOSS`). Default
        grade 2 when neither ``grade`` nor ``height_loss`` is given.
    height_loss : float, optional
        Loss of the affected height (anterior for wedge, middle for biconcave, all for crush) as a
        fraction of its intact value, in (0, 0.6].
    damage_factor : float
        Modulus factor (0, 1] of the damaged cancellous zone (default :data:`DEFAULT_DAMAGE_FACTOR`).
    damage_threshold : float
        Cells compacted by at least ``damage_threshold * height_loss`` (volume fraction) are damaged;
        in [0, 1).
    damage_regions : sequence of str
        Regions of the vertebra that can be damaged (default cancellous bone, cortical shell and bony
        endplate: the compacted trabeculae and the buckled cortex of the collapsed part).
    damage_strength_factor : float
        Yield-stress factor (0, 1] of the damaged zone (default :data:`DEFAULT_DAMAGE_STRENGTH_FACTOR`,
        a calibration); its yield strains are multiplied by ``damage_strength_factor / damage_factor``
        (cell field ``yield_factor``, used by the strength estimates of :mod:`vertebrafe.post`).

    Returns
    -------
    Segment
        New points; the vertebrae above moved rigidly (their ``frames`` updated); cell field ``damage``
        (0..1), ``yield_factor`` (yield-strain multiplier) and, with materials, the elasticity of the
        damaged cells scaled; ``history`` gains an
        :class:`~vertebrafe.clinical.Operation` ``"fracture"`` with the resolved parameters, the intact
        and fractured heights (mm), the wedge-angle change (deg) and the damaged volume (mm^3).
    """
    check_level(segment, level)
    if kind not in FRACTURE_TYPES:
        raise InputError(f"kind = {kind!r}; allowed: {list(FRACTURE_TYPES)}")
    g, loss = resolve_height_loss(grade, height_loss)
    if operations_of(segment, level):
        done = [op.kind for op in operations_of(segment, level)]
        raise InputError(f"level {level!r} was already treated ({done}); fracture applies to an untreated "
                         "vertebra")
    try:
        df = float(damage_factor)
        dt = float(damage_threshold)
    except (TypeError, ValueError):
        raise InputError(f"damage_factor = {damage_factor!r}, damage_threshold = {damage_threshold!r}; "
                         "expected numbers") from None
    if not (0.0 < df <= 1.0):
        raise InputError(f"damage_factor = {damage_factor!r}; allowed range (0, 1]")
    if not (0.0 <= dt < 1.0):
        raise InputError(f"damage_threshold = {damage_threshold!r}; allowed range [0, 1)")
    try:
        ds = float(damage_strength_factor)
    except (TypeError, ValueError):
        raise InputError(f"damage_strength_factor = {damage_strength_factor!r}; expected a number in (0, 1]") from None
    if not (0.0 < ds <= 1.0):
        raise InputError(f"damage_strength_factor = {damage_strength_factor!r}; allowed range (0, 1]")

    d = Deformer(segment, level)
    theta, tau, delta = d.solve(kind, loss)
    points = d.global_points(theta, tau, delta, segment.mesh.points)
    frames = d.frames(theta, tau)

    mesh = segment.mesh
    lev_code = {v: k for k, v in mesh.tag_names["level"].items()}[level]
    cells_lvl = mesh.cell_data["level"] == lev_code
    V0 = mesh.cell_volumes()
    new_mesh = mesh.copy()
    new_mesh.points = points
    V1 = new_mesh.cell_volumes()
    q = new_mesh.quality().min_jacobian
    if np.any(q[cells_lvl] <= 0.0) or np.any(q <= 0.0):
        bad = np.flatnonzero(q <= 0.0)
        raise InvertedElementError(f"fracture of {level} with height_loss {loss:g} inverts cells {bad[:10].tolist()}")
    known = set(mesh.tag_names["region"].values()) & {"cancellous", "cortex", "endplate"}
    regs = [damage_regions] if isinstance(damage_regions, str) else list(damage_regions)
    bad = [r for r in regs if r not in known]
    if bad or not regs:
        raise InputError(f"damage_regions = {damage_regions!r}; allowed bone regions of this mesh: {sorted(known)}")
    canc = cells_lvl & mesh.cells_in("region", regs)
    compaction = 1.0 - V1 / V0
    zone = canc & (compaction >= dt * loss - 1e-12)
    damage = np.zeros(mesh.n_cells) if "damage" not in mesh.cell_data else mesh.cell_data["damage"].astype(float)
    damage = damage.copy()
    damage[zone] = 1.0 - df
    yf = np.ones(mesh.n_cells) if "yield_factor" not in mesh.cell_data else mesh.cell_data["yield_factor"].astype(float)
    yf = yf.copy()
    yf[zone] = ds / df
    C = None
    if segment.elasticity is not None:
        C = segment.elasticity.copy()
        C[zone] *= df
    ha0, hm0, hp0 = d.intact_heights
    new_body_local = np.zeros((mesh.n_points, 3))
    new_body_local[d.nodes.body] = to_local(segment, level, points[d.nodes.body])
    (ha, hm, hp), _, _ = body_heights(new_body_local, d.nodes.inferior, d.nodes.superior)
    params = dict(type=kind, grade=g, height_loss=loss, damage_factor=df, damage_threshold=dt,
                  damage_regions=tuple(regs), damage_strength_factor=ds)
    results = dict(intact_heights_mm=(ha0, hm0, hp0), heights_mm=(ha, hm, hp),
                   wedge_change_deg=-math.degrees(theta), rotation_deg=math.degrees(theta),
                   translation_mm=tau, depression_mm=delta,
                   damaged_volume_mm3=float(V1[zone].sum()), damaged_cells=int(zone.sum()))
    data = dict(intact_points=segment.mesh.points.copy(), intact_frames=dict(segment.frames),
                intact_local_body=d.body_local, theta=theta, tau=tau, delta=delta)
    op = make_operation("fracture", level, params, results, data)
    return derive(segment, op, points=points, elasticity=C, frames=frames,
                  cell_data={"damage": damage, "yield_factor": yf})
