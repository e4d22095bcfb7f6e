"""Linear-FE strength estimates per vertebra, the factor of risk and the in-situ overload index.

Two estimates, both exact consequences of linearity (a load scaled by lambda scales every strain by
lambda):

1. **Yield-volume (Pistoia-type) strength** -- the load scale ``lambda*`` at which a set ``fraction``
   (default 2 %, Pistoia et al. 2002) of the vertebra's bone volume exceeds a yield strain (minimum
   principal strain below ``-yield_compression`` or maximum principal strain above ``yield_tension``;
   Morgan & Keaveny 2001 vertebral values 0.77 % / 0.70 % by default, from the MaterialSet). With the
   strain ratio ``r = max(-eps_min / yc, eps_max / yt)``, the yielded fraction at scale lambda is the
   volume fraction with ``r >= 1 / lambda``; ``lambda* = 1 / r_f`` where ``r_f`` is the ratio at which the
   bone sorted by decreasing ``r`` reaches ``fraction`` of the bone volume. The bone volume is counted per
   phase (:func:`~vertebrafe.post.metrics.tissue_strain_ratios`): a cell that a cement or rim surface cuts
   adds each of its bone phases (remaining cancellous bone, compacted rim) with that phase's volume and
   its own yield strain, the cement phase none (it is not bone), whatever the cell's tag; every other
   bone cell adds its volume and ratio as before.
2. **Apparent-strain (0.2 %) strength** -- the force at which the vertebra's apparent strain
   (height change / height) reaches ``apparent_yield`` (default 0.2 %). (The "R.Force (0.2 %)" column of
   the VerSe19 benchmark tables is not this force: it equals the stiffness times 0.2 mm for every model;
   compare it with ``stiffness x 0.2`` of :func:`vertebra_strength`.)

**Factor of risk** (the published kind: applied load / strength, Bouxsein 2006; fracture threshold 1,
transition zone 1 +/- 0.2, Keaveny & Bouxsein 2008) needs the strength measured the way the published
thresholds were: the vertebra alone between rigid plates (:func:`vertebra_strength`: the vertebra is cut
from the segment, moved to its local frame, its inferior endplate fixed and its superior endplate tied
to a rigid plate pushed down, rotations held, sideways translation free). ``Result`` reports it as
``factor_of_risk = compression / plate_strength_yield`` per vertebra (its moments are not included).

**Overload index** (:func:`strength_rows`, in situ): the same two criteria evaluated in the segment
solve, where each vertebra is loaded through its discs with the load case's moments:
``overload_index_yield = 1 / lambda*`` and ``overload_index_apparent = |apparent strain| / 0.002``, with
the in-situ "strengths" ``strength_yield = lambda* x compression`` and ``strength_apparent``. Disc
loading concentrates strain under the nucleus, so the yield-volume criterion is reached at a far lower
load than between plates (an intact osteoporotic vertebra in relaxed standing can show an index near or
above 1): it is a **comparison measure** between cases of the same model (treatment vs untreated, level
vs level), not a fracture predictor, and no published threshold applies to it.

**With a rest state** (a nucleus pre-pressure, :mod:`vertebrafe.swelling`) every strength is that of the
load's increment from the rest state, the lying subject whose swollen discs carry no external load. The
in-situ rows scale the increment only (strain ``rest + lambda * (strain - rest)``, :func:`affine_yield_scale`;
the apparent strain is measured from the rest state). The strengths between plates and the pushover are
those of the vertebra alone, which carries no pre-stress (the swelling stress is in the nucleus), so they and
the factor of risk do not depend on the pre-pressure: the rest state is self-equilibrated (the forces across
every level sum to zero, :func:`vertebrafe.post.posterior.level_forces`), so the compression a vertebra
carries is the applied load with or without it (``tests/test_swelling.py``). The first-yield factors of the
cells a cement or rim surface cuts (:mod:`vertebrafe.clinical.firstyield`) are derived for axial compression
and applied to the in-situ total strain, rest state included, as to any in-situ strain: an approximation
there, exact for the plate test.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..materials import YIELD_STRAIN_COMPRESSION, YIELD_STRAIN_TENSION
from .metrics import (BONE_REGIONS, body_cells, tissue_strain_ratios, tissue_volumes, tissue_yield_factors,
                      vertebra_geometry)
from .plate import plate_test
from .pushover import Pushover, pushover

__all__ = ["STRENGTH_CRITERIA", "DEFAULT_FRACTION", "APPARENT_YIELD", "yield_scale", "strength_rows", "vertebra_strength",
           "VertebraStrength", "plate_rows", "vertebra_alone", "vertebra_pushover"]

DEFAULT_FRACTION = 0.02
#: Strength criteria of the headline factor of risk: the linear yield-volume estimate (:func:`vertebra_strength`)
#: or the pushover (limit load of elastic-perfectly-plastic cells; :func:`vertebra_pushover`).
STRENGTH_CRITERIA = ("yield-volume", "pushover")
APPARENT_YIELD = 0.002


def _check(fraction, yield_compression, yield_tension, apparent_yield=APPARENT_YIELD):
    for name, v, lo, hi in (("fraction", fraction, 0.0, 1.0), ("yield_compression", yield_compression, 0.0, 0.1),
                            ("yield_tension", yield_tension, 0.0, 0.1), ("apparent_yield", apparent_yield, 0.0, 0.1)):
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise InputError(f"{name} = {v!r}; expected a number in ({lo:g}, {hi:g})") from None
        if not (lo < f < hi):
            raise InputError(f"{name} = {v!r}; allowed range ({lo:g}, {hi:g})")


def yield_scale(ratio, volume, fraction=DEFAULT_FRACTION):
    """Load scale ``lambda*`` at which ``fraction`` of the total ``volume (k,)`` has ``lambda * ratio >= 1``.

    ``ratio (k,)`` from :func:`~vertebrafe.post.metrics.strain_ratio`. Returns ``inf`` when no cell is
    strained.
    """
    r = np.asarray(ratio, dtype=float)
    v = np.asarray(volume, dtype=float)
    order = np.argsort(-r, kind="stable")
    c = np.cumsum(v[order]) / v.sum()
    i = int(np.searchsorted(c, fraction - 1e-12))
    i = min(i, r.size - 1)
    rf = r[order][i]
    return math.inf if rf <= 0 else 1.0 / rf


def affine_yield_scale(rest, load, factors, volume, yield_compression, yield_tension, fraction=DEFAULT_FRACTION):
    """Load scale ``lambda*`` at which ``fraction`` of the total ``volume (k,)`` yields under the strain
    ``rest + lambda * load`` (cell strains ``(k, 6)``, tensor shear; ``factors (k,)`` scale each entry's yield
    strains): the :func:`yield_scale` of a model whose load starts from a pre-strained rest state (a nucleus
    pre-pressure), where the strain is affine, not proportional, in the load. The yielded volume is found by
    bisection on ``lambda`` (to 1e-10 relative). ``inf`` when no load scale reaches the fraction.

    An entry's strain ratio (:func:`~vertebrafe.post.metrics.strain_ratio`) is convex in ``lambda`` (the largest
    eigenvalue of ``+-(rest + lambda load)``), so inside the bisection's bracket ``[lo, hi]`` an entry below 1 at
    both ends stays below, and one below 1 at ``lambda = 0`` and at least 1 at ``lo > 0`` stays yielded: each step
    evaluates only the entries still undecided, and finds the yielded set that all entries would give."""
    from ..elasticity import voigt_to_tensor
    from .metrics import strain_ratio

    rest, load = voigt_to_tensor(rest), voigt_to_tensor(load)
    v = np.asarray(volume, dtype=float)
    g = np.asarray(factors, dtype=float)

    def ratios(lam, idx):
        p = np.linalg.eigvalsh(rest[idx] + lam * load[idx])[:, ::-1]
        return strain_ratio(p, yield_compression * g[idx], yield_tension * g[idx])

    def reached(mask):
        return v[mask].sum() / v.sum() >= fraction - 1e-12

    every = np.arange(v.size)
    r0 = ratios(0.0, every)
    if reached(r0 >= 1.0):
        return 0.0
    hi, r_lo, r_hi = 1.0, r0, ratios(1.0, every)
    while not reached(r_hi >= 1.0):
        hi *= 2.0
        if hi > 1e12:
            return math.inf
        r_lo, r_hi = r_hi, ratios(hi, every)
    lo = 0.0 if hi == 1.0 else hi / 2.0
    sure = np.zeros(v.size, bool)                 # yielded everywhere in the bracket
    idx = every
    while True:
        decided = (r0[idx] < 1.0) & (r_lo >= 1.0)
        sure[idx[decided]] = True
        keep = ~decided & ((r_lo >= 1.0) | (r_hi >= 1.0))
        idx, r_lo, r_hi = idx[keep], r_lo[keep], r_hi[keep]
        if not hi - lo > 1e-10 * hi:
            return hi
        mid = 0.5 * (lo + hi)
        r = ratios(mid, idx)
        mask = sure.copy()
        mask[idx] = r >= 1.0
        if reached(mask):
            hi, r_hi = mid, r
        else:
            lo, r_lo = mid, r


def bone_phases(mesh, solution, yield_compression, yield_tension, regions):
    """Bone of ``mesh`` per phase: ``(cells (k,), ratios (k,), volumes (k,) mm^3)``, the entries of
    :func:`~vertebrafe.post.metrics.tissue_strain_ratios` whose tissue is one of ``regions``."""
    cells, codes, vol, ratio = tissue_strain_ratios(mesh, solution.principal_strains, solution.cell_volume,
                                                       yield_compression, yield_tension)
    keep = np.isin(codes, [c for c, n in mesh.tag_names["region"].items() if n in regions])
    return cells[keep], ratio[keep], vol[keep]


def strength_rows(segment, solution, load, fraction=DEFAULT_FRACTION, yield_compression=YIELD_STRAIN_COMPRESSION,
                  yield_tension=YIELD_STRAIN_TENSION, apparent_yield=APPARENT_YIELD, regions=BONE_REGIONS):
    """In-situ rows per vertebra ``(level, "vertebra", metric, value, unit)``: ``load_scale_yield`` (-),
    ``strength_yield`` (N), ``overload_index_yield`` (-), ``strength_apparent`` (N),
    ``overload_index_apparent`` (-); comparison measures, see the module docstring. Strengths are NaN
    without compression (pure moments)."""
    _check(fraction, yield_compression, yield_tension, apparent_yield)
    mesh = segment.mesh
    cells, ratio, vol = bone_phases(mesh, solution, yield_compression, yield_tension, regions)
    lev = mesh.cell_data["level"][cells]
    code = {n: c for c, n in mesh.tag_names["level"].items()}
    F = load.compression
    rows = []
    rest = getattr(solution, "rest", None)
    if rest is not None:          # a pre-strained rest state: the strain is rest + lambda * (strain - rest)
        entries, codes, _ = tissue_volumes(mesh, solution.cell_volume)           # the entries of bone_phases
        keep = np.isin(codes, [c for c, n in mesh.tag_names["region"].items() if n in regions])
        g = tissue_yield_factors(mesh, entries, codes)[keep]
        e0, e1 = rest.cell_strain[cells], solution.cell_strain[cells]
    for v in segment.levels:
        sel = lev == code[v]
        if not sel.any():
            lam = math.nan
        elif rest is None:
            lam = yield_scale(ratio[sel], vol[sel], fraction)
        else:
            lam = affine_yield_scale(e0[sel], e1[sel] - e0[sel], g[sel], vol[sel], yield_compression, yield_tension,
                                     fraction)
        H, dh = vertebra_geometry(segment, v, solution.motion)
        eps = abs(dh / H)
        rows += [
            (v, "vertebra", "load_scale_yield", lam, "-"),
            (v, "vertebra", "strength_yield", lam * F if F > 0 else math.nan, "N"),
            (v, "vertebra", "overload_index_yield", 1.0 / lam if lam > 0 else math.nan, "-"),
            (v, "vertebra", "strength_apparent", apparent_yield * F / eps if (F > 0 and eps > 0) else math.nan, "N"),
            (v, "vertebra", "overload_index_apparent", eps / apparent_yield if F > 0 else math.nan, "-"),
        ]
    return rows


class VertebraStrength(dict):
    """Result of :func:`vertebra_strength` (a dict): ``level``, ``height`` (mm), ``stiffness`` (N/mm),
    ``strength_apparent`` (N, force at the apparent yield strain), ``strength_yield`` (N, Pistoia-type
    estimate under the same platen compression), ``dofs``, ``solve_time`` (s), and ``solution``."""

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k) from None


def vertebra_strength(segment, level, apparent_yield=APPARENT_YIELD, fraction=DEFAULT_FRACTION,
                      yield_compression=None, yield_tension=None, regions=BONE_REGIONS, **solver_options):
    """Linear strength of vertebra ``level`` alone between rigid plates (VerSe19-type set-up).

    The vertebra's cells are extracted from ``segment`` (with their elasticity), moved into its local
    frame (axis = z), the inferior endplate fixed, the superior endplate tied to a rigid plate with
    prescribed axial translation ``-apparent_yield x height`` and zero rotation (sideways translation
    free). ``strength_apparent`` is the plate's axial reaction force; ``strength_yield`` the same load
    scaled to the Pistoia-type criterion (see the module docstring). Yield strains default to the
    segment's MaterialSet values (:data:`vertebrafe.materials.YIELD_STRAIN_COMPRESSION` / ``_TENSION``). Returns a :class:`VertebraStrength`.
    """
    yc, yt = _yield_strains(segment, yield_compression, yield_tension)
    _check(fraction, yc, yt, apparent_yield)
    sub, C, H = vertebra_alone(segment, level)
    delta = apparent_yield * H
    test = plate_test(sub, C, sub.node_sets[f"{level}:inferior"],
                      sub.node_sets[f"{level}:superior"], delta, **solver_options)
    sol, F = test.solution, test.force
    _, ratio, vol = bone_phases(sub, sol, yc, yt, regions)          # Pistoia-type: the vertebra's bone
    lam = yield_scale(ratio, vol, fraction)
    return VertebraStrength(level=level, height=H, stiffness=abs(F) / delta, strength_apparent=abs(F),
                            strength_yield=lam * abs(F), load_scale_yield=lam, dofs=int(sol.info.get("dofs", 0)),
                            solve_time=float(sol.info.get("total_time", math.nan)), solution=sol)


def _yield_strains(segment, yield_compression, yield_tension):
    ms = segment.materials
    yc = float(getattr(ms, "yield_strain_compression", YIELD_STRAIN_COMPRESSION)) if yield_compression is None else yield_compression
    yt = float(getattr(ms, "yield_strain_tension", YIELD_STRAIN_TENSION)) if yield_tension is None else yield_tension
    return yc, yt


def vertebra_alone(segment, level):
    """Body of vertebra ``level`` cut from ``segment`` (posterior elements excluded):
    ``(mesh, C (m, 6, 6) MPa, height mm)``, the mesh moved into
    the vertebra's local frame (axis = z) with its node sets ``{level}:inferior`` / ``:superior``."""
    if segment.elasticity is None:
        raise InputError("segment has no elasticity; build it with bmd=... or attach materials first")
    if level not in segment.levels:
        raise InputError(f"level = {level!r} is not a vertebra of this segment; vertebrae: {list(segment.levels)}")
    mesh = segment.mesh
    mask = body_cells(segment, level)
    sub = mesh.extract(mask)
    R, o = (np.asarray(x, dtype=float) for x in segment.frames[level])
    sub.points = (sub.points - o) @ R                         # local frame: axis = z
    H = float(sub.points[sub.node_sets[f"{level}:superior"], 2].mean()
              - sub.points[sub.node_sets[f"{level}:inferior"], 2].mean())
    return sub, np.asarray(segment.elasticity)[mask], H


def vertebra_pushover(segment, level, yield_compression=None, yield_tension=None, **options):
    """Pushover strength of vertebra ``level`` alone between rigid plates (the set-up of
    :func:`vertebra_strength`): :func:`vertebrafe.post.pushover.pushover` (elastic-perfectly-plastic cells,
    limit load; also the force at the 0.2 % offset); ``options`` go to it and to the solver. Returns its
    :class:`~vertebrafe.post.pushover.Pushover` with ``level`` and ``height`` (mm) added."""
    yc, yt = _yield_strains(segment, yield_compression, yield_tension)
    _check(DEFAULT_FRACTION, yc, yt)
    sub, C, H = vertebra_alone(segment, level)
    res = pushover(sub, C, sub.node_sets[f"{level}:inferior"], sub.node_sets[f"{level}:superior"], H, yc, yt,
                   **options)
    res.update(level=level, height=H)
    return res


def _phase_data(mesh, mask):
    """The fields of the cut cells that :func:`bone_phases` reads, over the cells ``mask`` (a tuple of
    arrays; empty where no surface cuts any of them)."""
    names = ("cement_fraction", "compacted_fraction", "phase_yield_factor")
    fields = tuple(np.asarray(mesh.cell_data[k], dtype=float)[mask] for k in names if k in mesh.cell_data)
    cut = any(np.any(mesh.cell_data[k][mask] > 0) for k in names[:2] if k in mesh.cell_data)
    return fields if cut else ()


def vertebra_key(segment, level):
    """Digest of what :func:`vertebra_strength` of ``level`` depends on in ``segment``: the node coordinates of
    its cells, their elasticity and regions, the level's frame and endplate nodes, and the yield strains of
    the MaterialSet, the damaged zone's yield factors and the phase fractions and yield factors of the
    cells a cement or rim surface cuts. Equal keys (a vertebra that a treatment of another level left alone) give equal
    strengths. Of the region table it holds the names of the codes its cells carry, and the whole table where a
    surface cuts some of them (their phases' tissues are found in it): a treatment of another level that adds a
    tissue to the table (``cement_bone``) leaves the key of an untouched vertebra as it was."""
    from ..fem.model import digest
    mesh, ms = segment.mesh, segment.materials
    mask = body_cells(segment, level)
    region, table, phases = mesh.cell_data["region"][mask], mesh.tag_names["region"], _phase_data(mesh, mask)
    names = sorted(table.items()) if phases else [(int(c), table.get(int(c))) for c in np.unique(region)]
    return digest(f"{level} {names} {getattr(ms, 'yield_strain_compression', None)} "
                  f"{getattr(ms, 'yield_strain_tension', None)}", mesh.points[mesh.cells[mask]], segment.elasticity[mask],
                  region, np.asarray(mesh.cell_data.get("yield_factor", np.ones(mesh.n_cells)), dtype=float)[mask],
                  *phases,
                  *(np.asarray(x, dtype=float) for x in segment.frames[level]),
                  *(mesh.points[mesh.node_sets[f"{level}:{side}"]] for side in ("superior", "inferior")))


#: Plate strengths kept in a :func:`plate_rows` cache at most (the oldest are dropped).
CACHED_STRENGTHS = 64


def plate_rows(segment, load, levels=None, fraction=DEFAULT_FRACTION, yield_compression=None, yield_tension=None,
               regions=BONE_REGIONS, cache=None, strength="yield-volume", **solver_options):
    """Rows per vertebra from :func:`vertebra_strength`: ``plate_stiffness`` (N/mm), ``plate_strength_yield``
    (N), ``plate_strength_apparent`` (N), with ``strength="pushover"`` also ``plate_strength_pushover`` (N,
    :func:`vertebra_pushover`), and the headline ``factor_of_risk`` (-, ``load.compression`` over the
    strength of the chosen criterion: ``plate_strength_yield`` or ``plate_strength_pushover``; NaN without
    compression). ``strength``: one of :data:`STRENGTH_CRITERIA`; the yield-volume criterion stops at the
    first local yield (see :mod:`vertebrafe.post.pushover` for cemented vertebrae). One solve (pushover:
    10-50) of each vertebra alone; ``cache`` (a dict kept by the caller, or a study's
    :class:`vertebrafe.io.studydir.StrengthFiles`, which its worker processes share) holds the strengths
    (without their solutions, as plain dicts) by :func:`vertebra_key`: they do not depend on the load, so
    several load cases of one segment, or cases that treat another level, solve each vertebra once."""
    if strength not in STRENGTH_CRITERIA:
        raise InputError(f"strength = {strength!r}; allowed: {list(STRENGTH_CRITERIA)}")
    levels = list(segment.levels) if levels is None else list(levels)
    F = load.compression
    rows = []

    def cached(key, compute, kind):
        hit = None if cache is None else cache.get(key)
        if hit is None:
            hit = compute()
            if cache is not None:
                cache[key] = {k: x for k, x in hit.items() if k != "solution"}
                while len(cache) > CACHED_STRENGTHS:
                    cache.pop(next(iter(cache)))
        return kind(hit)

    for v in levels:
        key = None if cache is None else (vertebra_key(segment, v), fraction, yield_compression, yield_tension,
                                          tuple(regions), tuple(sorted(solver_options.items())))
        vs = cached(key, lambda: vertebra_strength(segment, v, fraction=fraction, yield_compression=yield_compression,
                                                   yield_tension=yield_tension, regions=regions, **solver_options),
                    VertebraStrength)
        rows += [(v, "vertebra", "plate_stiffness", vs.stiffness, "N/mm"),
                 (v, "vertebra", "plate_strength_yield", vs.strength_yield, "N"),
                 (v, "vertebra", "plate_strength_apparent", vs.strength_apparent, "N")]
        S = vs.strength_yield
        if strength == "pushover":
            S = cached(None if key is None else ("pushover",) + key,
                       lambda: vertebra_pushover(segment, v, yield_compression=yield_compression,
                                                 yield_tension=yield_tension, **solver_options), Pushover).strength
            rows.append((v, "vertebra", "plate_strength_pushover", S, "N"))
        rows.append((v, "vertebra", "factor_of_risk", F / S if F > 0 else math.nan, "-"))
    return rows
