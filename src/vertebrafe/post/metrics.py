"""Per level and region metrics of a solved segment, as tidy rows.

Every statistic over cells is **volume-weighted** (cells differ in size): the weighted mean is
``sum(v_i x_i) / sum(v_i)`` and a weighted percentile p is the value at which the cumulative volume of
the cells sorted by ``x`` reaches p % of the group volume (midpoint rule, linear interpolation).
Cell quantities are the volume averages of the Gauss-point fields (``Solution.cell_stress`` etc.).
Per tissue the weight is the **volume of that tissue the cell holds** (:func:`tissue_volumes`): a cell
that a cement or kyphoplasty surface cuts counts in the cancellous bone, the compacted rim and the
cement with the volume of each phase in it, not whole under its tag; every other cell counts whole under
its tag (for an untreated vertebra the weights are the cell volumes, as before). Each phase has its own
stress (:func:`tissue_stresses`: under the laminate rule the phases share the in-plane strain and the
traction on the layers, so a PMMA layer carries more stress than the bone beside it and than the cell's
mixed mean, :mod:`vertebrafe.clinical.phasestress`) and the cell's strain, with its own yield strain in the
yield test (:func:`tissue_yield_factors`: the cell strain at which that phase yields).

Rows are dicts ``{level, region, metric, value, unit}``; :func:`metrics_frame` adds ``case`` and makes a
pandas DataFrame. Definitions (units):

* per level and region (each tissue: ``cortex``, ``endplate``, ``cancellous``, ``cement`` (PMMA),
  ``cement_bone`` (cement-bone composite), ``compacted_bone``, the disc tissues): ``volume`` (mm^3, the
  tissue's volume: phase volumes of cut cells included);
  ``von_mises_mean``, ``von_mises_median``, ``von_mises_p95``, ``von_mises_max`` (MPa);
  ``min_principal_stress_p05`` (MPa, the 5th percentile of the minimum principal stress, i.e. the
  compressive tail); ``min_principal_strain_p05`` (-, the compressive strain tail);
  ``max_principal_strain_p95`` (-); ``strain_energy_density_mean`` (mJ/mm^3); for bone regions
  ``yield_fraction_compression`` / ``yield_fraction_tension`` / ``yield_fraction`` (-, volume fraction
  whose minimum principal strain is below ``-yield_compression``, whose maximum principal strain exceeds
  ``yield_tension``, or either; each yield strain times the tissue's own factor, :func:`tissue_yield_factors`).
* **reference volumes** of each vertebra, fixed by its geometry and blind to the material tags, so that
  their statistics compare like with like when cement is added (the same cells before and after; a cut
  cell counts with each phase's volume and own stress, as in the tissues):
  ``body`` (every cell of the vertebra) and ``core`` (the central core: the cell columns whose centre,
  in the vertebra's local frame, lies inside the ellipse of :data:`CORE_RADIUS` of the half-width and
  half-depth of its bottom cell layer, over the full height). Same metrics as a tissue, without yield
  fractions. **These (and the per-tissue rows) are the ones to compare between treatments.**
* region ``bone`` aggregates the bone regions of a vertebra (cortex, endplate, cancellous, compacted
  bone; the bone phases of cut cells with their volumes). Cement leaves this population, so its percentiles shift with its composition (e.g. the
  cortex share rises and the 95th percentile moves toward cortical stresses): use it for yield fractions
  and strength, not to compare stresses between treatments.
* per vertebra (region ``vertebra``): ``height`` (mm, distance of the area-weighted endplate centroids),
  ``height_change`` (mm, negative = shortened; the change of that distance, so rigid tilting does not
  count, see :func:`centroid_distance`), ``apparent_strain`` (-,
  height_change / height), ``superior_endplate_deflection`` and ``inferior_endplate_deflection`` (mm,
  mean displacement of the central endplate (the ellipse of 30 % of its half-width and half-depth,
  :func:`central_mean`) relative to its rim (the outermost ring of faces: the cortical rim), along the
  outward normal; **positive = bulging into the
  vertebral body**), ``cortical_share`` (-, share of the axial force carried by the cortex in the middle
  cell layer of the vertebra (the two middle layers for an even count); each cell's axial force is
  ``sigma_aa * V / h`` with ``a`` the vertebra's axis and ``h`` the cell's height along it; meshes that
  are not layer stacks use the cells cut by the mid-height plane; NaN when the net axial force is small).
* per disc (region ``disc``): ``height_change`` (mm, change of the distance between the centroids of the
  two endplates that bound it); ``rotation_flexion``, ``rotation_lateral_bending``, ``rotation_axial``
  (deg, the intervertebral rotation: least-squares rotation of the upper vertebra's inferior endplate
  nodes minus that of the lower vertebra's superior endplate nodes, :func:`endplate_rotation`; signs as
  the segment's); region ``nucleus``: ``pressure`` (MPa, volume mean
  of ``-trace(sigma) / 3``, plus the fluid pressure with a fluid nucleus), ``pressure_max`` (of the cells),
  ``fluid_pressure`` (MPa, the cavity's uniform pressure, with ``nucleus="fluid"``), with a nucleus pre-pressure
  (:mod:`vertebrafe.swelling`, added by :func:`vertebrafe.simulate.simulate`) ``rest_pressure`` and
  ``swelling_stress`` (MPa); region ``annulus``: ``von_mises_peak`` (MPa, max) and,
  with annulus fibres, ``fibre_force_total`` (N, sum of the fibre spring forces), ``fibre_stress_max``
  (MPa, largest fibre stress: force over the family's cross-section ``phi V / L``) and ``fibres_taut``
  (-, share of the fibre springs in tension).
* segment (level and region ``segment``): ``axial_stiffness`` (N/mm: compression / top-plate
  displacement along the load direction), ``translation_x/y/z`` (mm), ``rotation_flexion`` (deg,
  positive = flexion, about -x), ``rotation_lateral_bending`` (deg, positive = right, about +y),
  ``rotation_axial`` (deg, about +z), ``reaction_force_x/y/z`` (N) and ``reaction_moment_x/y/z``
  (N m, about the base centroid) at the fixed base.
"""
from __future__ import annotations

import math

import numpy as np

from ..elasticity import engineering
from ..errors import InputError
from ..fem.solution import principal_values, von_mises
from ..materials import PHASE_STRESS, PHASE_TISSUES, YIELD_STRAIN_COMPRESSION, YIELD_STRAIN_TENSION

__all__ = ["cell_yield_strains", "tissue_volumes", "tissue_stresses", "tissue_stress_tensors", "CEMENT_REGIONS", "BONE_REGIONS", "REFERENCE_REGIONS", "CORE_RADIUS", "METRIC_NAMES", "core_cells",
           "weighted_quantile", "weighted_mean", "region_rows", "stack_cells", "layered_cells", "body_cells", "vertebra_rows", "disc_rows", "segment_rows",
           "metrics_frame", "COLUMNS", "level_axis", "endplate_rotation", "face_mean", "central_mean", "strain_ratio"]

#: Regions whose volume counts as bone for yield fractions and strength (cement and cement-bone
#: composite are excluded: their yield strain is not the bone's).
BONE_REGIONS = ("cortex", "endplate", "cancellous", "compacted_bone")
#: Tissues of the cement phase of a cut cell (vertebroplasty's composite or PMMA, kyphoplasty's PMMA).
CEMENT_REGIONS = ("cement_bone", "cement")
#: Reference volumes of a vertebra defined by geometry (see the module docstring).
REFERENCE_REGIONS = ("body", "core")
#: Core radius as a fraction of the half-width and half-depth of the vertebra.
CORE_RADIUS = 0.5
COLUMNS = ["case", "level", "region", "metric", "value", "unit"]
#: Metric names of a result's metric table (tests/test_guards.py checks that a result holds no other): study
#: plots are checked against them before a study runs (a near miss is a typo; an unknown name is allowed and
#: reported after the run if it draws nothing). Add a new metric here.
METRIC_NAMES = frozenset("""
apparent_strain axial_stiffness cortical_share displacement_along_load factor_of_risk factor_of_risk_apparent
factor_of_risk_yield height height_change inferior_endplate_deflection load_scale_yield max_principal_strain_p95
min_principal_strain_p05 min_principal_stress_p05 overload_index_apparent overload_index_yield
plate_stiffness plate_strength_apparent plate_strength_pushover plate_strength_yield pressure pressure_max reaction_force_x
reaction_force_y reaction_force_z reaction_moment_x reaction_moment_y reaction_moment_z rotation_axial
rotation_flexion rotation_lateral_bending strain_energy_density_mean strength_apparent strength_yield
superior_endplate_deflection translation_x translation_y translation_z volume von_mises_max von_mises_mean
von_mises_median von_mises_p95 von_mises_peak yield_fraction yield_fraction_compression
yield_fraction_tension facet_force ligament_force axial_force load_share rest_pressure swelling_stress""".split())
CENTRAL_RADIUS = 0.3


def weighted_mean(x, w):
    w = np.asarray(w, dtype=float)
    s = w.sum()
    return float(np.dot(np.asarray(x, dtype=float), w) / s) if s > 0 else math.nan


def weighted_quantile(x, w, q):
    """Volume-weighted quantile(s) ``q`` in [0, 1] of values ``x (k,)`` with weights ``w (k,)``.

    Midpoint rule: the sorted value i sits at cumulative weight ``(W_i - w_i / 2) / W``; linear
    interpolation between, clamped at the ends. Equal weights give numpy's ``"hazen"`` percentile.
    """
    x = np.asarray(x, dtype=float)
    w = np.asarray(w, dtype=float)
    if x.size == 0:
        return np.full(np.shape(q), math.nan)
    order = np.argsort(x, kind="stable")
    xs, ws = x[order], w[order]
    c = np.cumsum(ws)
    pos = (c - 0.5 * ws) / c[-1]
    return np.interp(q, pos, xs)


def tissue_volumes(mesh, cell_volume):
    """Volume of each tissue in each cell, as entries ``(cells (k,), codes (k,), volumes (k,))``: cell index,
    region code, mm^3 (``cell_volume (m,)`` mm^3).

    A cell that no clinical surface cut is one entry: its region tag and its volume. A cell with a cement
    fraction ``f_c`` or a compacted-rim fraction ``f_r`` (cell fields ``cement_fraction``,
    ``compacted_fraction`` of :func:`~vertebrafe.vertebroplasty` and :func:`~vertebrafe.kyphoplasty`, which
    cut the cancellous bone only) is up to three entries, whatever its tag (the phase filling at least half
    of it): ``cancellous`` with ``V (1 - f_c - f_r)``, ``compacted_bone`` with ``V f_r`` and the cement with
    ``V f_c``; phases of zero volume are left out. The cement's tissue (:data:`CEMENT_REGIONS`) is the one
    that the vertebra's cells at least half cement are tagged with (one augmentation per vertebra), or,
    where no cell is half cement, the only cement tissue of the region table. An interface layer
    (``interface_fraction``) is part of the cement fraction and counts with the cement. Entries: the uncut
    cells in cell order, then the phases of the cut cells. Raises :class:`InputError` where the cement's
    tissue cannot be told (no half-cement cell in the vertebra and both cement tissues in the table).
    """
    reg = np.asarray(mesh.cell_data["region"])
    vol = np.asarray(cell_volume, dtype=float)
    zero = np.zeros(reg.size)
    fc, fr = (np.asarray(mesh.cell_data.get(k, zero), dtype=float) for k in ("cement_fraction", "compacted_fraction"))
    cut = (fc > 0) | (fr > 0)
    if not cut.any():
        return np.arange(reg.size), reg, vol
    names = mesh.tag_names["region"]
    code = {n: c for c, n in names.items()}
    lev = mesh.cell_data["level"]
    cement = np.zeros(reg.size, dtype=reg.dtype)
    for lc in np.unique(lev[fc > 0]):
        L = lev == lc
        tagged = [c for c in np.unique(reg[L & (fc >= 0.5)]) if names[int(c)] in CEMENT_REGIONS]
        table = [code[n] for n in CEMENT_REGIONS if n in code]
        if len(tagged) != 1 and len(table) != 1:
            raise InputError(f"level {mesh.tag_names['level'][int(lc)]!r}: its cement tissue cannot be told "
                             f"(cells at least half cement tagged {[names[int(c)] for c in tagged]}, cement "
                             f"tissues in the region table {[names[int(c)] for c in table]}); expected one of "
                             f"{CEMENT_REGIONS}")
        cement[L] = tagged[0] if len(tagged) == 1 else table[0]
    k = np.flatnonzero(cut)
    host = np.clip(1.0 - fc[k] - fr[k], 0.0, 1.0)
    rim = code.get("compacted_bone", -1)
    cells = np.concatenate([np.flatnonzero(~cut), k, k, k])
    codes = np.concatenate([reg[~cut], np.full(k.size, code["cancellous"], dtype=reg.dtype),
                            np.full(k.size, rim, dtype=reg.dtype), cement[k]])
    volumes = np.concatenate([vol[~cut], vol[k] * host, vol[k] * fr[k], vol[k] * fc[k]])
    keep = volumes > 0
    return cells[keep], codes[keep], volumes[keep]


def level_axis(segment, name):
    """Unit axis (3,) of vertebra ``name`` (its local z in the global frame); for a disc ``"A-B"`` the
    normalised mean of the axes of ``A`` and ``B``."""
    if name in segment.frames:
        return np.asarray(segment.frames[name][0], dtype=float)[:, 2]
    up, lo = name.split("-")
    a = level_axis(segment, up) + level_axis(segment, lo)
    return a / np.linalg.norm(a)


def _areas(points, faces):
    """Areas (mm^2) of quad faces ``(k, 4)`` or of triangles (``(k, 3)``, or ``(k, 6)`` with the corners first)."""
    p = points[faces]
    if faces.shape[1] == 4:
        return 0.5 * np.linalg.norm(np.cross(p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]), axis=1)
    return 0.5 * np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)


def face_mean(points, faces, values, mask=None):
    """Area-weighted mean over ``faces`` (quads ``(k, 4)`` or triangles) of a nodal field ``values (n, ...)``."""
    if mask is not None:
        faces = faces[mask]
    a = _areas(points, faces)
    v = np.asarray(values)[faces].mean(axis=1)
    return np.tensordot(a, v, axes=(0, 0)) / a.sum()


def _rim(faces):
    """Bool mask ``(k,)`` of the rim faces: those with an edge on the boundary of the face set."""
    e = np.stack([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 3]], faces[:, [3, 0]]], axis=1)   # (k, 4, 2)
    es = np.sort(e.reshape(-1, 2), axis=1)
    _, inv, cnt = np.unique(es, axis=0, return_inverse=True, return_counts=True)
    return (cnt[inv.ravel()] == 1).reshape(-1, 4).any(axis=1)


_SUB = 8                                                      # sub-points per face direction
_XI = (np.arange(_SUB) + 0.5) / _SUB * 2.0 - 1.0
_XI, _ETA = (a.ravel() for a in np.meshgrid(_XI, _XI, indexing="ij"))
_N = 0.25 * np.stack([(1 - _XI) * (1 - _ETA), (1 + _XI) * (1 - _ETA), (1 + _XI) * (1 + _ETA),
                      (1 - _XI) * (1 + _ETA)], axis=1)                                  # (s, 4)
_DN = 0.25 * np.stack([np.stack([-(1 - _ETA), (1 - _ETA), (1 + _ETA), -(1 + _ETA)], axis=1),
                       np.stack([-(1 - _XI), -(1 + _XI), (1 + _XI), (1 - _XI)], axis=1)])  # (2, s, 4)


def central_mean(points, faces, values, R, origin, radius=None):
    """Area-weighted mean of a nodal scalar field over the central ellipse of a quad face set.

    ``points (n, 3)`` mm, ``faces (k, 4)`` node indices, ``values (n,)``, frame ``R (3, 3)`` (columns:
    local axes) and ``origin (3,)`` mm; returns a float in the unit of ``values``.

    The ellipse is centred on the middle of the faces' extent in the local x-y of frame ``(R, origin)``
    and has ``radius`` (default :data:`CENTRAL_RADIUS`) times the half-width and half-depth. Each face is
    sampled at 8 x 8 points with its bilinear map, so the region, not the faces that happen to lie in
    it, is averaged: the value converges with the mesh instead of jumping as faces enter the region.
    If no sample point lies inside (a radius far below the face size), the sample nearest the centre is
    used. Raises :class:`InputError` for a radius outside (0, 1] or a face set without extent in x or y.
    """
    radius = CENTRAL_RADIUS if radius is None else float(radius)
    if not 0.0 < radius <= 1.0:
        raise InputError(f"radius = {radius!r}; allowed range (0, 1] (fraction of the half-extents)")
    p = points[faces]                                                  # (k, 4, 3)
    loc = np.tensordot((p - origin) @ R[:, :2], _N, axes=([1], [1]))  # (k, 2, s) sample points, local x-y
    ext = ((points[np.unique(faces)] - origin) @ R)[:, :2]
    mid, half = 0.5 * (ext.max(axis=0) + ext.min(axis=0)), 0.5 * (ext.max(axis=0) - ext.min(axis=0))
    if not np.all(half > 0.0):
        raise InputError(f"the face set has no extent in local x or y (half-extents {half} mm)")
    rho2 = (((loc - mid[:, None]) / half[:, None]) ** 2).sum(axis=1)   # (k, s)
    inside = rho2 <= radius ** 2
    if not inside.any():
        inside = rho2 == rho2.min()
    d = np.tensordot(p, _DN, axes=([1], [2]))                         # (k, 3, 2, s) tangents
    area = np.linalg.norm(np.cross(d[:, :, 0], d[:, :, 1], axis=1), axis=1) * inside   # (k, s), up to a factor
    v = np.asarray(values)[faces] @ _N.T                               # (k, s)
    return float((v * area).sum() / area.sum())


def cell_yield_strains(mesh, yield_compression, yield_tension):
    """Per-cell yield strains ``(m,)`` in compression and tension: the given (bone) values times the cell
    field ``yield_factor`` where a clinical operation set it (a fracture: damaged bone keeps more of its
    strength than of its modulus, :data:`vertebrafe.clinical.fracture.DEFAULT_DAMAGE_STRENGTH_FACTOR`;
    cement augmentation: cells a cement surface cuts yield with their first phase,
    :mod:`vertebrafe.clinical.firstyield`), else the values."""
    f = np.asarray(mesh.cell_data.get("yield_factor", np.ones(mesh.n_cells)), dtype=float)
    return yield_compression * f, yield_tension * f


def tissue_yield_factors(mesh, cells, codes):
    """Yield-strain factor ``(k,)`` of tissue entries ``cells``, ``codes`` of :func:`tissue_volumes`: the
    bone yield strains times it are the entry's own.

    An uncut cell's entry has the cell's ``yield_factor`` (:func:`cell_yield_strains`). A phase of a cell
    that a cement or rim surface cuts has its tissue's column of the cell field ``phase_yield_factor``
    (:data:`~vertebrafe.materials.PHASE_TISSUES`, :mod:`vertebrafe.clinical.firstyield`): compared with the
    cell's strains it reaches 1 when the phase reaches its own yield strain. Without that field (a segment
    treated without elasticity) every entry has its cell's factor."""
    f = np.asarray(mesh.cell_data.get("yield_factor", np.ones(mesh.n_cells)), dtype=float)[cells]
    if "phase_yield_factor" not in mesh.cell_data:
        return f
    zero = np.zeros(mesh.n_cells)
    fc, fr = (np.asarray(mesh.cell_data.get(k, zero), dtype=float)[cells] for k in ("cement_fraction",
                                                                                   "compacted_fraction"))
    phase = np.asarray(mesh.cell_data["phase_yield_factor"], dtype=float)[cells, _phase_columns(mesh, codes)]
    return np.where((fc > 0) | (fr > 0), phase, f)


def _phase_columns(mesh, codes):
    """Column ``(k,)`` of :data:`~vertebrafe.materials.PHASE_TISSUES` of tissue entries with region ``codes``
    (a cement tissue: ``cement``)."""
    code = {n: c for c, n in mesh.tag_names["region"].items()}
    column = np.full(np.shape(codes), PHASE_TISSUES.index("cement"))
    for i, name in enumerate(PHASE_TISSUES[:2]):
        column[codes == code.get(name, -1)] = i
    return column


def tissue_stress_tensors(segment, solution, cells, codes):
    """Stress tensors ``(k, 6)`` (Voigt, tensor shear, MPa) of tissue entries ``cells``, ``codes`` of
    :func:`tissue_volumes` (the stress :func:`tissue_stresses` takes its invariants of) and the entries
    ``hit (j,)`` that hold a phase's own stress rather than their cell's."""
    s = solution.cell_stress[cells]
    kept = [op.data[PHASE_STRESS] for op in getattr(segment, "history", ()) if PHASE_STRESS in op.data]
    mapped = np.concatenate([c for c, _ in kept]) if kept else np.zeros(0, dtype=np.int64)
    if mapped.size == 0:
        return s, np.zeros(0, dtype=np.int64)
    maps = np.concatenate([m for _, m in kept])
    order = np.argsort(mapped)
    pos = order[np.minimum(np.searchsorted(mapped[order], cells), mapped.size - 1)]
    hit = np.flatnonzero(mapped[pos] == cells)
    strain = engineering(solution.cell_strain[cells[hit]])
    s[hit] = np.einsum("kij,kj->ki", maps[pos[hit], _phase_columns(segment.mesh, codes[hit])], strain)
    return s, hit


def tissue_stresses(segment, solution, cells, codes):
    """Von Mises stress and minimum principal stress ``(k,)`` (MPa) of tissue entries ``cells``, ``codes`` of
    :func:`tissue_volumes`.

    An entry has its cell's stress (``solution.von_mises``, ``solution.principal_stresses``), except a phase
    of a cell that holds several phases: its own stress, the tissue's map kept by the treating operation
    (``Operation.data[PHASE_STRESS]``, :mod:`vertebrafe.clinical.phasestress`: the laminate phase strains
    times the phase's own elasticity) applied to the cell's strain (:func:`tissue_stress_tensors`). The cells
    of the Hashin-Shtrikman rule have no map and keep the cell's stress."""
    vm = solution.von_mises[cells]
    smin = solution.principal_stresses[cells, 2]
    s, hit = tissue_stress_tensors(segment, solution, cells, codes)
    if hit.size:
        vm[hit] = von_mises(s[hit])
        smin[hit] = principal_values(s[hit])[:, 2]
    return vm, smin


def tissue_strain_ratios(mesh, principal_strains, cell_volume, yield_compression, yield_tension):
    """Strain ratio of each tissue in each cell: entries ``(cells (k,), codes (k,), volumes (k,) mm^3,
    ratios (k,))`` of :func:`tissue_volumes`, each with its own yield strains (:func:`tissue_yield_factors`;
    :func:`strain_ratio` of the cell's principal strains ``(m, 3)``)."""
    cells, codes, volumes = tissue_volumes(mesh, cell_volume)
    g = tissue_yield_factors(mesh, cells, codes)
    p = np.asarray(principal_strains)[cells]
    return cells, codes, volumes, strain_ratio(p, yield_compression * g, yield_tension * g)


def strain_ratio(principal_strains, yield_compression, yield_tension):
    """Per cell ``max(-eps_min / yield_compression, eps_max / yield_tension, 0)`` from principal strains
    ``(m, 3)`` (largest first): >= 1 where the cell exceeds a yield strain."""
    p = np.asarray(principal_strains)
    return np.maximum(np.maximum(-p[:, 2] / yield_compression, p[:, 0] / yield_tension), 0.0)


def _group_rows(level, region, vol, vm, smin, emax, sed, bone, emin_strain, yc, yt):
    rows = [(level, region, "volume", float(vol.sum()), "mm^3")]
    if vol.sum() <= 0:
        return rows
    p = weighted_quantile(vm, vol, [0.5, 0.95])
    rows += [
        (level, region, "von_mises_mean", weighted_mean(vm, vol), "MPa"),
        (level, region, "von_mises_median", float(p[0]), "MPa"),
        (level, region, "von_mises_p95", float(p[1]), "MPa"),
        (level, region, "von_mises_max", float(vm.max()), "MPa"),
        (level, region, "min_principal_stress_p05", float(weighted_quantile(smin, vol, 0.05)), "MPa"),
        (level, region, "min_principal_strain_p05", float(weighted_quantile(emin_strain, vol, 0.05)), "-"),
        (level, region, "max_principal_strain_p95", float(weighted_quantile(emax, vol, 0.95)), "-"),
        (level, region, "strain_energy_density_mean", weighted_mean(sed, vol), "mJ/mm^3"),
    ]
    if bone:
        comp = emin_strain < -yc
        ten = emax > yt
        V = vol.sum()
        rows += [
            (level, region, "yield_fraction_compression", float(vol[comp].sum() / V), "-"),
            (level, region, "yield_fraction_tension", float(vol[ten].sum() / V), "-"),
            (level, region, "yield_fraction", float(vol[comp | ten].sum() / V), "-"),
        ]
    return rows


def region_rows(segment, solution, yield_compression=YIELD_STRAIN_COMPRESSION, yield_tension=YIELD_STRAIN_TENSION,
                bone_regions=BONE_REGIONS):
    """Rows per (level, region) and per vertebra for region ``bone`` (see the module docstring)."""
    mesh = segment.mesh
    vol = solution.cell_volume
    pe = solution.principal_strains
    sed = solution.strain_energy_density
    lev = mesh.cell_data["level"]
    ln, rn = mesh.tag_names["level"], mesh.tag_names["region"]
    bone_codes = [c for c, n in rn.items() if n in bone_regions]
    in_stack = layered_cells(mesh) < stack_cells(segment)             # the body, not its posterior arch
    ycs, yts = cell_yield_strains(mesh, yield_compression, yield_tension)
    cells, codes, w = tissue_volumes(mesh, vol)                        # per tissue: the volume it holds,
    order = np.argsort(cells, kind="stable")       # in cell order: a group no surface cuts sums as its cells
    cells, codes, w = cells[order], codes[order], w[order]
    g = tissue_yield_factors(mesh, cells, codes)                       # its own yield strains
    e_vm, e_smin = tissue_stresses(segment, solution, cells, codes)    # and its own stress
    e_lev = lev[cells]
    e_bone = np.isin(codes, bone_codes)

    def tissue(lname, name, e, bone):
        k = cells[e]
        return _group_rows(lname, name, w[e], e_vm[e], e_smin[e], pe[k, 0], sed[k], bone, pe[k, 2],
                           yield_compression * g[e], yield_tension * g[e])

    rows = []
    order = {n: i for i, n in enumerate(segment.names)}
    for lc in sorted(np.unique(lev), key=lambda c: order.get(ln[int(c)], 1 << 30)):
        L = lev == lc
        E = e_lev == lc
        lname = ln[int(lc)]
        for rc in np.unique(codes[E]):
            rows += tissue(lname, rn[int(rc)], E & (codes == rc), int(rc) in bone_codes)
        if lname in segment.levels:
            if (E & e_bone).any():
                rows += tissue(lname, "bone", E & e_bone, True)
            core = np.zeros(mesh.n_cells, dtype=bool)
            core[core_cells(segment, lname)] = True
            for name, sel in (("body", L & in_stack), ("core", core)):
                e = sel[cells]                                         # its cells' tissue entries
                k = cells[e]
                rows += _group_rows(lname, name, w[e], e_vm[e], e_smin[e], pe[k, 0], sed[k], False, pe[k, 2],
                                    ycs[k], yts[k])
    return rows


def stack_cells(segment):
    """Number of cells of the vertebral bodies and discs: all of them, or, with posterior elements, the
    layered stack before the arches (``Segment.stack_cells``)."""
    return int(getattr(segment, "stack_cells", segment.mesh.n_cells))


def layered_cells(mesh):
    """The cell of the layered mesh each cell belongs to ``(m,)``: itself, or for a cell an operation appended
    (a pillowed bolus's layer) the cell it was made from (cell field ``layered_cell``)."""
    if "layered_cell" in mesh.cell_data:
        return np.asarray(mesh.cell_data["layered_cell"], dtype=np.int64)
    return np.arange(mesh.n_cells)


def body_cells(segment, level):
    """Cells ``(m,)`` bool of the body of vertebra ``level``: its cells of the layered stack and those appended
    to them, not its posterior elements."""
    mesh = segment.mesh
    code = {v: k for k, v in mesh.tag_names["level"].items()}[level]
    return (mesh.cell_data["level"] == code) & (layered_cells(mesh) < stack_cells(segment))


def core_cells(segment, level, radius=CORE_RADIUS):
    """Cell indices ``(c,)`` of the central core of vertebra ``level`` (see the module docstring).

    Layer-stack meshes of :func:`~vertebrafe.segment` (``segment.counts.n_cells`` cells per layer): whole
    columns, chosen on the vertebra's bottom cell layer, so the set depends on the mesh topology and the
    inferior endplate only and is the same after cement, fracture or restoration of the upper part. Other
    meshes: the cells whose centre lies inside the ellipse (current geometry)."""
    radius = float(radius)
    if not 0.0 < radius <= 1.0:
        raise InputError(f"radius = {radius!r}; allowed range (0, 1] (fraction of the half-extents)")
    mesh = segment.mesh
    code = {v: k for k, v in mesh.tag_names["level"].items()}[level]
    n_stack = stack_cells(segment)
    cells = np.flatnonzero(mesh.cell_data["level"][:n_stack] == code)
    R, o = (np.asarray(v, dtype=float) for v in segment.frames[level])
    q = getattr(getattr(segment, "counts", None), "n_cells", 0)
    layered = bool(q) and n_stack % q == 0
    probe = cells[cells // q == (cells // q).min()] if layered else cells
    xy = ((mesh.points[mesh.cells[probe]].mean(axis=1) - o) @ R)[:, :2]
    mid, half = 0.5 * (xy.max(axis=0) + xy.min(axis=0)), 0.5 * (xy.max(axis=0) - xy.min(axis=0))
    inside = ((((xy - mid) / np.where(half > 0, half, 1.0)) ** 2).sum(axis=1) <= radius ** 2)
    if not layered:
        return probe[inside]
    core = cells[np.isin(cells % q, probe[inside] % q)]
    return np.flatnonzero(np.isin(layered_cells(mesh), core) & body_cells(segment, level))


def axial_stress(stress, a):
    """sigma_aa ``(m,)`` of Voigt stresses ``(m, 6)`` (tensor shear) along the unit axis ``a (3,)``."""
    s = stress
    return (s[:, 0] * a[0] ** 2 + s[:, 1] * a[1] ** 2 + s[:, 2] * a[2] ** 2
            + 2 * (s[:, 3] * a[0] * a[1] + s[:, 4] * a[1] * a[2] + s[:, 5] * a[0] * a[2]))


def centroid_distance(points, upper, lower, displacement=None):
    """Distance (mm) between the area-weighted centroids of the quad face sets ``upper`` and ``lower``
    and, with ``displacement (n, 3)``, its change (mm, negative = closer): the relative mean displacement
    projected on the line joining the centroids. Unlike a projection on a fixed axis this is blind to
    rigid motion (a rotation moves the two centroids perpendicular to that line), so a wedge-shaped
    vertebra that tilts in flexion is not read as shortening or lengthening."""
    line = face_mean(points, upper, points) - face_mean(points, lower, points)
    H = float(np.linalg.norm(line))
    if displacement is None:
        return H, None
    rel = face_mean(points, upper, displacement) - face_mean(points, lower, displacement)
    return H, float(rel @ line / H)


def vertebra_geometry(segment, level, displacement=None):
    """Height (mm) of vertebra ``level`` (distance of its endplate centroids) and, with ``displacement
    (n, 3)``, its height change (mm), see :func:`centroid_distance`."""
    mesh = segment.mesh
    return centroid_distance(mesh.points, mesh.face_sets[f"{level}:superior"], mesh.face_sets[f"{level}:inferior"],
                             displacement)


def mid_height_layers(segment, level, a):
    """Cells of vertebra ``level`` at its mid-height: cell indices ``(c,)`` and their heights ``(c,)`` (mm)
    along the unit axis ``a (3,)``.

    Meshes of :func:`~vertebrafe.segment` are stacks of cell layers (``segment.counts.n_cells`` cells
    each, one cell per column, nodes 4-7 above nodes 0-3): the middle cell layer of the vertebra is
    taken (the two middle ones for an even count), and a cell's height is the mean projection of its
    four vertical edges; a cell appended to a layered one (a pillowed bolus's layer, cell field
    ``layered_cell``) belongs to its layer and takes its height. Other meshes: the cells whose extent along
    ``a`` contains the mid-height plane (both neighbours where a node layer lies on it), with the extent as
    height.
    """
    mesh = segment.mesh
    code = {v: k for k, v in mesh.tag_names["level"].items()}[level]
    n_stack = stack_cells(segment)
    layered = layered_cells(mesh)
    cells = np.flatnonzero((mesh.cell_data["level"] == code) & (layered < n_stack))
    q = getattr(getattr(segment, "counts", None), "n_cells", 0)
    if q and n_stack % q == 0:
        gap = layered[cells] // q
        layers = np.unique(gap)
        L = layers.size
        cross = cells[np.isin(gap, layers[(L - 1) // 2: L // 2 + 1])]
        p = mesh.points[mesh.cells[layered[cross]]]        # an appended cell: the height of its layered cell
        return cross, ((p[:, 4:8] - p[:, 0:4]) @ a).mean(axis=1)
    R, o = (np.asarray(v, dtype=float) for v in segment.frames[level])
    z = (mesh.points - o) @ a
    zm = 0.5 * (z[mesh.node_sets[f"{level}:inferior"]].mean() + z[mesh.node_sets[f"{level}:superior"]].mean())
    zc = z[mesh.cells[cells]]
    lo, hi = zc.min(axis=1), zc.max(axis=1)
    tol = 1e-6 * (hi - lo).max()
    sel = (lo <= zm + tol) & (hi >= zm - tol)
    return cells[sel], (hi - lo)[sel]


def cortical_share(segment, solution, level):
    """Share (-) of the axial force carried by the cortex at mid-height of vertebra ``level``
    (see the module docstring and :func:`mid_height_layers`); NaN when the net axial force is below 5 %
    of the sum of magnitudes."""
    mesh = segment.mesh
    a = np.asarray(segment.frames[level][0], dtype=float)[:, 2]
    cross, h = mid_height_layers(segment, level, a)
    f = axial_stress(solution.cell_stress[cross], a) * solution.cell_volume[cross] / h
    cort = [c for c, n in mesh.tag_names["region"].items() if n == "cortex"]
    is_c = np.isin(mesh.cell_data["region"][cross], cort)
    total = f.sum()
    if abs(total) < 0.05 * np.abs(f).sum():
        return math.nan
    return float(f[is_c].sum() / total)


def endplate_deflection(segment, displacement, level, which):
    """Central bulge (mm) of endplate ``which`` (``"superior"``/``"inferior"``) of ``level`` relative to
    its rim along the outward normal; positive = into the vertebral body."""
    mesh = segment.mesh
    R, o = (np.asarray(v, dtype=float) for v in segment.frames[level])
    faces = mesh.face_sets[f"{level}:{which}"]
    if faces.shape[1] != 4:
        return math.nan                              # the central-region sampling is for quad faces
    n = R[:, 2] if which == "superior" else -R[:, 2]
    w = displacement @ n
    return float(-(central_mean(mesh.points, faces, w, R, o) - face_mean(mesh.points, faces, w, _rim(faces))))


def vertebra_rows(segment, solution):
    rows = []
    u = solution.motion
    for v in segment.levels:
        H, dh = vertebra_geometry(segment, v, u)
        rows += [
            (v, "vertebra", "height", H, "mm"),
            (v, "vertebra", "height_change", dh, "mm"),
            (v, "vertebra", "apparent_strain", dh / H, "-"),
            (v, "vertebra", "superior_endplate_deflection", endplate_deflection(segment, u, v, "superior"), "mm"),
            (v, "vertebra", "inferior_endplate_deflection", endplate_deflection(segment, u, v, "inferior"), "mm"),
            (v, "vertebra", "cortical_share", cortical_share(segment, solution, v), "-"),
        ]
    return rows


def disc_rows(segment, solution):
    mesh = segment.mesh
    u = solution.motion                                          # kinematics from the rest state
    rows = []
    lev, reg = mesh.cell_data["level"], mesh.cell_data["region"]
    lcode = {v: k for k, v in mesh.tag_names["level"].items()}
    rcode = {v: k for k, v in mesh.tag_names["region"].items()}
    vol = solution.cell_volume
    s = solution.cell_stress
    p = -(s[:, 0] + s[:, 1] + s[:, 2]) / 3.0
    fibres = {s.name: s for s in solution.model.springs}.get("annulus_fibres")
    cavities = {s.name: s for s in solution.model.springs if hasattr(s, "pressure")}
    for d in segment.discs:
        up, lo = d.split("-")
        _, dh = centroid_distance(mesh.points, mesh.face_sets[f"{up}:inferior"], mesh.face_sets[f"{lo}:superior"], u)
        rows.append((d, "disc", "height_change", dh, "mm"))
        th = np.degrees(endplate_rotation(mesh.points, mesh.face_sets[f"{up}:inferior"], u)
                        - endplate_rotation(mesh.points, mesh.face_sets[f"{lo}:superior"], u))
        rows += [(d, "disc", "rotation_flexion", float(-th[0]), "deg"),
                 (d, "disc", "rotation_lateral_bending", float(th[1]), "deg"),
                 (d, "disc", "rotation_axial", float(th[2]), "deg")]
        if fibres is not None:
            g = next(k for k, n in fibres.group_names.items() if n == d)
            first, F = fibres.member_totals(solution.spring_forces(fibres.name))     # per fibre
            taut = fibres.member_totals(solution.spring_active[fibres.name])[1] > 0
            sel = fibres.group[first] == g
            rows += [(d, "annulus", "fibre_force_total", float(F[sel].sum()), "N"),
                     (d, "annulus", "fibre_stress_max", float((F[sel] / fibres.area[first[sel]]).max()), "MPa"),
                     (d, "annulus", "fibres_taut", float(taut[sel].mean()), "-")]
        L = lev == lcode[d]
        if "nucleus" in rcode:
            sel = L & (reg == rcode["nucleus"])
            if sel.any():
                cavity = cavities.get(f"{d}:nucleus")
                total, fluid = nucleus_pressure(solution, sel, cavity)
                rows.append((d, "nucleus", "pressure", total, "MPa"))
                if cavity is not None:
                    rows.append((d, "nucleus", "fluid_pressure", fluid, "MPa"))
                rows.append((d, "nucleus", "pressure_max", float(p[sel].max()), "MPa"))
        if "annulus" in rcode:
            sel = L & (reg == rcode["annulus"])
            if sel.any():
                rows.append((d, "annulus", "von_mises_peak", float(solution.von_mises[sel].max()), "MPa"))
    return rows


def nucleus_pressure(solution, cells, cavity=None):
    """``(pressure, fluid)`` MPa of one nucleus: the volume mean of ``-trace(sigma) / 3`` over its ``cells`` (indices
    or a bool mask) plus the uniform pressure of its fluid ``cavity`` (None: no fluid), and that fluid pressure."""
    s, volume = solution.cell_stress_of(cells)
    fluid = cavity.pressure(solution.displacement) if cavity is not None else 0.0
    return fluid + weighted_mean(-(s[:, 0] + s[:, 1] + s[:, 2]) / 3.0, volume), fluid


def endplate_rotation(points, faces, displacement):
    """Least-squares small rotation ``(3,)`` rad of the nodes of ``faces`` (global axes): the ``theta``
    that best fits ``u_i - mean(u) = theta x (x_i - mean(x))``."""
    nodes = np.unique(faces)
    r = points[nodes] - points[nodes].mean(axis=0)
    du = displacement[nodes] - displacement[nodes].mean(axis=0)
    A = np.eye(3) * np.einsum("ki,ki->", r, r) - r.T @ r
    return np.linalg.solve(A, np.cross(r, du).sum(axis=0))


def segment_rows(segment, solution, applied, load):
    """Segment-level rows: stiffness, plate motion, base reactions."""
    t, th = solution.plate_motion(applied.plate, from_rest=True)
    rows = []
    if load.compression > 0:
        along = float(t @ applied.direction)           # motion along the load (mm), > 0 in compression
        k = load.compression / along if along > 0 else math.nan
        rows.append(("segment", "segment", "axial_stiffness", k, "N/mm"))
        rows.append(("segment", "segment", "displacement_along_load", along, "mm"))
    deg = np.degrees(th)
    rows += [("segment", "segment", f"translation_{c}", float(t[i]), "mm") for i, c in enumerate("xyz")]
    rows += [("segment", "segment", "rotation_flexion", float(-deg[0]), "deg"),
             ("segment", "segment", "rotation_lateral_bending", float(deg[1]), "deg"),
             ("segment", "segment", "rotation_axial", float(deg[2]), "deg")]
    base = applied.base
    F = solution.reaction(base)
    c = segment.mesh.points[base].mean(axis=0)
    M = solution.reaction_moment(base, c) / 1000.0
    rows += [("segment", "segment", f"reaction_force_{k}", float(F[i]), "N") for i, k in enumerate("xyz")]
    rows += [("segment", "segment", f"reaction_moment_{k}", float(M[i]), "N m") for i, k in enumerate("xyz")]
    return rows


def metrics_frame(rows, case="case"):
    """A tidy pandas DataFrame (columns :data:`COLUMNS`) from ``(level, region, metric, value, unit)`` rows."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=COLUMNS[1:])
    df.insert(0, "case", case)
    df["value"] = df["value"].astype(float)
    return df
