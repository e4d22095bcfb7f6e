"""Running a case: the pipeline (the only place where case keys become library calls) and its output."""
from __future__ import annotations

import os
import re
import sys
import time
from typing import Mapping

from ..errors import InputError
from ..io.toml import comment, to_toml
from .parse import apply_overrides, fmt_value, load_case, parse_case
from .schema import CaseError
from .specs import Case

__all__ = ["build_segment", "run_case", "save_result", "model_key", "ModelCache"]


def model_key(case):
    """Hash (12 hex digits) of everything in ``case`` but its load, name and output choices: cases with the
    same key differ only in their load, so they share the segment, its stiffness set-up and plate strengths."""
    from .specs import case_id
    d = case.to_dict() if isinstance(case, Case) else dict(case)
    return case_id({k: v for k, v in d.items() if k != "load"})


class ModelCache:
    """The segment and :class:`vertebrafe.fem.Setup` of the last case :func:`run_case` ran with this cache;
    the next case reuses them when it differs only in its load (same :func:`model_key`), otherwise they are
    replaced (one model is held at a time). ``strengths``: the plate strengths of the vertebrae seen so far
    (by content, :func:`vertebrafe.post.strength.vertebra_key`), kept across models, so that cases which
    treat one level solve the untouched vertebrae once; a dict, or ``strengths`` (a study's
    :class:`vertebrafe.io.studydir.StrengthFiles`, shared by its processes through files)."""

    def __init__(self, strengths=None):
        self.key = None
        self.segment = None
        self.setup = None
        self.strengths = {} if strengths is None else strengths



def build_segment(case, progress=None, *, force=False):
    """Segment -> fracture -> treatment of a validated case; returns the :class:`~vertebrafe.Segment`.

    ``progress`` is an optional callable ``progress(stage: str)`` called before each stage. Before meshing
    the model's size and memory are estimated (:mod:`vertebrafe.resources`); a model that does not fit in
    the available memory raises :class:`~vertebrafe.errors.ResourceError` unless ``force``. A value the
    treatment refuses (a fill that does not fit or that the mesh places more than 5 % off, an offset that
    leaves the body) raises :class:`CaseError` naming the case key.
    """
    from ..anatomy import segment
    from ..clinical import fracture, kyphoplasty, vertebroplasty
    from ..materials import MaterialSet
    from ..resources import check_memory

    case = parse_case(case) if not isinstance(case, Case) else case
    step = progress or (lambda stage: None)
    s, b = case.segment, case.bone
    check_memory(s.size_estimate(),
                 f"segment.element_size = {s.element_size:g} mm on {s.levels[0]}-{s.levels[-1]}", force=force)
    per_level = isinstance(b.bmd, dict)
    # with per-level or image vBMD the set's own bmd is a placeholder: every bone cell takes its level's
    # (or, from an image, its own) value
    mean = sum(b.bmd.values()) / len(b.bmd) if per_level else (b.bmd if b.bmd is not None else 100.0)
    materials = MaterialSet(bmd=mean, law=b.law, anisotropic=b.anisotropic, transverse_ratio=b.transverse_ratio)
    prepressure = s.nucleus_prepressure               # None: the library's (the lying pressure where a nucleus is)
    if prepressure and len(s.levels) == 1:
        from .schema import CaseError
        raise CaseError(f"segment.nucleus_prepressure = {prepressure!r} MPa on the single vertebra {s.levels[0]}: it "
                        "has no disc whose nucleus could carry it; give 0, or levels with a disc between them")
    step("mesh")
    if case.image is not None:
        from ..image import image_segment

        im = case.image
        seg = image_segment(im.ct, im.labels, levels=list(s.levels), calibration=im.calibration(),
                            element_size=s.element_size, materials=materials, bmd_margin=im.bmd_margin,
                            pv_margin=im.pv_margin, density_scale=im.density_scale,
                            max_anisotropy=im.max_anisotropy,
                            cortex_thickness=s.cortex_thickness, endplate_thickness=s.endplate_thickness,
                            n_cortex_layers=s.n_cortex_layers, disc_refinement=s.disc_refinement, fibres=s.fibres,
                            nucleus=s.nucleus, geometry=im.geometry, snap=im.snap, smoothing=im.smoothing,
                            arch_radius=im.arch_radius, nucleus_prepressure=prepressure)
    else:
        seg = segment(list(s.levels), element_size=s.element_size, overrides=s.overrides, scale=s.scale,
                      bmd=b.bmd if per_level else None, materials=materials, cortex_thickness=s.cortex_thickness,
                      endplate_thickness=s.endplate_thickness, n_cortex_layers=s.n_cortex_layers,
                      disc_refinement=s.disc_refinement, fibres=s.fibres, nucleus=s.nucleus,
                      posterior=s.posterior, central_coarsening=s.central_coarsening,
                      annulus_refinement=s.annulus_refinement, nucleus_prepressure=prepressure,
                      articular_refinement=s.articular_refinement)
    if case.fracture is not None:
        f = case.fracture
        step("fracture")
        seg = fracture(seg, f.level, kind=f.kind, grade=f.grade, height_loss=f.height_loss,
                       damage_factor=f.damage_factor, damage_strength_factor=f.damage_strength_factor)
    t = case.treatment
    offset = t.offset if t.offset is not None else (0.0, 0.0, 0.0)
    try:
        if t.kind == "vertebroplasty":
            step("vertebroplasty")
            seg = vertebroplasty(seg, t.level, volume=t.volume, fill=t.fill, approach=t.approach, side=t.side,
                                 material=t.material, offset=offset, vertical_extent=t.vertical_extent,
                                 interface=t.interface, layer_thickness=t.layer_thickness,
                                 layer_modulus=t.layer_modulus, surface=t.surface, placement=t.placement,
                                 bridge=t.bridge)
        elif t.kind == "kyphoplasty":
            step("kyphoplasty")
            seg = kyphoplasty(seg, t.level, restoration=t.restoration, volume=t.volume, balloons=t.balloons,
                              rim_thickness=t.rim_thickness, offset=offset, vertical_extent=t.vertical_extent,
                              interface=t.interface, layer_thickness=t.layer_thickness,
                              layer_modulus=t.layer_modulus,
                              **({} if t.surface is None else {"surface": t.surface}))   # None: the library's
    except InputError as exc:
        raise _treatment_error(exc) from exc
    return seg


def _treatment_error(exc):
    """``exc`` of a treatment that the case file's values were refused by (a fill that does not fit, a bolus
    outside the body, a key that needs another one), as a :class:`CaseError` naming the key as the case
    file spells it (``treatment.fill = ...``); other errors unchanged."""
    from .schema import SCHEMA
    msg = str(exc)
    name = msg.split(" = ", 1)[0]
    if " = " not in msg or name not in {f.name for f in SCHEMA["treatment"]}:
        return exc
    for f in SCHEMA["treatment"]:             # other keys the message names: "layer_modulus needs interface = ..."
        msg = re.sub(rf"(?<![\w.]){f.name} = ", f"treatment.{f.name} = ", msg)
    return CaseError(msg)


def _as_case(case_or_path, overrides=None):
    if isinstance(case_or_path, Case):
        if overrides:
            raise InputError("overrides apply to a case file or dict, not to a parsed Case")
        return case_or_path
    if isinstance(case_or_path, (str, os.PathLike)):
        return load_case(case_or_path, overrides)
    if isinstance(case_or_path, Mapping):
        raw = apply_overrides(case_or_path, overrides) if overrides else case_or_path
        return parse_case(raw)
    raise InputError(f"case = {case_or_path!r}; expected a path to a .toml file, a dict or a Case")


def run_case(case, out=None, *, overrides=None, progress=False, log=None, overwrite=False, force=False, cache=None,
             before_solve=None):
    """Run one case: validate, mesh, fracture, treat, load, solve, post-process.

    Parameters
    ----------
    case : str, os.PathLike, dict or Case
        A case file, its content as a dict, or a :class:`Case`.
    out : str or os.PathLike, optional
        Directory to write ``result.vtu`` (unless ``[output] vtu = false``), ``metrics.csv``,
        ``metrics.json``, ``case.json`` (the resolved record of :meth:`Result.record`) and ``case.toml``
        (the resolved case file) into. ``out`` must be new or empty (checked before the solve); see
        :func:`save_result`.
    overrides : dict, optional
        Dotted assignments ``{"bone.bmd": 60.0}`` applied before validation (file or dict cases).
    progress : bool
        Show a tqdm progress bar of the stages (mesh, fracture, treatment, solve, save).
    log : callable, optional
        ``log(message)`` for stage messages (verbose mode).
    overwrite : bool
        Allow ``out`` to hold an earlier run output; only the files vertebrafe wrote there are replaced.
    force : bool
        Run a model whose estimated memory exceeds the available memory (see :func:`build_segment`).
    cache : ModelCache, optional
        Shared by the cases of a study that differ only in their load: the segment, the stiffness set-up
        and the plate strengths of the previous case are reused (``result.case_timings["model_reused"]``).
    before_solve : callable, optional
        Called without arguments once the segment is built, before the solve (a study's worker process
        waits there until the study has compiled the numba kernels, which building the segment does not use;
        the wait counts in the solve's time).

    Returns
    -------
    vertebrafe.simulate.Result
        With ``.metrics`` (tidy DataFrame), ``.compare(reference)``, ``.save(directory)``; ``.case_spec``
        is the :class:`Case`.
    """
    from ..simulate import simulate

    case = _as_case(case, overrides)
    if out is not None:
        from ..outputs import check_output_dir
        check_output_dir(out, "run", overwrite=overwrite, option="out")
    name = case.name or case.id
    key = model_key(case) if cache is not None else None
    reuse = cache is not None and cache.key == key
    stages = ([] if reuse else ["mesh"] + (["fracture"] if case.fracture else []) +
              ([case.treatment.kind] if case.treatment.kind != "none" else [])) + ["solve"] + (["save"] if out else [])
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(stages), desc=name, unit="stage", leave=False, file=sys.stderr)
    t0 = time.perf_counter()
    timings = {}
    last = [None, t0]

    def step(stage):
        now = time.perf_counter()
        if last[0] is not None:
            timings[f"{last[0]}_s"] = now - last[1]
            if bar is not None:
                bar.update(1)
        last[0], last[1] = stage, now
        if bar is not None and stage is not None:
            bar.set_postfix_str(stage)
        if log and stage is not None:
            log(f"{name}: {stage}")

    try:
        if reuse:
            seg = cache.segment
        else:
            if cache is not None:                         # free the previous model before building this one
                cache.key = cache.segment = cache.setup = None
            seg = build_segment(case, progress=step, force=force)
            if cache is not None:
                from ..simulate import Setup
                cache.key, cache.segment, cache.setup = key, seg, Setup()
                cache.setup.derived["plate strengths"] = cache.strengths
        step("solve")
        if before_solve is not None:
            before_solve()
        load = case.load.to_load(name=case.load.preset or "", segment=seg)
        result = simulate(seg, load, case=name, setup=None if cache is None else cache.setup,
                          **case.solver.options())
        if out is not None:
            step("save")
            save_result(result, case, out, overwrite=overwrite)
        step(None)
    finally:
        if bar is not None:
            bar.close()
    timings["total_s"] = time.perf_counter() - t0
    if cache is not None:
        timings["model_reused"] = reuse
    result.case_spec = case
    result.case_timings = timings
    return result



def save_result(result, case, out, *, overwrite=False):
    """Write a result and its resolved case into folder ``out`` (see :func:`vertebrafe.outputs.publish`):
    ``out`` must be new or empty, or with ``overwrite`` an earlier run output, of which only the files
    vertebrafe wrote are replaced. Returns the absolute path of ``out``."""
    from ..outputs import publish

    def write(tmp):
        result.save(tmp)
        if not case.output.vtu:
            os.remove(os.path.join(tmp, "result.vtu"))
        if not case.output.metrics:
            for n in ("metrics.csv", "metrics.json"):
                os.remove(os.path.join(tmp, n))
        with open(os.path.join(tmp, "case.toml"), "w") as f:
            f.write(comment(f"resolved case {case.id} ({case.name}); vertebrafe {_version()}"))
            f.write(to_toml(case.to_dict()))

    return publish(write, out, "run", overwrite=overwrite)



def _version():
    from .._version import __version__
    return __version__
