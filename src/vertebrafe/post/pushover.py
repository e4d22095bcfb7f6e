"""Pushover (limit) strength of a body between rigid plates: elastic-perfectly-plastic cells by secant
iterations, strength = the limit load of the force-apparent strain curve.

Why: the linear yield-volume estimate (:func:`~vertebrafe.post.strength.vertebra_strength`) stops at the
first local yield. That is a fair strength for a bone of one tissue, but not for a composite: a stiff
cement bolus in series with weak (damaged) bone yields that bone earlier, although after it yields the
load flows around it and the cement carries more. Cadaver tests find augmented vertebrae at least as
strong as the fracture they treat (Belkoff et al. 2001, Spine 26:151; docs/validation.md). The plastic
limit load has the property the linear criterion lacks: by the lower-bound theorem of limit analysis, a
body whose material is nowhere weaker (cement where there was bone, with a cement strength above the
bone's) cannot have a lower limit load.

Material law (deformation theory, monotonic loading): every cell is linear up to its yield strain and
carries a constant stress beyond, as the secant stiffness ``s C`` with ``s = min(1, 1 / r)`` where ``r``
is the cell's strain ratio (:func:`~vertebrafe.post.metrics.strain_ratio`: largest compressive or
tensile principal strain over its yield strain). Bone regions use the bone yield strains (Morgan &
Keaveny 2001, 0.77 % / 0.70 %, the MaterialSet's); cement and cement-bone composite cells use
:data:`CEMENT_STRENGTH` over their own axial modulus. A cell that a cement or rim surface cuts yields with
its first phase (its ``yield_factor``, :mod:`vertebrafe.clinical.firstyield`) and then carries that stress:
exact where the phases lie in series along the load (they share the stress), a lower bound where they lie
side by side (the others could carry more), so by the lower-bound theorem the limit load is not raised
by the mixing of a cut cell. Its yielded volume is that phase's volume only: in the capped cell the other
phases keep the stresses they had when it yielded, below their own yield (``yielded_fraction``, with the
phase volumes of :func:`~vertebrafe.post.metrics.tissue_volumes`). At each plate displacement the secant factors are
found by the fixed-point (Kachanov) iteration: solve with ``s C``, update ``s`` from the new strains,
until the plate force changes by less than ``rtol_force``. The total-strain law is path independent
under monotonic loading, so each displacement starts from the previous one's factors.

Strength: the **limit load**, the force on the plateau of the force-apparent strain curve (evaluated on
:data:`STRAIN_GRID` until its slope falls below :data:`PLATEAU_SLOPE` of the initial stiffness). It is the
model's counterpart of the ultimate (maximum) load of a cadaver test (Belkoff et al. 2001 report the
maximum load on recompression) and the quantity the lower-bound theorem orders. The force at the 0.2 %
offset of the same curve (the yield convention of bone mechanics, e.g. Morgan & Keaveny 2001) is reported
as ``strength_offset`` but is not monotone in the material: a stiffer body meets the offset line earlier
on a curve that keeps rising. Damage beyond yield (softening) is not modelled: the curve rises to a plateau
and stays there.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConvergenceError, InputError
from ..materials import CEMENT_STRENGTH
from .metrics import CEMENT_REGIONS, cell_yield_strains, strain_ratio, tissue_volumes, tissue_yield_factors
from .plate import plate_test

__all__ = ["CEMENT_STRENGTH", "OFFSET", "STRAIN_GRID", "PLATEAU_SLOPE", "pushover", "Pushover"]

#: Offset of the strength definition (apparent strain).
OFFSET = 0.002
#: Apparent strains (-) at which the force-strain curve is evaluated until it is flat.
STRAIN_GRID = (0.004, 0.006, 0.008, 0.010, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05)
#: The curve is flat (the limit load reached) where its slope between grid points falls below this fraction
#: of the initial stiffness.
PLATEAU_SLOPE = 0.05


class Pushover(dict):
    """Result of :func:`pushover` (a dict): ``strength`` (N, the limit load: force on the plateau) at
    ``strain_at_strength`` (-), ``strength_offset`` (N, at the 0.2 % offset) at ``strain_at_offset``,
    ``stiffness`` (N/mm, initial), ``first_yield_strain`` (-, apparent strain of the first yield),
    ``curve`` (``(k, 2)`` apparent strain (-), force (N)), ``yielded_fraction`` (-, volume share of the
    yielded material at the limit load: of a yielded cell the phase it yields with, module docstring),
    ``cement_yielded`` (bool: that phase is cement in some yielded cell), ``solves`` (linear solves used) and
    ``solution`` (the last solve)."""

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k) from None


def _cell_yield(mesh, C, yc, yt):
    """Per-cell yield strains ``(m,)`` in compression and tension: bone values times the cell field
    ``yield_factor`` (:func:`~vertebrafe.post.metrics.cell_yield_strains`: the damaged zone's factor, and
    for the cells a cement or cavity surface cuts the factor that makes them yield with their first
    phase, :mod:`vertebrafe.clinical.firstyield`); cement cells without a ``cement_fraction`` of their
    own (tagged otherwise than by the clinical operations) get :data:`CEMENT_STRENGTH` / E (E along the
    cell's z axis from the compliance)."""
    m = mesh.n_cells
    ycs, yts = (np.array(v, dtype=float) for v in cell_yield_strains(mesh, float(yc), float(yt)))
    names = mesh.tag_names.get("region", {})
    codes = [c for c, n in names.items() if n in CEMENT_REGIONS]
    cem = np.isin(mesh.cell_data["region"], codes) if codes else np.zeros(m, bool)
    frac = np.asarray(mesh.cell_data.get("cement_fraction", np.zeros(m)))
    own = cem & (frac <= 0.0)
    if own.any():
        E = 1.0 / np.linalg.inv(C[own])[:, 2, 2]
        ycs[own] = yts[own] = CEMENT_STRENGTH / E
    return ycs, yts


def _first_phases(mesh, vol):
    """Phase entries of :func:`~vertebrafe.post.metrics.tissue_volumes` ``(cells, cement, volumes, first)``:
    ``cement`` the entry is a cement tissue, ``first`` it is the phase its cell yields with (its factor is
    the cell's ``yield_factor``; every uncut cell's entry). A mesh without region tags: one entry a cell."""
    if "region" not in mesh.cell_data:
        return np.arange(mesh.n_cells), np.zeros(mesh.n_cells, bool), vol, np.ones(mesh.n_cells, bool)
    cells, codes, w = tissue_volumes(mesh, vol)
    first = tissue_yield_factors(mesh, cells, codes) <= cell_yield_strains(mesh, 1.0, 1.0)[0][cells]
    cement = np.isin(codes, [c for c, n in mesh.tag_names.get("region", {}).items() if n in CEMENT_REGIONS])
    return cells, cement, w, first


def pushover(mesh, C, fixed, loaded, height, yield_compression, yield_tension, *, rtol_force=0.002,
             max_iterations=15, plateau=PLATEAU_SLOPE, **solver_options):
    """Pushover of ``mesh`` (elasticity ``C (m, 6, 6)`` MPa, axis z) between rigid plates: ``fixed`` and
    ``loaded`` node indices, ``height`` (mm) for the apparent strain. See the module docstring.

    ``rtol_force``: convergence of the secant iteration (relative force change); ``max_iterations``: its
    limit per displacement (ConvergenceError beyond); ``plateau``: the slope, as a fraction of the initial
    stiffness, below which the curve counts as flat. Returns a :class:`Pushover`.
    """
    if not (height > 0):
        raise InputError(f"height = {height!r} mm; must be > 0")
    if not (0.0 < rtol_force < 0.1):
        raise InputError(f"rtol_force = {rtol_force!r}; allowed range (0, 0.1)")
    if not (0.0 < plateau < 1.0):
        raise InputError(f"plateau = {plateau!r}; allowed range (0, 1) (fraction of the initial stiffness)")
    if not (isinstance(max_iterations, int) and max_iterations >= 2):
        raise InputError(f"max_iterations = {max_iterations!r}; allowed integers >= 2")
    from ..fem import Setup
    from ..threads import one_blas_thread

    C = np.asarray(C, dtype=float)
    ycs, yts = _cell_yield(mesh, C, yield_compression, yield_tension)
    vol = mesh.cell_volumes()
    solves = [0]
    last = {}
    # every solve has the same mesh, constraints and pattern: one Setup keeps the sparsity pattern, and on one
    # BLAS thread each PARDISO factorisation keeps the previous one's ordering and symbolic analysis
    # (:class:`~vertebrafe.fem.solvers.PardisoCholesky`)
    options = {"setup": Setup(), **solver_options}

    def solve(eps, s):
        with one_blas_thread():
            t = plate_test(mesh, C * s[:, None, None], fixed, loaded, eps * height, **options)
        solves[0] += 1
        last["solution"] = t.solution
        return t.force, strain_ratio(t.solution.principal_strains, ycs, yts)

    # linear reference: force and strain ratio per unit apparent strain
    F1, r1 = solve(OFFSET, np.ones(mesh.n_cells))
    k0 = F1 / OFFSET                                    # N per unit apparent strain
    r1 = r1 / OFFSET
    first_yield = 1.0 / float(r1.max())                 # apparent strain of the first yield anywhere

    def at(eps, base):
        """(force, strain ratio) at apparent strain ``eps``, starting from the solved state ``base`` =
        (apparent strain, strain ratio): its strains scaled to ``eps`` predict the secant factors."""
        if eps <= first_yield:
            return k0 * eps, r1 * eps
        s = np.minimum(1.0, 1.0 / np.maximum(base[1] * (eps / base[0]), 1e-300))
        F_prev = math.nan
        for _ in range(max_iterations):
            F, r = solve(eps, s)
            if abs(F - F_prev) <= rtol_force * abs(F):
                return F, r
            F_prev, s = F, np.minimum(1.0, 1.0 / np.maximum(r, 1e-300))
        raise ConvergenceError(f"pushover: the secant iteration at apparent strain {eps:.4g} did not settle within "
                               f"{max_iterations} solves (force change > {rtol_force:g}); raise max_iterations")

    curve = [(0.0, 0.0, None)]
    if first_yield > 0.5 * OFFSET:
        curve.append((first_yield, k0 * first_yield, r1 * first_yield))
    else:                                            # yield far before the first grid point: start there
        e = 0.5 * OFFSET
        curve.append((e, *at(e, (first_yield, r1 * first_yield))))
    offset = None
    for eps in (OFFSET,) + STRAIN_GRID:
        if eps <= curve[-1][0]:
            continue
        e0, F0, r0 = curve[-1]
        F, r = at(eps, (e0, r0))
        curve.append((eps, F, r))
        if offset is None and F - k0 * (eps - OFFSET) <= 0.0:          # the offset line is crossed
            g0, g1 = F0 - k0 * (e0 - OFFSET), F - k0 * (eps - OFFSET)
            w = g0 / (g0 - g1)
            offset = (F0 + w * (F - F0), e0 + w * (eps - e0))
        if offset is not None and (F - F0) / (eps - e0) < plateau * k0:
            break
    else:
        raise ConvergenceError(f"pushover: no plateau up to apparent strain {STRAIN_GRID[-1]:g} (slope still above "
                               f"{plateau:g} of the initial stiffness); check the materials")
    peak = max(range(1, len(curve)), key=lambda i: curve[i][1])      # the plateau, or a peak before it
    eps_l, F_l, r_l = curve[peak]
    cells, cement, w, first = _first_phases(mesh, vol)
    yielded = first & (r_l[cells] > 1.0)             # a yielded cell: the phase it yields with
    return Pushover(strength=float(F_l), strain_at_strength=float(eps_l), strength_offset=float(offset[0]),
                    strain_at_offset=float(offset[1]), stiffness=float(k0 / height), first_yield_strain=first_yield,
                    curve=np.array([c[:2] for c in curve]), yielded_fraction=float(w[yielded].sum() / w.sum()),
                    cement_yielded=bool(np.any(yielded & cement)), solves=solves[0], solution=last["solution"])
