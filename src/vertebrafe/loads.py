"""Physiological load cases applied to a spinal segment model.

A :class:`Load` describes what acts on the superior endplate of the most cranial vertebra: a compressive
force (N) and moments (N m, the field's habit; converted to N mm internally). :func:`apply` ties that
endplate (node set ``segment:superior``) to a rigid plate, loads the plate at its reference point and
fixes the inferior endplate of the most caudal vertebra (``segment:inferior``).

Axes and signs (``DESIGN.md``): +x right, +y anterior, +z superior, global frame = the local frame of
the lowest vertebra. Moments are given as non-negative magnitudes per anatomical direction (lateral
bending and axial rotation are signed):

==================  ====================  ==========================================================
field               moment vector (N mm)  motion of the top plate
==================  ====================  ==========================================================
``flexion``         ``(-1000 M, 0, 0)``   rotation about -x: the top tips forward (+y), anterior side
                                          shortens
``extension``       ``(+1000 M, 0, 0)``   rotation about +x: the top tips backward (-y)
``lateral_bending`` ``(0, +1000 M, 0)``   M > 0 = right bending: rotation about +y, the top moves to
                                          the right (+x); M < 0 bends to the left
``axial_rotation``  ``(0, 0, +1000 M)``   M > 0: rotation about +z (right-hand rule, seen from above
                                          counter-clockwise): the anterior edge of the top moves to
                                          the patient's left (-x), i.e. the top turns to the left
==================  ====================  ==========================================================

``compression`` pushes the top plate down: force ``(0, 0, -compression)`` N (vertical in the global
frame), or with ``follower=True`` a follower load along the segment's curvature (:func:`follower_path`).
``anterior_shear`` (N, + pushes the top plate anteriorly, +y) and ``lateral_shear`` (N, + to the right,
+x) add a horizontal force on the top plate. ``level_loads`` (:class:`LevelLoad`) put forces and moments on
any vertebra, through a rigid plate on its superior endplate or distributed over its volume; muscle forces
with published moment arms are built by :mod:`vertebrafe.muscles`.

The hard ranges of every field (:data:`LOAD_RANGES`) are shared with the case files; values inside them but
outside physiological ranges raise a :class:`~vertebrafe.errors.PlausibilityWarning` (:mod:`vertebrafe.plausibility`).

Activity presets (:data:`PRESETS`, :func:`preset`) and the kyphosis-aware upper-body load
(:func:`upper_body`) are documented with their sources in ``docs/loads.md``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .errors import InputError
from .mesh.quality import det3, jacobians

__all__ = ["Load", "LevelLoad", "LOAD_RANGES", "resultant", "Preset", "PRESETS", "preset", "apply", "AppliedLoad", "follower_path", "upper_body",
           "UPPER_BODY_CONSTANTS", "body_weight_fraction", "sagittal_angle", "alignment_change",
           "level_centroids", "distributed_load"]

N_MM_PER_N_M = 1000.0
_MOMENTS = ("flexion", "extension", "lateral_bending", "axial_rotation")

#: Hard ranges ``{field: (low, high, unit)}`` of the load fields, one table for :class:`Load`,
#: :class:`LevelLoad` and the case files (values outside are input errors; physiological ranges, which
#: only warn, are in :mod:`vertebrafe.plausibility`).
LOAD_RANGES = {
    "compression": (0.0, 2.0e4, "N"),
    "flexion": (0.0, 100.0, "N m"),
    "extension": (0.0, 100.0, "N m"),
    "lateral_bending": (-100.0, 100.0, "N m"),
    "axial_rotation": (-100.0, 100.0, "N m"),
    "anterior_shear": (-5000.0, 5000.0, "N"),
    "lateral_shear": (-5000.0, 5000.0, "N"),
    "level_force": (0.0, 2.0e4, "N"),          # magnitude of a LevelLoad force
    "level_moment": (0.0, 100.0, "N m"),       # magnitude of a LevelLoad moment
}


def _ranged(name, value, key=None):
    low, high, unit = LOAD_RANGES[key or name]
    return _number(name, value, low, high, unit)


def _number(name, value, low=-math.inf, high=math.inf, unit=""):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} = {value!r}; expected a number{(' in ' + unit) if unit else ''}") from None
    if not (math.isfinite(v) and low <= v <= high):
        u = f" {unit}" if unit else ""
        raise InputError(f"{name} = {value!r}{u}; allowed range [{low:g}, {high:g}]{u}")
    return v


@dataclass(frozen=True)
class Load:
    """A load case on the top of a segment.

    Parameters
    ----------
    compression : float
        Compressive force (N, >= 0) on the superior endplate of the top vertebra.
    flexion, extension : float
        Sagittal moments (N m, >= 0; give at most one of them).
    lateral_bending : float
        Frontal moment (N m); positive bends to the right (+x), negative to the left.
    axial_rotation : float
        Moment about the vertical axis (N m); positive turns the top to the left (rotation about +z).
    anterior_shear, lateral_shear : float
        Horizontal forces (N) on the top plate: ``+y`` (pushes the top vertebra anteriorly) and ``+x`` (to
        the patient's right); negative values push posteriorly / to the left.
    level_loads : tuple of LevelLoad
        Forces and moments on any vertebra (:class:`LevelLoad`, :mod:`vertebrafe.muscles`).
    follower : bool
        Apply ``compression`` as a follower load along the segment's curvature (:func:`follower_path`)
        instead of a vertical force.
    reference_point : (3,) float or None
        Point (mm, global frame) at which the force and moments act, the rigid plate's reference
        point; default the centroid of the superior endplate nodes of the top vertebra.
    name : str
        Label used in reports.
    """

    compression: float = 0.0
    flexion: float = 0.0
    extension: float = 0.0
    lateral_bending: float = 0.0
    axial_rotation: float = 0.0
    follower: bool = False
    reference_point: tuple | None = None
    name: str = ""
    anterior_shear: float = 0.0
    lateral_shear: float = 0.0
    level_loads: tuple = ()

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)   # noqa: E731
        for k in ("compression", "anterior_shear", "lateral_shear") + _MOMENTS:
            set_(k, _ranged(k, getattr(self, k)))
        items = self.level_loads
        if isinstance(items, (LevelLoad, dict)) or not isinstance(items, (list, tuple)):
            raise InputError(f"level_loads = {items!r}; expected a list of LevelLoad (or of dicts with its fields)")
        set_("level_loads", tuple(x if isinstance(x, LevelLoad) else LevelLoad.from_dict(x) for x in items))
        if self.flexion > 0 and self.extension > 0:
            raise InputError(f"flexion = {self.flexion:g} N m and extension = {self.extension:g} N m; give at "
                             "most one of them (both are magnitudes >= 0)")
        if not isinstance(self.follower, (bool, np.bool_)):
            raise InputError(f"follower = {self.follower!r}; expected True or False")
        set_("follower", bool(self.follower))
        if self.reference_point is not None:
            p = np.asarray(self.reference_point, dtype=float) if _is_numeric(self.reference_point) else None
            if p is None or p.shape != (3,) or not np.all(np.isfinite(p)):
                raise InputError(f"reference_point = {self.reference_point!r}; expected three finite "
                                 "coordinates (x, y, z) in mm or None")
            set_("reference_point", tuple(float(v) for v in p))
        if not isinstance(self.name, str):
            raise InputError(f"name = {self.name!r}; expected a string")

    # -- derived --------------------------------------------------------------------------------
    @property
    def moment(self):
        """Moment vector ``(3,)`` in N mm (global axes), see the module table."""
        return N_MM_PER_N_M * np.array([self.extension - self.flexion, self.lateral_bending, self.axial_rotation])

    @property
    def moment_Nm(self):
        """Moment vector ``(3,)`` in N m."""
        return self.moment / N_MM_PER_N_M

    @property
    def vertical_force(self):
        """Force ``(3,)`` N of a non-follower load: ``(lateral_shear, anterior_shear, -compression)``."""
        return np.array([self.lateral_shear, self.anterior_shear, -self.compression])

    @property
    def shear(self):
        """Horizontal force ``(3,)`` N on the top plate: ``(lateral_shear, anterior_shear, 0)``."""
        return np.array([self.lateral_shear, self.anterior_shear, 0.0])

    @property
    def is_zero(self):
        return (self.compression == 0 and not np.any(self.moment) and not np.any(self.shear)
                and all(x.is_zero for x in self.level_loads))

    def scaled(self, factor):
        """The same load with all forces and moments (level loads too) multiplied by ``factor`` (>= 0)."""
        f = _number("factor", factor, 0.0, 1e6)
        return replace(self, compression=self.compression * f, flexion=self.flexion * f,
                       extension=self.extension * f, lateral_bending=self.lateral_bending * f,
                       axial_rotation=self.axial_rotation * f, anterior_shear=self.anterior_shear * f,
                       lateral_shear=self.lateral_shear * f,
                       level_loads=tuple(x.scaled(f) for x in self.level_loads))

    def as_dict(self):
        """Plain dict of the fields (JSON-ready; moments in N m, force in N)."""
        d = asdict(self)
        d["reference_point"] = None if self.reference_point is None else list(self.reference_point)
        d["level_loads"] = [x.as_dict() for x in self.level_loads]
        return d

    @classmethod
    def from_dict(cls, d):
        """Inverse of :meth:`as_dict` (unknown keys raise InputError)."""
        return cls(**_known_fields(cls, d))

    def describe(self):
        parts = [f"{self.compression:g} N compression" + (" (follower)" if self.follower else "")]
        for k in _MOMENTS + ("anterior_shear", "lateral_shear"):
            v = getattr(self, k)
            if v:
                parts.append(f"{v:g} {'N' if k.endswith('shear') else 'N m'} {k.replace('_', ' ')}")
        parts += [x.describe() for x in self.level_loads]
        return ", ".join(parts)


def _known_fields(cls, d):
    if not isinstance(d, dict):
        raise InputError(f"{cls.__name__} = {d!r}; expected a table (dict) of its fields")
    known = set(cls.__dataclass_fields__)
    bad = sorted(set(d) - known)
    if bad:
        raise InputError(f"{cls.__name__} has no field {bad[0]!r}; fields: {sorted(known)}")
    return d


def _vector3(name, value):
    p = np.asarray(value, dtype=float) if _is_numeric(value) else None
    if p is None or p.shape != (3,) or not np.all(np.isfinite(p)):
        raise InputError(f"{name} = {value!r}; expected three finite numbers (x, y, z)")
    return tuple(float(v) for v in p)


LEVEL_LOAD_VIA = ("distributed", "plate")


@dataclass(frozen=True)
class LevelLoad:
    """A force and a moment on one vertebra of the segment (global axes, +x right, +y anterior, +z superior).

    Parameters
    ----------
    level : str
        The vertebra (``"L1"``).
    force : (3,) float
        Force (N) acting at ``point``.
    moment : (3,) float
        Moment vector (N m; flexion is ``-x``, right lateral bending ``+y``, rotation to the left ``+z``).
    point : (3,) float or None
        Where the force acts (mm, global); default the vertebral body's volume centroid (``via="distributed"``)
        or the plate centre (``via="plate"``).
    via : str
        ``"distributed"`` (default): a body force over the vertebral body's cells (not its posterior arch)
        whose resultant is exactly the force at ``point`` plus the moment (a uniform part for the force and a field linear in position,
        ``Omega x (x - c)``, for the moment); the vertebra stays deformable. ``"plate"``: a rigid plate tied to
        the vertebra's superior endplate (node set ``"<level>:superior"``; the top plate for the top vertebra)
        carries it; this makes that endplate rigid.
    name : str
        Label in records (e.g. the muscle's name).
    """

    level: str
    force: tuple = (0.0, 0.0, 0.0)
    moment: tuple = (0.0, 0.0, 0.0)
    point: tuple | None = None
    via: str = "distributed"
    name: str = ""

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)   # noqa: E731
        if not isinstance(self.level, str) or not self.level:
            raise InputError(f"level = {self.level!r}; expected a vertebra name such as 'L1'")
        f, m = _vector3("force", self.force), _vector3("moment", self.moment)
        _ranged("force magnitude", float(np.linalg.norm(f)), "level_force")
        _ranged("moment magnitude", float(np.linalg.norm(m)), "level_moment")
        set_("force", f)
        set_("moment", m)
        if self.point is not None:
            set_("point", _vector3("point", self.point))
        if self.via not in LEVEL_LOAD_VIA:
            raise InputError(f"via = {self.via!r}; allowed: {list(LEVEL_LOAD_VIA)}")
        if not isinstance(self.name, str):
            raise InputError(f"name = {self.name!r}; expected a string")

    @property
    def is_zero(self):
        return not (any(self.force) or any(self.moment))

    def scaled(self, factor):
        return replace(self, force=tuple(factor * v for v in self.force), moment=tuple(factor * v for v in self.moment))

    def as_dict(self):
        d = asdict(self)
        d.update(force=list(self.force), moment=list(self.moment),
                 point=None if self.point is None else list(self.point))
        return d

    @classmethod
    def from_dict(cls, d):
        """Inverse of :meth:`as_dict` (unknown keys raise InputError)."""
        return cls(**_known_fields(cls, d))

    def describe(self):
        label = self.name or "load"
        return (f"{label} on {self.level} ({self.via}): F = {np.round(self.force, 1).tolist()} N, "
                f"M = {np.round(self.moment, 2).tolist()} N m")


def _is_numeric(v):
    try:
        np.asarray(v, dtype=float)
        return True
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------------------------------------
# Presets


@dataclass(frozen=True)
class Preset:
    """A named activity load with its source and status (``verified``/``memory``/``derived``)."""

    name: str
    load: Load
    source: str
    status: str
    note: str = ""


_WILKE = "Wilke et al. 1999, Spine 24(8):755-762 (L4-L5 intradiscal pressure, 70 kg subject)"
PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("relaxed_standing", Load(compression=500.0, follower=True, name="relaxed_standing"),
           "500 N compressive preload (J Orthop Surg Res 2020 FE protocol); Wilke 1999 standing IDP 0.50 MPa "
           "corresponds to about 500-700 N (IDP ~ 1.3-1.5 x force / disc area, Nachemson)", "verified",
           "follower load; validation target 5 checks the nucleus pressure it produces"),
    Preset("standing_flexed", Load(compression=1175.0, flexion=7.5, follower=True, name="standing_flexed"),
           "Rohlmann et al. 2009 'realistic loading' for flexion: 1175 N follower + 7.5 N m", "memory",
           "Wilke 1999 IDP standing flexed 1.10 MPa = 2.2 x standing"),
    Preset("lifting", Load(compression=2300.0, follower=True, name="lifting"),
           _WILKE + ": lifting 20 kg with a round flexed back 2.30 MPa = 4.6 x standing; "
           "4.6 x 500 N = 2300 N", "derived",
           "IDP taken proportional to compression (linear disc model, standing calibration)"),
    Preset("lifting_flexed_knees", Load(compression=1700.0, follower=True, name="lifting_flexed_knees"),
           _WILKE + ": lifting 20 kg with flexed knees 1.70 MPa = 3.4 x standing; 3.4 x 500 N = 1700 N",
           "derived", ""),
    Preset("lifting_close", Load(compression=1100.0, follower=True, name="lifting_close"),
           _WILKE + ": lifting 20 kg close to the body 1.10 MPa = 2.2 x standing; 2.2 x 500 N = 1100 N",
           "derived", ""),
    Preset("lifting_kinematic", Load(compression=1500.0, flexion=4.2, anterior_shear=230.0, follower=True,
                                     name="lifting_kinematic"),
           "kinematics-driven FE of L3-L4 during lifting: max compression 1500 N (2.28 BW), max shear 230 N "
           "(0.34 BW), max F/E moment 4.2 N m (PMC3943591)", "verified",
           "the shear is applied anteriorly on the top plate (the forward-flexed trunk pushes the upper "
           "vertebra forward) [assumption: direction]"),
    Preset("flexion_moment", Load(compression=500.0, flexion=7.5, name="flexion_moment"),
           "in vitro/FE protocol: 7.5 N m pure moment + 500 N preload (J Orthop Surg Res 2020)", "verified", ""),
    Preset("extension_moment", Load(compression=500.0, extension=7.5, name="extension_moment"),
           "7.5 N m + 500 N (J Orthop Surg Res 2020); Rohlmann 2009: extension 500 N + 7.5 N m [memory]",
           "verified", ""),
    Preset("lateral_bending_moment", Load(compression=500.0, lateral_bending=7.5, name="lateral_bending_moment"),
           "7.5 N m + 500 N (J Orthop Surg Res 2020); Rohlmann 2009: 700 N + 7.8 N m [memory]", "verified",
           "right bending"),
    Preset("axial_rotation_moment", Load(compression=500.0, axial_rotation=7.5, name="axial_rotation_moment"),
           "7.5 N m + 500 N (J Orthop Surg Res 2020); Rohlmann 2009: 720 N + 5.5 N m [memory]", "verified",
           "rotation about +z"),
)}


def preset(name):
    """The :class:`Load` of the activity preset ``name`` (see :data:`PRESETS`)."""
    try:
        return PRESETS[name].load
    except (KeyError, TypeError):
        raise InputError(f"preset = {name!r} is not known; known: {sorted(PRESETS)}") from None


# ------------------------------------------------------------------------------------------------
# Geometry helpers


#: regions of a vertebra that are not its body: the arch of the posterior elements
ARCH_REGIONS = ("posterior",)


def _body_cells(mesh, level):
    """Cell mask of the vertebral body of ``level``: the cells of its level without the posterior arch."""
    cells = mesh.cell_data["level"] == _level_code(mesh, level)
    arch = [k for k, n in mesh.tag_names.get("region", {}).items() if n in ARCH_REGIONS]
    if arch:
        cells &= ~np.isin(mesh.cell_data["region"], arch)
    return cells


def _level_code(mesh, level):
    table = {v: k for k, v in mesh.tag_names["level"].items()}
    if level not in table:
        raise InputError(f"level = {level!r} is not in this segment; levels: {sorted(table)}")
    return table[level]


def _gauss_weights(mesh, cells):
    """Integration weights ``w_g det J_g (c, g)`` (mm^3) of ``cells (c, k)``: the Jacobians by GEMM and their
    determinants in closed form (:func:`vertebrafe.mesh.quality.jacobians`)."""
    el = mesh.element
    out = np.empty((cells.shape[0], el.weights.size))
    for start, J in jacobians(mesh.points, cells, el.gradients):
        out[start:start + J.shape[-1]] = (el.weights[:, None] * det3(lambda i, j: J[i, :, j])).T
    return out


def _consistent_weights(mesh, cell_mask):
    """Nodes and their integrals of the shape functions over the selected cells: ``(nodes (k,), w (k,))``
    with ``w_a = sum_cells int N_a dV`` (mm^3); ``sum(w)`` is the selected volume."""
    cells = mesh.cells[cell_mask]
    w = _gauss_weights(mesh, cells) @ mesh.element.shape                 # (c, 8)
    count = np.bincount(cells.ravel(), minlength=mesh.n_points)             # no sort (np.unique sorted)
    nodes = np.flatnonzero(count)
    return nodes, np.bincount(cells.ravel(), weights=w.ravel(), minlength=mesh.n_points)[nodes]


def _body_weights(segment):
    """:func:`_consistent_weights` of every vertebral body: ``{vertebra: (nodes, w)}``."""
    return {v: _consistent_weights(segment.mesh, _body_cells(segment.mesh, v)) for v in segment.levels}


def level_centroids(segment, weights=None):
    """Volume centroids ``{vertebra: (3,)}`` (mm, global) of the vertebral bodies (all their cells but those of
    the posterior arch), integrated exactly over the hex8 geometry (the point where a uniform body force on
    the body acts). ``weights``: :func:`_body_weights` of ``segment`` if already computed."""
    points = segment.mesh.points
    weights = _body_weights(segment) if weights is None else weights
    return {v: w @ points[nodes] / w.sum() for v, (nodes, w) in weights.items()}   # exact: sum_a N_a x_a = x


def _face_areas_normals(points, faces):
    """Area-scaled normals ``(k, 3)`` (mm^2) of quads (diagonal cross product / 2)."""
    p = points[faces]
    return 0.5 * np.cross(p[:, 2] - p[:, 0], p[:, 3] - p[:, 1])


def _endplate_normal(points, faces):
    n = _face_areas_normals(points, faces).sum(axis=0)
    return n / np.linalg.norm(n)


def sagittal_angle(segment, points=None):
    """Sagittal (Cobb-like) angle of the whole segment (deg), **positive when kyphotic**.

    The angle in the y-z plane between the superior endplate of the top vertebra and the inferior
    endplate of the bottom vertebra, each represented by its area-weighted mean normal (face sets
    ``segment:superior`` / ``segment:inferior``; the inferior one reversed so that both point
    cranially): ``atan2(n_y, n_z)`` of the top minus that of the bottom. Same sign convention as
    :func:`vertebrafe.clinical.measure` (anterior side closer = kyphotic = positive). ``points``
    (n, 3) replaces the mesh's node coordinates (e.g. an intact reference geometry).
    """
    mesh = segment.mesh
    pts = mesh.points if points is None else np.asarray(points, dtype=float)
    top = _endplate_normal(pts, mesh.face_sets["segment:superior"])
    bot = -_endplate_normal(pts, mesh.face_sets["segment:inferior"])
    return math.degrees(math.atan2(top[1], top[2]) - math.atan2(bot[1], bot[2]))


def alignment_change(segment):
    """Added kyphosis (deg) of ``segment`` relative to its intact geometry.

    The intact geometry is the one recorded by the first ``fracture`` operation of the segment's
    clinical history (``history[i].data["intact_points"]``); without a fracture the segment is its
    own reference and the change is 0. Positive = more kyphotic (trunk tilted forward); a kyphoplasty
    that restores height brings it back toward 0.
    """
    for op in tuple(getattr(segment, "history", ())):
        if op.kind == "fracture" and "intact_points" in getattr(op, "data", {}):
            return sagittal_angle(segment) - sagittal_angle(segment, op.data["intact_points"])
    return 0.0


def follower_path(segment, reference_point=None, weights=None):
    """Guide points of the follower load ``(L + 2, 3)`` mm, cranial first.

    ``P_0`` is the load's reference point on the top endplate (default the centroid of the
    ``segment:superior`` nodes), ``P_1 .. P_L`` the volume centroids of the vertebral bodies
    (cranial first), ``P_{L+1}`` the centroid of the ``segment:inferior`` nodes (the fixed base).
    ``weights``: :func:`_body_weights` of ``segment`` if already computed.
    """
    mesh = segment.mesh
    p0 = (mesh.points[mesh.node_sets["segment:superior"]].mean(axis=0) if reference_point is None
          else np.asarray(reference_point, dtype=float))
    cen = level_centroids(segment, weights)
    base = mesh.points[mesh.node_sets["segment:inferior"]].mean(axis=0)
    return np.vstack([p0] + [cen[v] for v in segment.levels] + [base])


# ------------------------------------------------------------------------------------------------
# Applying a load to a model


@dataclass
class AppliedLoad:
    """What :func:`apply` did: the top ``plate`` (:class:`~vertebrafe.RigidPlate`), the ``base`` node set
    (fixed), the ``force`` (3,) N and ``moment`` (3,) N mm on the plate, the follower guide forces
    ``guide_forces {vertebra: (3,) N}`` (applied as uniform body forces on the vertebral bodies), the
    unit ``direction`` (3,) of the top force (compression only, shear excluded), the ``level_loads``
    actually applied (``[{"level", "name", "via", "force_N", "moment_Nmm", "about_mm"}]``, moment about
    ``about_mm``), the name of the ``user_loads`` hook of :func:`~vertebrafe.simulate.simulate` (or None) and
    ``total_force`` (3,) N, the sum of all forces of the load (user loads excluded; :func:`resultant` has all)."""

    plate: object
    base: np.ndarray
    force: np.ndarray
    moment: np.ndarray
    direction: np.ndarray
    guide_forces: dict = field(default_factory=dict)
    path: np.ndarray | None = None
    level_loads: list = field(default_factory=list)
    user_loads: str | None = None

    @property
    def total_force(self):
        f = self.force.copy()
        for g in self.guide_forces.values():
            f = f + g
        for x in self.level_loads:
            f = f + x["force_N"]
        return f


def resultant(model, point):
    """Resultant ``(force (3,) N, moment (3,) N mm about point)`` of every load on ``model``: nodal forces
    (distributed loads, follower guides, user loads) and the forces and moments on its rigid plates.
    In equilibrium it balances the support reactions."""
    c = np.asarray(point, dtype=float)
    f_nodes = model.nodal_loads
    F = f_nodes.sum(axis=0)
    M = np.cross(model.mesh.points - c, f_nodes).sum(axis=0)
    for p in model.plates:
        F = F + p.force
        M = M + p.moment + np.cross(p.center - c, p.force)
    return F, M


def _gauss_data(mesh, cell_mask):
    """Gauss points ``xg (c, g, 3)``, weights ``wdet (c, g)`` (mm^3) and cells ``(c, 8)`` of the selected cells."""
    el = mesh.element
    cells = mesh.cells[cell_mask]
    return np.einsum("ga,caj->cgj", el.shape, mesh.points[cells]), _gauss_weights(mesh, cells), cells


def distributed_load(mesh, cell_mask, force, moment, point=None):
    """Consistent nodal forces ``(nodes (k,), f (k, 3))`` of a body force over the selected cells whose
    resultant is exactly ``force`` (3,) N at ``point`` (mm; default the cells' centroid) plus ``moment``
    (3,) N mm.

    With ``c`` the centroid and ``I = int (|r|^2 1 - r r^T) dV`` (r = x - c) under the same quadrature,
    the body force ``b(x) = force / V + Omega x (x - c)``, ``Omega = I^-1 M_c``, has force resultant
    ``force`` and moment about ``c`` ``I Omega = M_c = moment + (point - c) x force`` (exact to round-off).
    """
    el = mesh.element
    xg, wdet, cells = _gauss_data(mesh, cell_mask)
    V = wdet.sum()
    c = np.einsum("cg,cgj->j", wdet, xg) / V
    r = xg - c
    I = (np.einsum("cg,cgk,cgk->", wdet, r, r) * np.eye(3) - np.einsum("cg,cgi,cgj->ij", wdet, r, r))
    F = np.asarray(force, dtype=float)
    Mc = np.asarray(moment, dtype=float)
    if point is not None:
        Mc = Mc + np.cross(np.asarray(point, dtype=float) - c, F)
    omega = np.linalg.solve(I, Mc)
    b = F / V + np.cross(omega, r)                                         # (c, g, 3) N/mm^3
    fe = np.einsum("cg,ga,cgi->cai", wdet, el.shape, b)                    # (c, 8, 3)
    nodes, inv = np.unique(cells.ravel(), return_inverse=True)
    f = np.stack([np.bincount(inv, weights=fe[..., i].ravel(), minlength=nodes.size) for i in range(3)], axis=1)
    return nodes, f, c


def _apply_level_load(model, segment, item, top_plate, plates):
    mesh = segment.mesh
    if item.level not in segment.levels:
        raise InputError(f"level load on {item.level!r}: not a vertebra of this segment; vertebrae: "
                         f"{list(segment.levels)}")
    F = np.asarray(item.force)
    M = N_MM_PER_N_M * np.asarray(item.moment)
    if item.via == "plate":
        if item.level == segment.levels[0]:
            plate = top_plate
        elif item.level in plates:
            plate = plates[item.level]
        else:
            plate = plates[item.level] = model.rigid_plate(mesh.node_sets[f"{item.level}:superior"])
        if item.point is not None:
            M = M + np.cross(np.asarray(item.point) - plate.center, F)
        plate.load(force=F, moment=M)
        about = plate.center
    else:
        nodes, f, about = distributed_load(mesh, _body_cells(mesh, item.level), F, M, item.point)
        model.add_force(nodes, f)
        if item.point is not None:
            M = M + np.cross(np.asarray(item.point) - about, F)
    return {"level": item.level, "name": item.name, "via": item.via, "force_N": F, "moment_Nmm": M,
            "about_mm": np.asarray(about, dtype=float)}


def apply(model, segment, load):
    """Apply ``load`` (:class:`Load`) to ``model`` (a :class:`~vertebrafe.Model` on ``segment.mesh``).

    * the inferior endplate of the bottom vertebra (``segment:inferior``) is fixed in x, y, z;
    * the superior endplate of the top vertebra (``segment:superior``) is tied to a rigid plate with its
      reference point at ``load.reference_point`` or the endplate nodes' centroid; the plate carries the
      force, the shear and the moments (N mm);
    * vertical mode: force ``(lateral_shear, anterior_shear, -compression)``;
    * follower mode: with guide points ``P_0 .. P_{L+1}`` (:func:`follower_path`) and unit vectors
      ``d_k = (P_{k+1} - P_k) / |P_{k+1} - P_k|``, the plate carries ``T d_0`` (plus the shear) and each
      vertebral body k the guide force ``T (d_k - d_{k-1})`` as a uniform body force (resultant at its
      centroid). This is the load of a cable under tension T running through guides at the vertebral
      centroids: every section between two guides carries a pure compression T along the path and no
      bending moment from the preload;
    * every :class:`LevelLoad` of ``load.level_loads`` is applied on its vertebra (plate or distributed).

    Returns an :class:`AppliedLoad`.
    """
    if not isinstance(load, Load):
        raise InputError(f"load = {load!r}; expected a vertebrafe.Load")
    mesh = segment.mesh
    for key in ("segment:superior", "segment:inferior"):
        if key not in mesh.node_sets:
            raise InputError(f"the mesh has no node set {key!r}; build it with vertebrafe.segment")
    base = mesh.node_sets["segment:inferior"]
    model.fix(base, "xyz")
    center = None if load.reference_point is None else np.asarray(load.reference_point, dtype=float)
    plate = model.rigid_plate(mesh.node_sets["segment:superior"], center=center)
    moment = load.moment
    guides = {}
    path = None
    if load.follower and load.compression > 0:
        weights = _body_weights(segment)            # for the centroids and the guide forces
        path = follower_path(segment, plate.center, weights)
        d = np.diff(path, axis=0)
        length = np.linalg.norm(d, axis=1)
        if np.any(length < 1e-9):
            raise InputError("follower path has coincident guide points (reference point at a vertebral "
                             "centroid?); move load.reference_point")
        d /= length[:, None]
        T = load.compression
        force = T * d[0] + load.shear
        for k, v in enumerate(segment.levels, start=1):
            g = T * (d[k] - d[k - 1])
            guides[v] = g
            if np.allclose(g, 0.0, atol=1e-12 * T):
                continue
            nodes, w = weights[v]
            model.add_force(nodes, np.outer(w / w.sum(), g))
        direction = d[0]
    else:
        force = load.vertical_force
        direction = np.array([0.0, 0.0, -1.0])
    plate.load(force=force, moment=moment)
    plates = {}
    applied = [_apply_level_load(model, segment, x, plate, plates) for x in load.level_loads]
    return AppliedLoad(plate=plate, base=base, force=force, moment=moment, direction=direction,
                       guide_forces=guides, path=path, level_loads=applied)


# ------------------------------------------------------------------------------------------------
# Kyphosis-aware upper-body load

# fraction of body weight above the superior endplate of each vertebra
_LEVEL_SEQUENCE = ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5")
_FRACTION_L1, _FRACTION_S1 = 0.37, 0.50


def body_weight_fraction(level):
    """Fraction of body weight above the superior endplate of vertebra ``level`` (T10-L5).

    Linear in the vertebral count between 0.37 above L1 (head-neck + thorax + arms, Plagenhoef 1983 /
    de Leva 1996 via literature.md 4.4, [derived, crude]) and 0.50 above S1 (adds the abdomen): 0.026
    per level; T10 0.292 ... L5 0.474.
    """
    if level not in _LEVEL_SEQUENCE:
        raise InputError(f"level = {level!r}; allowed: {list(_LEVEL_SEQUENCE)}")
    i = _LEVEL_SEQUENCE.index(level) - _LEVEL_SEQUENCE.index("L1")
    return _FRACTION_L1 + i * (_FRACTION_S1 - _FRACTION_L1) / 5.0


UPPER_BODY_CONSTANTS = {
    "gravity": (9.81, "m/s^2", "standard gravity"),
    "muscle_lever_arm": (0.05, "m", "erector spinae moment arm about the vertebral body centre: the fixed 5 cm "
                                    "of biomechanical models (Gungor 2013, PhD thesis, Auburn University; "
                                    "vertebrafe.muscles)"),
    "com_offset": (0.03, "m", "anterior offset of the upper-body centre of mass from the vertebral centre in "
                              "upright standing [assumption: calibrated so that a 70 kg subject gets about "
                              "500 N at L4, the force behind the 0.5 MPa standing IDP of Wilke 1999]"),
    "com_height": (0.25, "m", "height of the upper-body centre of mass above the loaded level (about T8 above "
                              "the thoracolumbar junction) [assumption]"),
}


def upper_body(body_mass, level=None, compensation=0.0, segment=None, *, trunk_flexion=0.0,
               added_kyphosis=None, passive_share=0.0, follower=True, muscle_lever_arm=None,
               com_offset=None, com_height=None, shear=False):
    """Static sagittal upper-body load on the top of a segment, aware of its alignment.

    Model (2-D, sagittal plane, see ``docs/loads.md``)::

        W   = g * body_mass * body_weight_fraction(level)                      (N)
        phi = trunk_flexion + (1 - compensation) * added_kyphosis              (deg)
        e   = com_offset * cos(phi) + com_height * sin(phi)                    (m, lever arm of W)
        M   = W * e                                                            (N m, flexion)
        F_m = (1 - passive_share) * |M| / muscle_lever_arm                     (N, back extensors)
        compression = W * cos(phi) + F_m;  flexion = passive_share * M
        anterior_shear = W * sin(phi)      (with shear=True)

    ``added_kyphosis`` defaults to :func:`alignment_change` of ``segment`` (a wedge fracture tilts the
    trunk forward and raises the load; restoring height lowers it); ``compensation`` (0..1) is the
    fraction of that tilt compensated by posture (pelvis, hips, knees; Bruno 2012: compensation mitigates
    the rise). ``level`` defaults to the top vertebra of ``segment``. Returns a :class:`Load` (follower
    by default) with ``name = "upper_body"``. ``shear=True`` adds the shear component of the weight,
    ``W sin(phi)``, as ``anterior_shear`` (the inclined trunk pushes the top vertebra forward along its
    endplate; the shear the back muscles carry is not modelled); by default it is left out.
    """
    m = _number("body_mass", body_mass, 20.0, 250.0, "kg")
    c = _number("compensation", compensation, 0.0, 1.0)
    s = _number("passive_share", passive_share, 0.0, 1.0)
    flex = _number("trunk_flexion", trunk_flexion, -30.0, 90.0, "deg")
    if level is None:
        if segment is None:
            raise InputError("upper_body needs a level (e.g. 'L1') or a segment (its top vertebra is used)")
        level = segment.levels[0]
    frac = body_weight_fraction(level)
    if added_kyphosis is None:
        added_kyphosis = alignment_change(segment) if segment is not None else 0.0
    k = _number("added_kyphosis", added_kyphosis, -45.0, 90.0, "deg")
    g = UPPER_BODY_CONSTANTS["gravity"][0]
    r_m = _number("muscle_lever_arm", UPPER_BODY_CONSTANTS["muscle_lever_arm"][0] if muscle_lever_arm is None
                  else muscle_lever_arm, 0.01, 0.2, "m")
    e0 = _number("com_offset", UPPER_BODY_CONSTANTS["com_offset"][0] if com_offset is None else com_offset,
                 -0.2, 0.2, "m")
    h = _number("com_height", UPPER_BODY_CONSTANTS["com_height"][0] if com_height is None else com_height,
                0.0, 1.0, "m")
    phi = math.radians(flex + (1.0 - c) * k)
    W = g * m * frac
    e = e0 * math.cos(phi) + h * math.sin(phi)
    M = W * e
    Fm = (1.0 - s) * abs(M) / r_m          # extensors (M > 0) or abdominal flexors (M < 0)
    comp = max(W * math.cos(phi) + Fm, 0.0)
    sagittal = s * M
    if not isinstance(shear, (bool, np.bool_)):
        raise InputError(f"shear = {shear!r}; expected True or False")
    return Load(compression=comp, flexion=max(0.0, sagittal), extension=max(0.0, -sagittal),
                follower=bool(follower), name="upper_body",
                anterior_shear=W * math.sin(phi) if shear else 0.0)
