"""One load case on one segment: build the FE model, solve, post-process.

>>> import vertebrafe as vf
>>> from vertebrafe.simulate import simulate
>>> seg = vf.segment("L3-L4", bmd=120.0, element_size=6.0)       # coarse: a quick example
>>> res = simulate(seg, vf.loads.preset("relaxed_standing"))
>>> res.value("pressure", level="L3-L4", region="nucleus") > 0   # MPa, nucleus pressure under 500 N
True
>>> sorted(res.save(tmp_path))                                    # tmp_path: a folder
['case', 'csv', 'json', 'vtu']
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from functools import cached_property

import numpy as np

from ._version import __version__
from .errors import InputError, ResolutionWarning
from .fem.model import Setup, digest
from .materials import YIELD_STRAIN_COMPRESSION, YIELD_STRAIN_TENSION
from .loads import Load, apply, preset, resultant
from . import plausibility as _p
from . import swelling as _swelling
from .post import metrics as _m
from .post import strength as _s
from .post import posterior as _post
from .post.compare import compare as _compare
from .post.compare import treated_level

__all__ = ["simulate", "build_model", "prestressed_model", "Result", "Setup"]


def _yield_strains(segment, yield_compression, yield_tension):
    ms = segment.materials
    yc = float(getattr(ms, "yield_strain_compression", YIELD_STRAIN_COMPRESSION)) if yield_compression is None else float(yield_compression)
    yt = float(getattr(ms, "yield_strain_tension", YIELD_STRAIN_TENSION)) if yield_tension is None else float(yield_tension)
    for name, v in (("yield_compression", yc), ("yield_tension", yt)):
        if not (0.0 < v < 0.1):
            raise InputError(f"{name} = {v!r}; allowed range (0, 0.1)")
    return yc, yt


def simulate(segment, load, *, case=None, yield_compression=None, yield_tension=None, fraction=_s.DEFAULT_FRACTION,
             bone_regions=_m.BONE_REGIONS, formulation="bbar", user_loads=None, factor_of_risk=True,
             strength="yield-volume", setup=None, **solver_options):
    """Solve ``load`` on ``segment`` and post-process it.

    Parameters
    ----------
    segment : vertebrafe.Segment
        With per-cell ``elasticity`` (build it with ``bmd=`` or ``materials=``); may carry a clinical
        ``history``. With a ``nucleus_prepressure`` the rest state is solved first (:mod:`vertebrafe.swelling`;
        ``Result.solution.rest``, kept in ``setup``; the load's solve starts from its displacements and springs'
        states): stresses include it, motions are measured from it, and the metrics add ``rest_pressure`` and
        ``swelling_stress`` (MPa) per nucleus.
    load : Load or str, or a list of them
        A :class:`~vertebrafe.loads.Load` or the name of a preset (:data:`vertebrafe.loads.PRESETS`). A list
        solves every load on the same model with one set-up (the stiffness matrix is assembled and
        factorised, or its AMG hierarchy built, once; :class:`vertebrafe.fem.Setup`) and returns a list of
        results.
    case : str, optional
        Label of the case in the metric tables (default: the load's name or ``"case"``); a list of labels
        for a list of loads.
    yield_compression, yield_tension : float, optional
        Yield strains (-) for yield fractions and strength; default the MaterialSet's (0.0077 / 0.0070,
        Morgan & Keaveny 2001).
    fraction : float
        Bone-volume fraction of the yield-volume strength criterion (default 0.02, Pistoia 2002).
    bone_regions : tuple of str
        Regions counted as bone.
    formulation : str
        FE formulation (default ``"bbar"``: the nucleus is nearly incompressible).
    user_loads : callable, optional
        Hook for loads of one's own: called as ``user_loads(model, segment)`` after ``load`` is applied and
        before the solve, with the :class:`~vertebrafe.Model` (``add_force``, ``add_traction``,
        ``add_pressure``, ``add_body_force``, ``rigid_plate(...).load(...)``, ``fix``); its return value is
        ignored. The resultant of everything applied is recorded (``Result.record()["load_applied"]``).
    factor_of_risk : bool
        Add the plate strength and the factor of risk of every vertebra to the metrics (one extra solve
        of each vertebra alone between rigid plates, see :mod:`vertebrafe.post.strength`).
    strength : {"yield-volume", "pushover"}
        Strength of the factor of risk: the linear yield-volume estimate (default; one solve per vertebra;
        first local yield) or the pushover strength (limit load of elastic-perfectly-plastic cells; about
        10-50 solves per vertebra; :mod:`vertebrafe.post.pushover`), the one to compare treatments of a
        vertebra by.
    setup : vertebrafe.fem.Setup, optional
        Kept by the caller across calls on the same segment with different loads: the stiffness set-up
        (factorisation or AMG hierarchy) of the first call is reused by the others (anything that changes
        the model, such as another segment, makes a new set-up), and so are the plate strengths of every
        vertebra whose mesh and materials are unchanged (``setup.derived``). A list of loads shares one
        set-up without it.
    **solver_options
        Passed to :meth:`vertebrafe.Model.solve` (``solver="auto"|"direct"|"amg"``, ``rtol``, ``maxiter``).

    Returns
    -------
    Result, or a list of Result for a list of loads
    """
    options = dict(yield_compression=yield_compression, yield_tension=yield_tension, fraction=fraction,
                   bone_regions=bone_regions, formulation=formulation, user_loads=user_loads,
                   factor_of_risk=factor_of_risk, strength=strength)
    if strength not in _s.STRENGTH_CRITERIA:
        raise InputError(f"strength = {strength!r}; allowed: {list(_s.STRENGTH_CRITERIA)}")
    if setup is not None and not isinstance(setup, Setup):
        raise InputError(f"setup = {setup!r}; expected a vertebrafe.fem.Setup or None")
    if not isinstance(load, (list, tuple)):
        strengths = None if setup is None else setup.derived.setdefault("plate strengths", {})
        return _simulate(segment, load, case, setup, options, solver_options, strengths)
    if not load:
        raise InputError("load = []; give a Load, a preset name or a non-empty list of them")
    cases = [None] * len(load) if case is None else case
    if isinstance(cases, str) or len(cases) != len(load):
        raise InputError(f"case = {case!r}; expected None or a list of {len(load)} labels, one per load")
    setup = Setup() if setup is None else setup
    _expect_solves(setup, segment, len(load))
    strengths = setup.derived.setdefault("plate strengths", {})    # they do not depend on the load
    return [_simulate(segment, ld, c, setup, options, dict(solver_options), strengths) for ld, c in zip(load, cases)]



def _expect_solves(setup, segment, loads):
    """Raise ``setup.solves`` (:class:`~vertebrafe.fem.Setup`) to the solves of ``loads`` loads on ``segment`` and
    its nucleus pre-pressure's rest state (:data:`vertebrafe.swelling.EXPECTED_SOLVES`), which ``solver="auto"``
    weighs."""
    rest = _swelling.EXPECTED_SOLVES if getattr(segment, "nucleus_prepressure", 0.0) else 0
    setup.solves = max(setup.solves, loads + rest)


def _simulate(segment, load, case, setup, options, solver_options, strengths=None):
    """One load case of :func:`simulate`; ``setup``: a :class:`vertebrafe.fem.Setup` and ``strengths``: the
    plate-strength cache, both shared by the loads of one call, or None."""

    yield_compression, yield_tension = options["yield_compression"], options["yield_tension"]
    fraction, bone_regions = options["fraction"], options["bone_regions"]
    formulation, user_loads = options["formulation"], options["user_loads"]
    factor_of_risk = options["factor_of_risk"]
    if isinstance(load, str):
        load = preset(load)
    if not isinstance(load, Load):
        raise InputError(f"load = {load!r}; expected a vertebrafe.loads.Load or a preset name")
    if getattr(segment, "elasticity", None) is None:
        raise InputError("segment has no elasticity; build it with vertebrafe.segment(..., bmd=...) or "
                         "segment.with_materials(...)")
    if load.is_zero:
        raise InputError("load is zero (no compression and no moment); nothing to solve")
    notes = _p.warn(_p.check_inputs(segment, load), stacklevel=3)
    yc, yt = _yield_strains(segment, yield_compression, yield_tension)
    _s._check(fraction, yc, yt)
    solver_options.setdefault("solver", "auto")
    t0 = time.perf_counter()
    if user_loads is not None and not callable(user_loads):
        raise InputError(f"user_loads = {user_loads!r}; expected a function f(model, segment)")
    if getattr(segment, "nucleus_prepressure", 0.0):
        setup = Setup() if setup is None else setup      # the rest state's solves and the load's share one set-up
        _expect_solves(setup, segment, 1)
    kept = setup.derived.get("rest state") if setup is not None else None
    model, applied, rest = prestressed_model(segment, load, formulation, user_loads, setup=setup, **solver_options)
    t1 = time.perf_counter()
    solution = model.solve(**solver_options, setup=setup, start=_from_rest(model, rest))
    solution.rest = rest
    if rest is not None and setup.derived.get("rest state") is not kept:
        solution.info["setup_reused"] = rest.info["setup_reused"]     # the set-up its rest state made or found
    t2 = time.perf_counter()
    res = Result(segment=segment, load=load, solution=solution, applied=applied,
                 case=case or load.name or "case", yield_compression=yc, yield_tension=yt, fraction=fraction,
                 bone_regions=tuple(bone_regions), formulation=formulation, solver_options=dict(solver_options),
                 with_factor_of_risk=bool(factor_of_risk), strength_criterion=options["strength"],
                 strength_cache={} if strengths is None else strengths)
    res.timings = {"model_time": t1 - t0, "fe_time": t2 - t1}
    _ = res.metrics
    res.timings["metrics_time"] = time.perf_counter() - t2
    res.warnings = (notes + _p.warn(_p.check_result(res.metrics, segment), stacklevel=3)
                    + _p.warn(_p.check_resolution(segment), stacklevel=3, category=ResolutionWarning))
    return res


def build_model(segment, load, formulation="bbar", user_loads=None):
    """The FE model :func:`simulate` solves: ``(Model, AppliedLoad)`` with the segment's elasticity and spring
    sets (annulus fibres, fluid nucleus), ``load`` applied (:func:`vertebrafe.loads.apply`) and then
    ``user_loads(model, segment)`` if given, without a nucleus pre-pressure's swelling stresses
    (:func:`prestressed_model` adds them). ``Model.export`` writes it for other solvers."""
    from .fem import Model

    model = Model(segment.mesh, C=segment.elasticity, formulation=formulation)
    model.bodies = segment.vertebra_of_cells()        # the CG of the fibre loop deflates their rigid motions
    for springs in segment.spring_sets():
        model.add_springs(springs)
    applied = apply(model, segment, load)
    if user_loads is not None:
        user_loads(model, segment)
        applied.user_loads = getattr(user_loads, "__qualname__", repr(user_loads))
    return model, applied


def prestressed_model(segment, load, formulation="bbar", user_loads=None, *, setup=None, **solver_options):
    """The FE model :func:`simulate` solves, pre-stress included: ``(Model, AppliedLoad, rest)``.

    :func:`build_model`'s model; with a ``segment.nucleus_prepressure`` the rest state is solved first
    (``solver_options`` and ``setup`` go to its solves, :mod:`vertebrafe.swelling`) and the model carries its
    swelling stresses (:attr:`~vertebrafe.fem.Model.initial_stress` of the nucleus cells, or a fluid cavity's
    initial pressure); ``rest`` is that rest state's Solution, None without a pre-pressure. Its solve is the
    loaded one of :func:`simulate`; ``Model.export`` writes it with the pre-stress (docs/interop.md)."""
    model, applied = build_model(segment, load, formulation, user_loads)
    rest = _rest_state(segment, model, dict(solver_options), setup)
    if rest is not None:
        _swelling.pre_stress(model, segment, rest.info["swelling_stress"])
    return model, applied, rest


def _rest_state(segment, model, solver_options, setup):
    """The rest state of a segment with a nucleus pre-pressure (:mod:`vertebrafe.swelling`), solved on a copy of
    its loaded ``model`` (:func:`build_model`, before the swelling stresses) without the loads, or None without one;
    its ``info["swelling_stress"]`` holds the nuclei's swelling stresses (MPa) and ``info["setup_reused"]`` whether
    its first solve found the set-up in ``setup``. The latest one is kept in ``setup.derived["rest state"]`` for
    the other loads of the same model (mesh, materials, formulation, supports and springs: the key of the set-up
    itself, :func:`~vertebrafe.fem.model.digest`), as the set-up keeps its latest."""
    pressure = float(getattr(segment, "nucleus_prepressure", 0.0) or 0.0)
    if pressure <= 0.0:
        return None

    unloaded = model.copy().remove_loads()
    key = digest(f"rest state {pressure!r}", unloaded._C, unloaded._material, unloaded._form, segment.mesh.points,
                 segment.mesh.cells, unloaded._fixed, *(a for p in unloaded.plates for a in (p.nodes, p.prescribed)),
                 *unloaded._spring_arrays())
    kept = None if setup is None else setup.derived.get("rest state")
    if kept is not None and kept[0] == key:
        return kept[1]
    reused = []

    def solve(model, start):
        sol = model.solve(**solver_options, setup=setup, start=start)
        reused.append(bool(sol.info.get("setup_reused")))
        return sol

    stress, rest = _swelling.rest_state(segment, pressure, unloaded, solve)
    rest.info.update(swelling_stress=stress, setup_reused=reused[0])
    if setup is not None:
        setup.derived["rest state"] = (key, rest)
    return rest


def _from_rest(model, rest):
    """The loaded solve's start: with a rest state, ``model``'s springs take their states at rest and the rest
    displacements are returned as the start (:meth:`vertebrafe.fem.Model.solve`); AMG-CG starts from both, the
    direct solver from its reference. None without a rest state."""
    if rest is None:
        return None
    for springs in model.springs:
        springs.active = rest.spring_active[springs.name].copy()
    return rest.displacement, rest._plate_motion


@dataclasses.dataclass(eq=False)
class Result:
    """A solved load case.

    Attributes
    ----------
    segment, load, solution, applied
        The :class:`~vertebrafe.Segment`, the :class:`~vertebrafe.loads.Load`, the FE
        :class:`~vertebrafe.Solution` and the :class:`~vertebrafe.loads.AppliedLoad` (plate, base nodes).
    case : str
    metrics : pandas.DataFrame
        Tidy table ``case, level, region, metric, value, unit`` (see :mod:`vertebrafe.post.metrics`),
        including the in-situ strength and overload-index rows and, with ``with_factor_of_risk``, the
        plate strength and factor of risk of every vertebra (:mod:`vertebrafe.post.strength`).
    warnings : list of str
        Plausibility messages of the inputs and the result and resolution notes (a cement bolus too few
        cells across, :class:`~vertebrafe.errors.ResolutionWarning`) (:mod:`vertebrafe.plausibility`), also in
        the record (``case.json``).
    """

    segment: object
    load: Load
    solution: object
    applied: object
    case: str = "case"
    yield_compression: float = YIELD_STRAIN_COMPRESSION
    yield_tension: float = YIELD_STRAIN_TENSION
    fraction: float = _s.DEFAULT_FRACTION
    bone_regions: tuple = _m.BONE_REGIONS
    formulation: str = "bbar"
    solver_options: dict = dataclasses.field(default_factory=dict)
    timings: dict = dataclasses.field(default_factory=dict)
    warnings: list = dataclasses.field(default_factory=list)
    with_factor_of_risk: bool = True
    strength_criterion: str = "yield-volume"
    strength_cache: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    # -- metrics ----------------------------------------------------------------------------------
    @cached_property
    def metrics(self):
        seg, sol = self.segment, self.solution
        rows = _m.region_rows(seg, sol, self.yield_compression, self.yield_tension, self.bone_regions)
        rows += _m.vertebra_rows(seg, sol)
        rows += _s.strength_rows(seg, sol, self.load, self.fraction, self.yield_compression, self.yield_tension,
                                 regions=self.bone_regions)
        if self.with_factor_of_risk:
            rows += self._plate_rows
        rows += _m.disc_rows(seg, sol)
        rows += _post.posterior_rows(seg, sol)
        if sol.rest is not None:
            rest = _swelling.nucleus_pressures(seg, sol.rest)
            rows += [r for d, s in sol.rest.info["swelling_stress"].items()
                     for r in ((d, "nucleus", "rest_pressure", rest[d], "MPa"),
                               (d, "nucleus", "swelling_stress", s, "MPa"))]
        rows += _m.segment_rows(seg, sol, self.applied, self.load)
        return _m.metrics_frame(rows, self.case)

    @cached_property
    def _plate_rows(self):
        opts = {k: v for k, v in self.solver_options.items() if k in ("solver", "rtol", "maxiter")}
        return _s.plate_rows(self.segment, self.load, None, self.fraction, self.yield_compression, self.yield_tension,
                             self.bone_regions, cache=self.strength_cache, strength=self.strength_criterion, **opts)

    def value(self, metric, level="segment", region=None):
        """One metric value (float). ``region`` defaults to the only region of ``metric`` at ``level``."""
        df = self.metrics
        sel = (df["metric"] == metric) & (df["level"] == level)
        if region is not None:
            sel &= df["region"] == region
        hit = df[sel]
        if len(hit) != 1:
            raise InputError(f"metric {metric!r} at level {level!r}, region {region!r} matches {len(hit)} rows; "
                             f"regions there: {sorted(set(df[(df['level'] == level)]['region']))}")
        return float(hit["value"].iloc[0])

    def strength(self, fraction=None, yield_compression=None, yield_tension=None, apparent_yield=_s.APPARENT_YIELD):
        """Strength and factor-of-risk rows (DataFrame) with other criterion parameters."""
        rows = _s.strength_rows(self.segment, self.solution, self.load,
                                self.fraction if fraction is None else fraction,
                                self.yield_compression if yield_compression is None else yield_compression,
                                self.yield_tension if yield_tension is None else yield_tension,
                                apparent_yield, self.bone_regions)
        return _m.metrics_frame(rows, self.case)

    def plate_strength(self, levels=None, strength=None, **solver_options):
        """Strength of each vertebra alone between rigid plates and the factor of risk.

        :func:`vertebrafe.post.vertebra_strength` (the set-up of the published strengths and factors of
        risk) on the vertebra as it is in this result's segment (fracture, damage and cement included),
        with this result's yield criterion; one extra solve per vertebra (reused from :attr:`metrics`
        when it holds them and no options are given). ``strength``: the criterion of the factor of risk
        (default this result's, :data:`vertebrafe.post.STRENGTH_CRITERIA`; ``"pushover"`` adds
        :func:`vertebrafe.post.vertebra_pushover`, about 10-25 solves per vertebra: pass ``levels`` to
        limit it to the treated one). Rows per vertebra: ``plate_stiffness`` (N/mm),
        ``plate_strength_yield`` (N), ``plate_strength_apparent`` (N, at 0.2 % apparent strain),
        ``plate_strength_pushover`` (N, with the pushover) and ``factor_of_risk`` (-, ``load.compression``
        over the criterion's strength; the load's moments are not included). Returns a metrics DataFrame.
        """
        crit = self.strength_criterion if strength is None else strength
        if levels is None and not solver_options and crit == self.strength_criterion:
            rows = self._plate_rows
        else:
            rows = _s.plate_rows(self.segment, self.load, levels, self.fraction, self.yield_compression,
                                 self.yield_tension, self.bone_regions, cache=self.strength_cache if not solver_options
                                 else None, strength=crit, **solver_options)
        return _m.metrics_frame(rows, self.case)

    @property
    def factor_of_risk(self):
        """Factor of risk per vertebra (load / plate strength, the published kind; DataFrame rows)."""
        df = self.plate_strength()
        return df[df["metric"] == "factor_of_risk"].reset_index(drop=True)

    @property
    def overload_index(self):
        """In-situ overload-index rows of :attr:`metrics` (both criteria, per vertebra): a comparison
        measure between cases, not a fracture threshold (see :mod:`vertebrafe.post.strength`)."""
        df = self.metrics
        return df[df["metric"].str.startswith("overload_index")].reset_index(drop=True)

    @property
    def treated_level(self):
        """Treated vertebra from the segment's clinical history (None if untreated)."""
        return treated_level(self.segment)

    @property
    def info(self):
        """Solver information (``Solution.info``: solver, dofs, iterations, residual, phase times) plus the
        timings of this run (s): ``model_time`` (model and loads), ``fe_time`` (``Model.solve`` in all),
        ``metrics_time``."""
        return {**self.solution.info, **self.timings}

    def compare(self, reference):
        """Ratio and change of every metric against ``reference`` (a :class:`Result` or a metric
        DataFrame); the levels next to the treated level (of this result's segment, else the
        reference's) are labelled (see :mod:`vertebrafe.post.compare`)."""
        if isinstance(reference, Result):
            treated = self.treated_level or reference.treated_level
            ref = reference.metrics
        else:
            treated, ref = self.treated_level, reference
        return _compare(self.metrics, ref, self.segment.levels, treated)

    # -- records and files ------------------------------------------------------------------------
    def record(self):
        """The resolved inputs as a JSON-ready dict (enough to rebuild and rerun the case)."""
        seg = self.segment
        ms = seg.materials
        materials = None if ms is None else _plain(ms)
        return {
            "vertebrafe_version": __version__,
            "case": self.case,
            "segment": {
                "levels": list(seg.levels),
                "element_size": seg.element_size,
                "cortex_thickness": seg.cortex_thickness,
                "endplate_thickness": seg.endplate_thickness,
                "n_cortex_layers": seg.n_cortex_layers,
                "disc_refinement": seg.disc_refinement,
                "fibres": _plain(getattr(seg, "fibres", None)),
                "nucleus": getattr(seg, "nucleus", "solid"),
                "nucleus_prepressure": float(getattr(seg, "nucleus_prepressure", 0.0)),
                "posterior": getattr(seg, "posterior", None) is not None,
                "dimensions": {k: _plain(v) for k, v in seg.dimensions.items()},
                "n_cells": int(seg.mesh.n_cells), "n_points": int(seg.mesh.n_points),
                "source": _plain(getattr(seg, "source", None)),
            },
            "materials": materials,
            "materials_resolved": ({"cortical": _plain(ms.cortical_material)} if hasattr(ms, "cortical_material")
                                   else None),                         # the shell modulus taken from the vBMD
            "history": [op.as_dict() for op in getattr(seg, "history", ())],
            "load": self.load.as_dict(),
            "load_applied": self._load_applied(),
            "boundary_conditions": {"fixed": "segment:inferior (x, y, z)",
                                    "loaded": "segment:superior tied to a rigid plate"},
            "post": {"yield_compression": self.yield_compression, "yield_tension": self.yield_tension,
                     "fraction": self.fraction, "bone_regions": list(self.bone_regions),
                     "factor_of_risk": self.with_factor_of_risk, "strength": self.strength_criterion},
            "formulation": _plain(self.formulation),
            "solver_options": _plain(self.solver_options),
            "solver_info": _plain(self.info),
            "warnings": list(self.warnings),
        }

    def _load_applied(self):
        ap = self.applied
        c = ap.plate.center
        F, M = resultant(self.solution.model, c)
        return {"force_N": ap.force.tolist(), "moment_Nmm": ap.moment.tolist(), "reference_point_mm": c.tolist(),
                "guide_forces_N": {k: v.tolist() for k, v in ap.guide_forces.items()},
                "level_loads": _plain(ap.level_loads), "user_loads": ap.user_loads,
                "resultant_force_N": F.tolist(), "resultant_moment_Nmm_about_reference_point": M.tolist()}

    def save(self, directory):
        """Write ``result.vtu`` (mesh, tags with names, node and face sets, all fields; with annulus fibres
        also ``annulus_fibres_stress_MPa``, the larger fibre stress of each annulus cell), ``metrics.csv``,
        ``metrics.json`` (records) and ``case.json`` (:meth:`record`) into ``directory`` (created), each file atomically (complete or
        absent). Returns ``{kind: path}``."""
        from .io.atomic import write_text
        from .io.vtu import write

        os.makedirs(directory, exist_ok=True)
        paths = {k: os.path.join(directory, n) for k, n in (("vtu", "result.vtu"), ("csv", "metrics.csv"),
                                                             ("json", "metrics.json"), ("case", "case.json"))}
        m = self.solution.to_meshio()
        ratio = _m.strain_ratio(self.solution.principal_strains, self.yield_compression, self.yield_tension)
        m.cell_data["yield_strain_ratio"] = [ratio]
        p = -(self.solution.cell_stress[:, :3].sum(axis=1)) / 3.0
        m.cell_data["hydrostatic_pressure_MPa"] = [p]
        for springs in self.solution.model.springs:
            if getattr(springs, "host_cells", None) is not None:      # embedded fibres: largest stress per cell
                stress = np.zeros(self.segment.mesh.n_cells)
                first, F = springs.member_totals(self.solution.spring_forces(springs.name))
                np.maximum.at(stress, springs.host_cells[first], F / springs.area[first])
                m.cell_data[f"{springs.name}_stress_MPa"] = [stress]
        write(paths["vtu"], m)
        write_text(paths["csv"], self.metrics.to_csv(index=False))
        write_text(paths["json"], self.metrics.to_json(orient="records", indent=1))
        write_text(paths["case"], json.dumps(self.record(), indent=1, allow_nan=True))
        return paths

    def __repr__(self):
        return (f"Result(case={self.case!r}, {self.load.describe()}, {self.segment.mesh.n_cells} cells, "
                f"solver={self.solution.info.get('solver')})")


def _plain(v):
    """JSON-ready copy: numpy -> Python, tuples -> lists, mappings -> dicts, other objects -> str."""
    if isinstance(v, dict) or hasattr(v, "items"):
        return {str(k): _plain(x) for k, x in v.items()}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)
