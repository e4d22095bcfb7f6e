"""The swelling (osmotic) pressure of the nucleus: the pre-stressed rest state of a segment's discs.

The nucleus of a healthy disc imbibes water until the annulus and the endplates, stretched by it, hold it: at
rest (lying, no muscle load) it carries a pressure, 0.10 MPa lying prone and 0.12 MPa lying laterally at L4-L5
in vivo (Wilke et al. 1999; docs/materials.md). ``segment(..., nucleus_prepressure=p)`` asks for this state.

The model: the imbibed fluid is an eigen-stress ``-s_d I`` in the nucleus cells of disc ``d`` (a solid nucleus,
:attr:`vertebrafe.fem.Model.initial_stress`) or an initial pressure ``s_d`` of its fluid cavity (a fluid nucleus,
:class:`vertebrafe.cavity.FluidCavity`). Its load ``-int B^T sigma_0 dV`` pushes the annulus and endplates out,
so they are pre-tensioned, and the nucleus, nearly incompressible, relieves most of ``s_d`` by expanding: its
pressure is ``s_d`` minus the relief of its surroundings' compliance, a few per cent of ``s_d`` in a lumbar disc
(``tests/test_swelling.py``). So ``s_d`` is solved for: the rest state is the unloaded model (the load's supports,
no forces, moments or prescribed motion) whose mean nucleus pressure equals ``p`` in every disc
(:func:`rest_state`), to :data:`PRESSURE_RTOL`. Where one-sided springs (fibres, ligaments, facets) take part the
pressure is not proportional to ``s_d`` (fibres tighten as the disc swells), so ``s_d`` comes from secant steps,
one active-set solve each. Each step starts from the combination of the steps before whose swelling stresses come
closest to its own (least squares): with the springs' states kept the unloaded model is linear in the ``s_d``,
so once the steps span them (two steps for two discs) the start is the solution and the step costs no solve
(:meth:`vertebrafe.fem.Model.solve`'s ``start``); before, it is a close start for AMG-CG. The first step starts
from every one-sided spring slack or open rather than in its initial state (all active): the swelling disc pushes
the vertebrae apart, opens the facets and leaves most ligaments slack (T12-L2 with posterior elements: at rest 0
of 54 facet springs closed, 140 of 420 ligament springs taut), so AMG-CG's active set moves less (2 mm: 66 CG
iterations in 5 active-set steps instead of 98 in 15; the direct solver starts from its reference state either
way, as a segment's parts are held by its discs, not by springs alone; benchmarks/README.md, "The rest state
from slack springs, the load from the rest state"). The started steps alone (d357c2d): T12-L2 with posterior
elements, relaxed standing, AMG-CG at 2 mm, 36.0 and 37.3 s of process CPU for the whole ``simulate`` against
77.2 and 59.2 s when every step started from zero (alternating runs under load; benchmarks/README.md, "The rest
state's steps started from the steps before"); the direct solver saves two partial solves per step.

A loaded solve then carries the same ``s_d`` together with the load (one solve; the fibres' active set sees both;
:func:`vertebrafe.simulate` starts it from the rest state's displacements and springs' states) and measures its
motions from the rest state (:attr:`vertebrafe.fem.Solution.rest`): the segment's geometry is
the swollen one at rest, as it is measured in vivo. Stresses, spring forces and the nucleus pressure are totals,
the pre-stress included.
"""
from __future__ import annotations

import numpy as np

from .anatomy import REGION_CODES
from .errors import ConvergenceError, InputError
from .post.metrics import nucleus_pressure

__all__ = ["PRESSURE_RTOL", "MAX_STEPS", "EXPECTED_SOLVES", "nucleus_cells", "nucleus_pressures", "pre_stress", "rest_state"]

#: Relative accuracy of the rest pressure of every disc.
PRESSURE_RTOL = 1e-6
#: Solves allowed to find the swelling stresses.
MAX_STEPS = 12
#: Calibration: what a rest state usually costs AMG-CG, in solves of the load (:attr:`vertebrafe.fem.Setup.solves`,
#: which ``solver="auto"`` weighs; the direct solver pays partial solves with its factor). It takes 4 steps (T12-L2
#: with posterior elements at 6, 3, 2 and 1.5 mm); the first, from zero and from every one-sided spring slack,
#: costs about 0.9-1.3 loads' CG iterations, the second, from the first scaled, 0.7-0.95, and the later ones none
#: where two steps span the discs' swelling stresses (T12-L2 at 6 mm: 61 + 44 + 0 + 0 CG iterations against the
#: load's 53, at 3 mm 104 + 81 against 111, at 2 mm 66 + 49 against 52; the load starts from the rest state;
#: with every spring active at the start and the load from zero, 101 + 44 against 68 at 6 mm and 98 + 49
#: against 61 at 2 mm; before d357c2d each step started from zero: 101 + 3 x 44).
EXPECTED_SOLVES = 2


def nucleus_cells(segment):
    """``{disc: cell indices}`` of the nucleus of every disc of ``segment``."""
    mesh = segment.mesh
    code = {n: c for c, n in mesh.tag_names["level"].items()}
    nucleus = mesh.cell_data["region"] == REGION_CODES["nucleus"]
    return {d: np.flatnonzero(nucleus & (mesh.cell_data["level"] == code[d])) for d in segment.discs}


def nucleus_pressures(segment, solution):
    """``{disc: MPa}``: the nucleus pressure of every disc as the metrics report it (the volume mean of
    ``-trace(sigma) / 3`` over its cells, plus the fluid's with a fluid nucleus)."""
    cavities = {c.name: c for c in solution.model.springs if hasattr(c, "pressure")}
    return {d: nucleus_pressure(solution, cells, cavities.get(f"{d}:nucleus"))[0]
            for d, cells in nucleus_cells(segment).items() if cells.size}


def pre_stress(model, segment, stress):
    """Put the swelling stresses ``stress {disc: MPa}`` into ``model``: the fluid cavity's initial pressure of a
    fluid nucleus, else the eigen-stress ``-s I`` of the nucleus cells (other cells keep theirs)."""
    cavities = {c.name: c for c in model.springs if hasattr(c, "pressure")}
    sigma = None
    for d, cells in nucleus_cells(segment).items():
        cavity = cavities.get(f"{d}:nucleus")
        if cavity is not None:
            cavity.initial_pressure = stress[d]
            continue
        if sigma is None:
            sigma = (np.zeros((segment.mesh.n_cells, 6)) if model.initial_stress is None
                     else model.initial_stress.copy())
        sigma[cells, :3] = -stress[d]
    if sigma is not None:
        model.initial_stress = sigma
    return model


def _start(s, history, discs):
    """The start of the solve with the swelling stresses ``s``: the combination of the steps before whose stresses
    come closest to ``s`` (least squares), ``(displacement, plate motion)``, or None at the first step. With the
    springs' states of those steps it is the solution itself once they span ``s`` (the model is then linear in
    the swelling stresses)."""
    if not history:
        return None
    S = np.array([[h[0][d] for h in history] for d in discs])
    c = np.linalg.lstsq(S, np.array([s[d] for d in discs]), rcond=None)[0]
    return tuple(np.tensordot(c, np.array([h[k] for h in history]), axes=1) for k in (2, 3))


def rest_state(segment, pressure, unloaded, solve):
    """The swelling stresses and the rest state: ``({disc: s_d MPa}, Solution)`` with the nucleus pressure of
    every disc equal to ``pressure`` (MPa) to :data:`PRESSURE_RTOL`.

    unloaded : Model, the model of ``segment`` with the supports of the load and no load; every step solves it
        with its swelling stresses set in place (:func:`pre_stress`), its one-sided springs starting slack or open
        in the first step and from the active set of the step before in the others; the returned Solution's model
        carries the last ones.
    solve : callable ``(Model, start) -> Solution``; ``start``: None or a guess of the solution
        (:meth:`vertebrafe.fem.Model.solve`), the combination of the steps before (:func:`_start`).
    The first step takes ``s_d = pressure``, the second scales it by the pressure found (exact for a linear model
    up to the small coupling between discs), later ones are secant steps per disc. Each step's pressures are
    computed from the nucleus cells' stresses alone (:meth:`~vertebrafe.fem.Solution.cell_stress_of`). Raises ConvergenceError if the
    pressures are not met in :data:`MAX_STEPS` solves, InputError if ``segment`` has no nucleus cells."""
    discs = [d for d, cells in nucleus_cells(segment).items() if cells.size]
    if not discs:
        raise InputError(f"nucleus_prepressure = {pressure!r} MPa: the segment ({'-'.join(segment.levels)}) has no "
                         "nucleus cells to carry it; give 0 for a model without a disc nucleus")
    s = {d: float(pressure) for d in discs}
    for springs in unloaded.springs:        # the first step from every one-sided spring slack or open
        if springs.kind != "linear":
            springs.active = np.zeros(springs.size, bool)
    history = []
    for step in range(1, MAX_STEPS + 1):
        sol = solve(pre_stress(unloaded, segment, s), _start(s, history, discs))
        p = nucleus_pressures(segment, sol)
        history.append((dict(s), p, sol.displacement, sol._plate_motion))
        if all(abs(p[d] - pressure) <= PRESSURE_RTOL * pressure for d in discs):
            sol.info["swelling_steps"] = step
            return s, sol
        for d in discs:
            if len(history) == 1 or history[-2][1][d] == p[d]:
                s[d] = s[d] * pressure / p[d] if p[d] > 0 else 2.0 * s[d]
            else:
                s0, p0 = history[-2][0][d], history[-2][1][d]
                s[d] = s[d] + (pressure - p[d]) * (s[d] - s0) / (p[d] - p0)
    raise ConvergenceError(f"the swelling stresses of the nuclei did not reach the rest pressure {pressure:g} MPa in "
                           f"{MAX_STEPS} solves (pressures of the last: "
                           f"{ {d: round(v, 6) for d, v in history[-1][1].items()} })", iterations=MAX_STEPS)
