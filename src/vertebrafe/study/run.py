"""Running a study: every unfinished case, resumable, then the summary."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field

from ..case import ModelCache
from ..errors import InputError, warning_class
from ..io.studydir import (LOCK_FILE, StrengthFiles, case_status, clean_temporaries, damage, is_study_dir, lock,
                           read_study, write_case, write_study)
from ..io.toml import comment, to_toml
from ..outputs import folder_path
from ..report import summarize, warm_plotting
from .backends import compute_group, run_dask, run_pool, sigterm_unwinds, worker_pool
from .plan import Study, load_study

__all__ = ["StudyRun", "run_study"]

# ------------------------------------------------------------------------------------------------
# Running a study


def _write_outcome(out, sc, outcome):
    """Write the files of one case of a study into ``out/cases/<id>`` atomically."""
    case_toml = (comment(f"case {sc.id} of a study; variant {sc.variant!r}; parameters {sc.params}")
                 + to_toml(sc.case.to_dict()))
    status = {k: v for k, v in outcome.items() if k != "files"}
    status.update({"name": sc.name, "variant": sc.variant, "params": sc.params,
                   "output": dataclasses.asdict(sc.case.output),
                   "files": sorted(outcome["files"]), "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
    write_case(out, sc.id, outcome["files"], case_toml, status)


@dataclass
class StudyRun:
    """What :func:`run_study` did: case ids ``ok``, ``failed`` (id -> error), ``skipped`` (finished
    earlier and verified), ``recomputed`` (id -> why an earlier result was not trusted), ``warnings`` (id ->
    plausibility and resolution messages, kept in ``cases/<id>/status.json`` and issued as warnings with their
    class: the first case of each note in full, naming the case, then one count of the cases whose note differs
    from it only in numbers),
    the wall time and the summary paths."""

    study: Study
    out: str
    ok: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    recomputed: dict = field(default_factory=dict)
    warnings: dict = field(default_factory=dict)
    elapsed_s: float = 0.0
    summary: dict = field(default_factory=dict)
    backend: str = ""

    def describe(self):
        n = len(self.study.cases)
        again = f" ({len(self.recomputed)} of them recomputed: damaged or stale)" if self.recomputed else ""
        return (f"study {self.study.name}: {n} cases, {len(self.ok)} run{again}, {len(self.skipped)} finished "
                f"earlier, {len(self.failed)} failed"
                + (f", {len(self.warnings)} with warnings (cases/<id>/status.json)" if self.warnings
                   else "") + f"; {self.elapsed_s:.1f} s on {self.backend}")


def _note_kind(message):
    """A warning message with its numbers masked: the cases of a study whose notes differ only in numbers (a
    bolus 5.2 or 6.4 cells across) print the first in full and the count of the others."""
    return re.sub(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?", "#", str(message))


def _check_memory(pending, workers, force):
    """The largest pending case, ``workers`` at a time, fits in the available memory (unless ``force``)."""
    from ..resources import check_memory

    big = max(pending, key=lambda sc: sc.case.segment.size_estimate()["bytes"])
    s = big.case.segment
    check_memory(s.size_estimate(), f"case {big.id} ({big.name}): segment.element_size = {s.element_size:g} mm on "
                 f"{s.levels[0]}-{s.levels[-1]}", force=force, workers=workers)


def run_study(study, out, *, workers=None, scheduler=None, runner=None, progress=True, log=None,
              summary=True, retry_failed=True, connect_timeout=30.0, force=False):
    """Run every unfinished case of ``study`` and write the summary.

    Parameters
    ----------
    study : Study or str or os.PathLike
        A :class:`Study` or a study file.
    out : str or os.PathLike
        Study directory (created): ``study.json``, ``cases/<id>/``, ``summary.csv``, ``failures.csv``,
        ``plots/``.
    workers : int, optional
        Local processes (default: the number of CPUs, at most the number of cases); 1 runs in this
        process. Ignored with ``scheduler``.
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``).
    runner : callable or "module:function", optional
        ``runner(case, workdir) -> dict | None`` writes the files of one case into ``workdir``; default
        :func:`pipeline_runner`, which runs the cases that differ only in their load as one task with one
        model and solver set-up. Must be importable by the workers (a module-level function).
    progress : bool
        tqdm progress bar over the cases.
    log : callable, optional
        ``log(message)``, one line per finished case (verbose mode).
    summary : bool
        Write the summary table and plots at the end.
    retry_failed : bool
        Rerun cases that failed in an earlier run (default); otherwise keep their error.
    connect_timeout : float
        Seconds to wait for the Dask scheduler.
    force : bool
        Run although the largest case times the local workers is estimated not to fit in the available
        memory (:mod:`vertebrafe.resources`).

    Returns
    -------
    StudyRun
    """
    t0 = time.perf_counter()
    if not isinstance(study, Study):
        study = load_study(study)
    out = _check_study_dir(out)
    os.makedirs(out, exist_ok=True)
    with lock(out), sigterm_unwinds():
        return _run_locked(study, out, t0, workers=workers, scheduler=scheduler, runner=runner, progress=progress,
                           log=log, summary=summary, retry_failed=retry_failed, connect_timeout=connect_timeout,
                           force=force)


def _run_locked(study, out, t0, *, workers, scheduler, runner, progress, log, summary, retry_failed,
                connect_timeout, force):
    _check_same_study(study, out)
    os.makedirs(os.path.join(out, "cases"), exist_ok=True)
    clean_temporaries(out)
    run = StudyRun(study, out)
    say = log or (lambda msg: None)
    pending = []
    for sc in study.cases:
        st = case_status(out, sc.id)
        why = _stale(out, sc, st) if st else None
        if st and not why and (st.get("status") == "ok" or (st.get("status") == "error" and not retry_failed)):
            run.skipped.append(sc.id)
            if st.get("status") == "error":
                run.failed[sc.id] = st.get("error")
        else:
            if why:
                run.recomputed[sc.id] = why
                say(f"recompute {sc.id} {sc.name}: {why}")
            pending.append(sc)
    write_study(out, study.to_dict())
    if pending and not scheduler:
        _check_memory(pending, max(1, min(int(workers or os.cpu_count() or 1), len(pending))), force)
    if run.skipped:
        say(f"{len(run.skipped)} of {len(study.cases)} cases finished earlier; skipped")

    bar = None
    if progress and pending:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(pending), desc=study.name, unit="case", file=sys.stderr, dynamic_ncols=True)

    notes = {}                       # _note_kind -> [first case, its message, later cases with the same kind]

    def done(sc, outcome):
        _write_outcome(out, sc, outcome)
        if outcome["status"] == "ok":
            run.ok.append(sc.id)
            say(f"ok      {sc.id} {sc.name} ({outcome['elapsed_s']:.1f} s)")
            for message in (outcome.get("info") or {}).get("warnings") or ():
                run.warnings.setdefault(sc.id, []).append(message)
                first = notes.setdefault(_note_kind(message), [sc, message, 0])
                if first[0] is sc:
                    warnings.warn(f"case {sc.name} ({sc.id}): {message}", warning_class(message), stacklevel=2)
                else:
                    first[2] += 1
        else:
            run.failed[sc.id] = outcome["error"]
            say(f"FAILED  {sc.id} {sc.name}: {outcome['error']}")
        if bar is not None:
            bar.update(1)
            bar.set_postfix(ok=len(run.ok), failed=len(run.failed))

    groups = _groups(pending, runner, share=not scheduler)
    by_id = {sc.id: sc for sc in pending}
    warming = []                                             # the plots' warm-up in this process (a thread)
    with contextlib.ExitStack() as workers_alive:
        pool = None
        try:
            if not pending:
                run.backend = "nothing to run"
            elif scheduler:
                run.backend = f"dask {scheduler}"
                run_dask(scheduler, groups, by_id, runner, done, connect_timeout)
            else:
                n = workers or min(os.cpu_count() or 1, len(groups))
                n = max(1, min(int(n), len(groups)))
                uses_amg = _uses_amg(pending)
                if n == 1:
                    _warm_up(bar, say, amg=uses_amg)
                    run.backend = "1 process (in-process)"
                    cache = ModelCache(StrengthFiles(out))   # for this run only: freed when it ends
                    for group in groups:
                        compute_group(group, runner, limit_threads=False,
                                      report=lambda outcome: done(by_id[outcome["id"]], outcome), cache=cache)
                else:
                    # the workers start at once: they import and build their first segments while this
                    # process compiles the kernels (for one thread each), and solve once that is done
                    pool = workers_alive.enter_context(worker_pool(n, strengths=out))
                    run.backend = f"{n} worker processes"
                    run_pool(n, groups, by_id, runner, done, pool,
                             compile_kernels=lambda: _warm_up(bar, say, amg=uses_amg, threads=1),
                             on_idle=_plots_warmer(warming, min(n, len(study.summary.plots) - 1))
                             if summary and study.summary.plots else None)
        finally:
            if bar is not None:
                bar.close()
        for thread in warming:
            thread.join()
        for sc, message, repeats in notes.values():
            if repeats:
                warnings.warn(f"{repeats} more case(s) with the note of case {sc.name} ({sc.id}), their own numbers in "
                              "cases/<id>/status.json", warning_class(message), stacklevel=2)
        run.elapsed_s = time.perf_counter() - t0
        if summary:
            run.summary = summarize(out, executor=pool and pool.executor)   # the idle workers draw plots too
    return run


def _plots_warmer(warming, n):
    """``on_idle`` of :func:`run_pool`: once a worker is idle (the last cases run), this process (a thread,
    appended to ``warming``) and ``n`` workers (those that will draw a plot, :func:`summarize`) pay the plots'
    first-use costs (:func:`warm_plotting`) on the free core, so that the summary at the end only draws; the
    figures are the same."""
    from concurrent.futures import BrokenExecutor

    def on_idle(pool):
        thread = threading.Thread(target=warm_plotting, name="vertebrafe-warm-plots", daemon=True)
        thread.start()
        warming.append(thread)
        with contextlib.suppress(BrokenExecutor, RuntimeError):        # a dead worker, a pool shut down
            for _ in range(n):
                pool.executor.submit(warm_plotting)
    return on_idle


def _groups(pending, runner, share=True):
    """The tasks of a run: lists of case items ``{"id", "case"}``. With the default pipeline and ``share``, the
    cases that differ only in their load (same :func:`vertebrafe.case.model_key`) form one task, which builds
    their model and stiffness set-up once; with another runner, or on a Dask cluster (whose tasks return only
    when finished, so a group would keep its finished cases until its last one), every case is a task of its
    own."""
    from ..case import model_key

    groups = {}
    for sc in pending:
        key = model_key(sc.case) if runner is None and share else sc.id
        groups.setdefault(key, []).append({"id": sc.id, "case": sc.case.to_dict()})
    return list(groups.values())


def _stale(out, sc, st):
    """Why finished case ``sc`` (status ``st``) must be computed again, or None: its files are damaged, it
    was computed by another vertebrafe version, or it lacks a file the case now asks for."""
    from .._version import __version__

    if st.get("status") != "ok":
        return None
    if st.get("vertebrafe") != __version__:
        return f"finished by vertebrafe {st.get('vertebrafe', 'of an unknown version')}, this is {__version__}"
    problems = damage(out, sc.id, st)
    if problems:
        return "damaged: " + "; ".join(problems)
    before = st.get("output") or {}
    wanted = [k for k, v in dataclasses.asdict(sc.case.output).items() if v and before.get(k) is False]
    if wanted:
        return f"output.{', output.'.join(wanted)} now true: files the earlier run did not keep"
    return None


def _check_same_study(study, out):
    """A study folder holds one study: the same name and swept keys (new values of them extend it)."""
    if not is_study_dir(out):
        return
    try:
        old = read_study(out)
        same = old.get("name") == study.name and list(old.get("parameters", [])) == list(study.parameters)
    except (OSError, ValueError, AttributeError):
        raise InputError(f"-o/--output = {out!r}: its study.json is unreadable; use another folder") from None
    if not same:
        raise InputError(f"-o/--output = {out!r} holds study {old.get('name')!r} sweeping {old.get('parameters')}; "
                         f"this is study {study.name!r} sweeping {list(study.parameters)}; allowed: the same study "
                         "(to resume or extend it) or another folder")


def _warm_up(bar, say, amg=True, threads=None):
    """Compile or load the numba kernels in this process before any case starts, so that worker
    processes load them from numba's cache instead of each compiling them (a notice is shown when
    compiling); ``amg``: also those of AMG-CG; ``threads``: the numba threads the cases run on (1 in pool
    workers: the serial builds, :func:`vertebrafe.fem.warmup.warm_up`)."""
    from ..fem.warmup import warm_up
    if bar is not None:
        warm_up(say=lambda msg: bar.write(msg, file=sys.stderr), amg=amg, threads=threads)
    else:
        warm_up(say=say, amg=amg, threads=threads)


#: Margin on :func:`vertebrafe.resources.estimate_segment`'s unknowns (within 15 % of the mesh's) below the
#: bound where ``"auto"`` stops solving directly: a segment estimated above ``SIZE_MARGIN x bound`` may use AMG-CG.
SIZE_MARGIN = 0.85


def _uses_amg(cases):
    """Whether a case of ``cases`` (StudyCase) may solve with AMG-CG: it asks for it, or for ``"auto"`` with a
    segment whose estimated unknowns (:meth:`~vertebrafe.case.specs.SegmentSpec.size_estimate`) reach
    :data:`SIZE_MARGIN` times the size where ``"auto"`` may leave the direct solver (with PARDISO
    :data:`~vertebrafe.fem.solver_choice.ESTIMATE_MIN_DOFS`, T12-L2 at 2 mm and finer; else
    :func:`~vertebrafe.fem.solvers.direct_max_dofs`), or with an image-based segment (its size is known only
    once meshed). Their AMG kernels are then compiled before the workers start, not in each worker."""
    from ..fem import solver_choice, solvers
    bound = solver_choice.ESTIMATE_MIN_DOFS if solvers.pardiso_available() else solvers.direct_max_dofs()

    def may_use_amg(case):
        if case.solver.solver != "auto":
            return case.solver.solver == "amg"
        return case.image is not None or case.segment.size_estimate()["dofs"] >= SIZE_MARGIN * bound

    return any(may_use_amg(sc.case) for sc in cases)


def _check_study_dir(out):
    """Absolute path of study folder ``out``: new, empty, or an earlier study output (with study.json)."""
    text, out = folder_path(out, allowed="a new or empty folder, or an earlier study folder to resume")
    if os.path.isdir(out) and set(os.listdir(out)) - {LOCK_FILE} and not is_study_dir(out):
        raise InputError(f"-o/--output = {text!r} is a non-empty folder that is not a study folder (no "
                         "study.json); allowed: a new or empty folder, or an earlier study folder to resume "
                         "(vertebrafe never writes into folders of other files)")
    return out
