"""Parameter studies: many cases from one study file, run on a process pool or a Dask cluster.

A study file names a base case and a sweep (docs/cases.md)::

    [study]
    name = "adjacent-risk"
    base = "osteoporotic-wedge-nsm.toml"     # a case file, relative to the study file (optional)

    [base]                                   # changes to (or all of) the base case
    segment.element_size = 4.0

    [grid]                                   # full grid, applied to every variant
    "bone.bmd" = [60.0, 100.0]

    [[variants]]                             # explicit variants, each with its own settings and grid
    name = "VP"
    set = {"treatment.kind" = "vertebroplasty"}
    grid = {"treatment.volume" = [2.0, 4.0, 6.0]}

    [summary]
    reference = "NSM"                        # ratios against the NSM case with the same grid values
    [[summary.plots]]
    metric = "von_mises_p95"
    x = "treatment.volume"
    facet = "bone.bmd"

Every case of the sweep is validated before anything runs and gets a stable id, the hash of its
resolved content (:func:`vertebrafe.case.case_id`). Outputs go to ``DIR/cases/<id>/`` (``result.vtu``,
``metrics.csv``, ``case.toml``, ``status.json``), each written into a temporary directory and renamed
into place, so a case directory is complete or absent. Rerunning a study skips the cases whose
``status.json`` says ``ok`` and redoes the others; a failing case records its error (``status.json``,
``failures.csv``) and the study goes on; killing the study loses only the cases in flight.

Execution: ``workers=1`` runs in this process; ``workers=N`` a pool of N spawned processes, each with
numba and BLAS limited to one thread (so that N cases use N cores); ``scheduler="tcp://host:8786"``
sends the cases to a running Dask distributed cluster (``pip install "dask[distributed]"``). Workers
return the files of a case to this process, which writes them, so the cluster needs no shared file
system.

The summary (:func:`summarize`) is ``DIR/summary.csv``, one row per case and metric with the swept
parameters as columns (and, with a reference variant, the reference value and the ratio), plus one PNG
(and a pivot CSV) per ``[[summary.plots]]`` entry under ``DIR/plots/``.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import importlib
import itertools
import json
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .case import (MAX_STRING, Case, CaseError, _comment, _deep_merge, _fmt, _replace_dir, _typename, apply_overrides, load_toml,
                   parse_case, to_toml)
from .errors import InputError, ResourceError
from .outputs import check_name, safe_name

__all__ = ["Study", "StudyCase", "Variant", "PlotSpec", "SummarySpec", "StudyRun", "load_study", "parse_study",
           "run_study", "summarize", "case_status", "pipeline_runner"]

STATUS_FILE = "status.json"
#: Most cases one study may expand to (a guard against a grid that would take days and gigabytes to list).
MAX_CASES = 10_000
THREAD_ENV = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


# ------------------------------------------------------------------------------------------------
# Study file


@dataclass(frozen=True)
class Variant:
    """A named set of case changes (``set``: dotted key -> value) with its own grid."""

    name: str
    set: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PlotSpec:
    """One summary plot: ``y`` (``"ratio"`` against the reference or ``"value"``) of ``metric`` in
    ``region`` of the levels with ``relation`` (``"adjacent"`` = both adjacent vertebrae, or a relation
    such as ``treated``, ``adjacent_superior``, ``disc_superior``, ``segment``, or a level name), against
    the swept key ``x``, one line per ``hue`` value, one panel per ``facet`` value."""

    metric: str
    x: str
    region: str = "bone"
    relation: str = "adjacent"
    y: str = "ratio"
    hue: str = "variant"
    facet: Optional[str] = None
    title: str = ""
    name: str = ""


@dataclass(frozen=True)
class SummarySpec:
    reference: Optional[str] = None
    plots: tuple = ()


@dataclass(frozen=True)
class StudyCase:
    """One case of a study: its id, variant, swept parameters (dotted key -> value) and the Case."""

    id: str
    variant: str
    params: dict
    case: Case

    @property
    def name(self):
        return self.case.name


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    source: Optional[str]
    base: dict
    grid: dict
    variants: tuple
    summary: SummarySpec
    cases: tuple

    @property
    def parameters(self):
        """Swept keys in order of appearance (grid keys, then variant keys)."""
        keys = list(self.grid)
        for v in self.variants:
            for k in list(v.set) + list(v.grid):
                if k not in keys:
                    keys.append(k)
        return keys

    def to_dict(self):
        """A JSON-ready description (written to ``DIR/study.json``)."""
        return {"name": self.name, "description": self.description, "source": self.source,
                "parameters": self.parameters, "grid_keys": list(self.grid),
                "reference": self.summary.reference,
                "plots": [dataclasses.asdict(p) for p in self.summary.plots],
                "cases": [{"id": c.id, "name": c.name, "variant": c.variant, "params": c.params,
                           "case": c.case.to_dict()} for c in self.cases]}


_STUDY_KEYS = ("name", "description", "base")
_TOP_KEYS = ("study", "base", "grid", "variants", "summary")
_VARIANT_KEYS = ("name", "set", "grid")
_PLOT_FIELDS = {f.name for f in dataclasses.fields(PlotSpec)}
_Y = ("ratio", "value", "change")


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def _fail(source, path, msg):
    raise CaseError(f"{source}: {path} {msg}")


def _check_grid(source, path, grid):
    if not isinstance(grid, dict):
        _fail(source, path, f"= {_fmt(grid)} is {_typename(grid)}; expected a table of key = [values]")
    flat = {}
    for key, values in grid.items():
        if isinstance(values, dict):           # nested tables: [grid.bone] bmd = [...]
            for k2, v2 in _check_grid(source, f"{path}.{key}", values).items():
                flat[f"{key}.{k2}"] = v2
            continue
        if not isinstance(values, list) or not values:
            _fail(source, f"{path}.{key}", f"= {_fmt(values)} is {_typename(values)}; expected a non-empty "
                  "array of values to sweep")
        if "." not in key:
            _fail(source, f"{path}.{key}", "is not a case key; expected 'section.key', e.g. \"bone.bmd\"")
        flat[key] = list(values)
    return flat


def load_study(path, overrides=None):
    """Load a study file; ``overrides`` (dotted ``{"segment.element_size": 3.0}``) change the base case of
    every variant. Returns a :class:`Study` with every case validated."""
    path = os.fspath(path)
    return parse_study(load_toml(path), source=path, overrides=overrides)


def parse_study(raw, source="<study>", overrides=None):
    """Validate a study given as a dict (content of a study file) and expand its cases."""
    if not isinstance(raw, dict):
        _fail(source, "study", f"= {raw!r}; expected a table")
    for k in raw:
        if k not in _TOP_KEYS:
            _fail(source, f"[{k}]", f"is not a known study section; allowed: {', '.join(_TOP_KEYS)} (a case file "
                  "is run with 'vertebrafe run')")
    meta = raw.get("study")
    if not isinstance(meta, dict):
        _fail(source, "[study]", "is missing; a study file starts with [study] name = \"...\"")
    for k in meta:
        if k not in _STUDY_KEYS:
            _fail(source, f"study.{k}", f"is not a known key; allowed: {', '.join(_STUDY_KEYS)}")
    for k in ("name", "description", "base"):
        if k in meta and not isinstance(meta[k], str):
            _fail(source, f"study.{k}", f"= {_fmt(meta[k])} is {_typename(meta[k])}; expected a string")
    default_name = os.path.splitext(os.path.basename(source))[0] if source and source != "<study>" else "study"
    name = meta.get("name") or default_name

    base = {}
    if "base" in meta:
        here = os.path.dirname(os.path.abspath(source)) if source != "<study>" else os.getcwd()
        base_path = os.path.join(here, meta["base"])
        base = load_toml(base_path)
    inline = raw.get("base", {})
    if not isinstance(inline, dict):
        _fail(source, "[base]", f"= {_fmt(inline)} is {_typename(inline)}; expected a table")
    base = _deep_merge(base, inline)
    base.pop("case", None)
    if overrides:
        base = apply_overrides(base, overrides, source=source)

    grid = _check_grid(source, "grid", raw.get("grid", {}))
    variants = []
    raw_variants = raw.get("variants", [])
    if not isinstance(raw_variants, list):
        _fail(source, "variants", "must be an array of tables: [[variants]]")
    for i, v in enumerate(raw_variants):
        p = f"variants[{i}]"
        if not isinstance(v, dict):
            _fail(source, p, f"= {_fmt(v)}; expected a table")
        for k in v:
            if k not in _VARIANT_KEYS:
                _fail(source, f"{p}.{k}", f"is not a known key; allowed: {', '.join(_VARIANT_KEYS)} (put case "
                      "keys in set = {...})")
        vname = v.get("name")
        if not isinstance(vname, str) or not vname:
            _fail(source, f"{p}.name", f"= {_fmt(vname)}; expected a non-empty string")
        if vname in [x.name for x in variants]:
            _fail(source, f"{p}.name", f"= {_fmt(vname)} is used twice; variant names must be unique")
        vset = v.get("set", {})
        if not isinstance(vset, dict):
            _fail(source, f"{p}.set", f"= {_fmt(vset)} is {_typename(vset)}; expected a table of case keys")
        vgrid = _check_grid(source, f"{p}.grid", v.get("grid", {}))
        both = sorted(set(vgrid) & set(grid))
        if both:
            _fail(source, f"{p}.grid.{both[0]}", "is also in [grid]; sweep a key in one place only")
        variants.append(Variant(vname, _flatten(vset), vgrid))
    summary = _parse_summary(source, raw.get("summary", {}), [v.name for v in variants])

    total = sum(math.prod(len(v) for v in list(grid.values()) + list(variant.grid.values()))
                for variant in variants or [Variant("")])
    if total > MAX_CASES:
        raise ResourceError(f"{source}: [grid] and the variants' grids give {total} cases; allowed: at most "
                            f"{MAX_CASES} cases in one study (split it into several studies)")
    cases, seen = [], {}
    for variant in variants or [Variant("")]:
        keys = list(grid) + list(variant.grid)
        for combo in itertools.product(*(list(grid.values()) + list(variant.grid.values()))):
            params = dict(variant.set)
            params.update(zip(keys, combo))
            label = ", ".join(f"{k}={_fmt(v)}" for k, v in zip(keys, combo))
            where = f"{source} (variant {variant.name!r}{': ' + label if label else ''})" if variant.name \
                else f"{source} ({label})"
            case_raw = apply_overrides(_for_kind(base, params.get("treatment.kind")), params, source=where)
            cname = "-".join([variant.name] * bool(variant.name) + [_slug(k, v) for k, v in zip(keys, combo)])
            if len(cname) > MAX_STRING:
                cname = f"{cname[:MAX_STRING - 13]}~{hashlib.sha256(cname.encode()).hexdigest()[:12]}"
            case_raw.setdefault("case", {})["name"] = cname or name
            case = parse_case(case_raw, source=where)
            cid = case.id
            if cid in seen:
                continue                       # the same physics twice (e.g. a swept key that does not apply)
            seen[cid] = True
            cases.append(StudyCase(cid, variant.name, {k: params[k] for k in params}, case))
    if not cases:
        _fail(source, "grid", "gives no case")
    return Study(name, meta.get("description", ""), source, base, grid, tuple(variants), summary, tuple(cases))


def _for_kind(base, kind):
    """``base`` with the treatment keys that do not apply to treatment kind ``kind`` removed (a variant that
    switches a VP base case to NSM or BKP should not inherit, say, ``approach``)."""
    t = base.get("treatment")
    if kind is None or not isinstance(t, dict) or t.get("kind", "none") == kind:
        return base
    from .case import SCHEMA
    only = {f.name: f.only for f in SCHEMA["treatment"]}
    keep = {k: v for k, v in t.items() if k in ("kind", "level") or (only.get(k) and kind in only[k])}
    if kind == "none":
        keep = {}
    return {**base, "treatment": keep}


def _slug(key, value):
    short = key.split(".")[-1]
    return f"{short}{_fmt(value).strip(chr(39))}"


def _parse_summary(source, raw, variant_names):
    if not isinstance(raw, dict):
        _fail(source, "[summary]", f"= {_fmt(raw)}; expected a table")
    for k in raw:
        if k not in ("reference", "plots"):
            _fail(source, f"summary.{k}", "is not a known key; allowed: reference, plots")
    ref = raw.get("reference")
    if ref is not None and ref not in variant_names:
        _fail(source, "summary.reference", f"= {_fmt(ref)} is not a variant; allowed: {variant_names}")
    plots = []
    for i, p in enumerate(raw.get("plots", [])):
        path = f"summary.plots[{i}]"
        if not isinstance(p, dict):
            _fail(source, path, "must be a table ([[summary.plots]])")
        for k in p:
            if k not in _PLOT_FIELDS:
                _fail(source, f"{path}.{k}", f"is not a known key; allowed: {', '.join(sorted(_PLOT_FIELDS))}")
        for k in ("metric", "x"):
            if k not in p:
                _fail(source, f"{path}.{k}", "is missing; required")
        for k, v in p.items():
            if v is not None and not isinstance(v, str):
                _fail(source, f"{path}.{k}", f"= {_fmt(v)} is {_typename(v)}; expected a string")
        if p.get("y", "ratio") not in _Y:
            _fail(source, f"{path}.y", f"= {_fmt(p['y'])} is not allowed; allowed {list(_Y)}")
        if p.get("y", "ratio") != "value" and ref is None:
            _fail(source, f"{path}.y", "= 'ratio' needs summary.reference (a variant); or set y = \"value\"")
        spec = PlotSpec(**p)
        if spec.name:
            check_name(spec.name, f"{source}: {path}.name")
        else:
            spec = dataclasses.replace(spec, name=safe_name(f"{spec.metric}_{spec.region}_{spec.relation}_vs_"
                                                            f"{spec.x.split('.')[-1]}"))
        plots.append(spec)
    return SummarySpec(ref, tuple(plots))


# ------------------------------------------------------------------------------------------------
# Running one case (in a worker)


def pipeline_runner(case, workdir):
    """The default runner: :func:`vertebrafe.case.run_case` and the result files written into
    ``workdir``. Returns a dict of extra status information (solver info, timings)."""
    from .case import run_case
    t0 = time.perf_counter()
    result = run_case(case, force=True)       # memory was checked for the whole study before it started
    result.save(workdir)
    if not case.output.vtu:
        os.remove(os.path.join(workdir, "result.vtu"))
    info = result.solution.info
    return {"dofs": info.get("dofs"), "iterations": info.get("iterations"), "residual": info.get("residual"),
            "timings": dict(getattr(result, "case_timings", {}), save_s=time.perf_counter() - t0
                            - getattr(result, "case_timings", {}).get("total_s", 0.0))}


def _resolve_runner(runner):
    if runner is None:
        return pipeline_runner
    if isinstance(runner, str):
        mod, _, attr = runner.partition(":")
        return getattr(importlib.import_module(mod), attr)
    return runner


_POOL_LIMITS = None


def _init_worker():
    """Process-pool initializer: one numba thread and one BLAS thread in this worker."""
    global _POOL_LIMITS
    for k in THREAD_ENV:
        os.environ[k] = "1"
    try:
        import numba
        numba.set_num_threads(1)
    except Exception:  # noqa: BLE001 - numba missing or already limited
        pass
    try:
        from threadpoolctl import threadpool_limits
        _POOL_LIMITS = threadpool_limits(1)
    except Exception:  # noqa: BLE001
        pass


@contextlib.contextmanager
def _one_thread(active):
    """Numba and BLAS limited to one thread inside the block (restored afterwards)."""
    if not active:
        yield
        return
    import numba
    from threadpoolctl import threadpool_limits
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        numba.set_num_threads(before)


def _compute(item, runner=None, limit_threads=True):
    """Run one case and return its outcome: ``{"id", "status", "files": {name: bytes}, "error",
    "traceback", "elapsed_s", "info", "host", "pid"}``. Never raises for a failing case."""
    import socket
    t0 = time.perf_counter()
    out = {"id": item["id"], "status": "ok", "files": {}, "error": None, "traceback": None, "info": {},
           "host": socket.gethostname(), "pid": os.getpid()}
    try:
        run = _resolve_runner(runner)
        case = parse_case(item["case"], source=f"case {item['id']}")
        with tempfile.TemporaryDirectory(prefix=f"vertebrafe-{item['id']}-") as tmp:
            with _one_thread(limit_threads):
                info = run(case, tmp)
            out["info"] = info or {}
            for name in sorted(os.listdir(tmp)):
                p = os.path.join(tmp, name)
                if os.path.isfile(p):
                    with open(p, "rb") as f:
                        out["files"][name] = f.read()
    except Exception as exc:  # noqa: BLE001 - a failing case is recorded, the study goes on
        out["status"] = "error"
        out["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        out["traceback"] = traceback.format_exc()
        out["files"] = {}
    out["elapsed_s"] = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------------------------------------
# Writing and reading case directories


def _case_dir(out, cid):
    return os.path.join(out, "cases", cid)


def case_status(out, cid):
    """The ``status.json`` of case ``cid`` under study directory ``out`` as a dict, or None."""
    p = os.path.join(_case_dir(out, cid), STATUS_FILE)
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_outcome(out, sc, outcome):
    """Write the files of one case into ``out/cases/<id>`` atomically."""
    cases = os.path.join(out, "cases")
    os.makedirs(cases, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{sc.id}-", dir=cases)
    try:
        for name, data in outcome["files"].items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
        with open(os.path.join(tmp, "case.toml"), "w") as f:
            f.write(_comment(f"# case {sc.id} of a study; variant {sc.variant!r}; parameters {sc.params}") + "\n")
            f.write(to_toml(sc.case.to_dict()))
        status = {k: v for k, v in outcome.items() if k != "files"}
        status.update({"name": sc.name, "variant": sc.variant, "params": sc.params,
                       "files": sorted(outcome["files"]), "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
        with open(os.path.join(tmp, STATUS_FILE), "w") as f:
            json.dump(status, f, indent=1, default=str)
            f.flush()
            os.fsync(f.fileno())
        _replace_dir(tmp, _case_dir(out, sc.id))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_atomic(path, text):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _clean_temporaries(out):
    cases = os.path.join(out, "cases")
    if os.path.isdir(cases):
        for n in os.listdir(cases):
            if n.startswith(".tmp-") or ".old-" in n:
                shutil.rmtree(os.path.join(cases, n), ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# Running a study


@dataclass
class StudyRun:
    """What :func:`run_study` did: case ids ``ok``, ``failed`` (id -> error), ``skipped`` (finished
    earlier), the wall time and the summary paths."""

    study: Study
    out: str
    ok: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    elapsed_s: float = 0.0
    summary: dict = field(default_factory=dict)
    backend: str = ""

    def describe(self):
        n = len(self.study.cases)
        return (f"study {self.study.name}: {n} cases, {len(self.ok)} run, {len(self.skipped)} finished earlier, "
                f"{len(self.failed)} failed; {self.elapsed_s:.1f} s on {self.backend}")


@contextlib.contextmanager
def _env(values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


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
        :func:`pipeline_runner`. Must be importable by the workers (a module-level function).
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
    os.makedirs(os.path.join(out, "cases"), exist_ok=True)
    _clean_temporaries(out)
    _write_atomic(os.path.join(out, "study.json"), json.dumps(study.to_dict(), indent=1, default=str))
    run = StudyRun(study, out)
    pending = []
    for sc in study.cases:
        st = case_status(out, sc.id)
        if st and (st.get("status") == "ok" or (st.get("status") == "error" and not retry_failed)):
            run.skipped.append(sc.id)
            if st.get("status") == "error":
                run.failed[sc.id] = st.get("error")
        else:
            pending.append(sc)
    say = log or (lambda msg: None)
    if run.skipped:
        say(f"{len(run.skipped)} of {len(study.cases)} cases finished earlier; skipped")

    bar = None
    if progress and pending:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(pending), desc=study.name, unit="case", file=sys.stderr, dynamic_ncols=True)

    def done(sc, outcome):
        _write_outcome(out, sc, outcome)
        if outcome["status"] == "ok":
            run.ok.append(sc.id)
            say(f"ok      {sc.id} {sc.name} ({outcome['elapsed_s']:.1f} s)")
        else:
            run.failed[sc.id] = outcome["error"]
            say(f"FAILED  {sc.id} {sc.name}: {outcome['error']}")
        if bar is not None:
            bar.update(1)
            bar.set_postfix(ok=len(run.ok), failed=len(run.failed))

    n_local = max(1, min(int(workers or os.cpu_count() or 1), len(pending))) if pending else 1
    if pending and not scheduler:
        _check_memory(pending, n_local, force)
    items = {sc.id: {"id": sc.id, "case": sc.case.to_dict()} for sc in pending}
    by_id = {sc.id: sc for sc in pending}
    try:
        if not pending:
            run.backend = "nothing to run"
        elif scheduler:
            run.backend = f"dask {scheduler}"
            _run_dask(scheduler, items, by_id, runner, done, connect_timeout)
        else:
            n = workers or min(os.cpu_count() or 1, len(pending))
            n = max(1, min(int(n), len(pending)))
            if n == 1:
                run.backend = "1 process (in-process)"
                for cid, item in items.items():
                    done(by_id[cid], _compute(item, runner, limit_threads=False))
            else:
                run.backend = f"{n} worker processes"
                _run_pool(n, items, by_id, runner, done)
    finally:
        if bar is not None:
            bar.close()
    run.elapsed_s = time.perf_counter() - t0
    if summary:
        run.summary = summarize(out)
    return run


def _check_memory(pending, workers, force):
    """The largest pending case, ``workers`` at a time, fits in the available memory (unless ``force``)."""
    from .resources import check_memory, estimate_segment

    def estimate(sc):
        s = sc.case.segment
        return estimate_segment(s.levels, s.element_size, s.scale, s.n_cortex_layers, s.overrides)

    big = max(pending, key=lambda sc: estimate(sc)["bytes"])
    s = big.case.segment
    check_memory(estimate(big), f"case {big.id} ({big.name}): segment.element_size = {s.element_size:g} mm on "
                 f"{s.levels[0]}-{s.levels[-1]}", force=force, workers=workers)


def _check_study_dir(out):
    """Absolute path of study folder ``out``: new, empty, or an earlier study output (with study.json)."""
    text = os.fspath(out) if out is not None else ""
    if not str(text).strip():
        raise InputError(f"-o/--output = {text!r} is empty; allowed: the path of a new or empty folder")
    out = os.path.abspath(text)
    if os.path.lexists(out) and not os.path.isdir(out):
        raise InputError(f"-o/--output = {text!r} is an existing file; allowed: a new or empty folder, or an "
                         "earlier study folder to resume")
    if os.path.isdir(out) and os.listdir(out) and not os.path.isfile(os.path.join(out, "study.json")):
        raise InputError(f"-o/--output = {text!r} is a non-empty folder that is not a study folder (no "
                         "study.json); allowed: a new or empty folder, or an earlier study folder to resume "
                         "(vertebrafe never writes into folders of other files)")
    return out


def _run_pool(n, items, by_id, runner, done):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")          # no fork of a process that holds numba/BLAS threads
    with _env({k: "1" for k in THREAD_ENV}):
        ex = ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker)
        try:
            futures = {ex.submit(_compute, item, runner, False): cid for cid, item in items.items()}
            for fut in as_completed(futures):
                cid = futures[fut]
                try:
                    outcome = fut.result()
                except BrokenProcessPool as exc:
                    outcome = _crashed(cid, f"worker process died ({exc})")
                done(by_id[cid], outcome)
        except BaseException:
            ex.shutdown(wait=False, cancel_futures=True)
            for p in list((getattr(ex, "_processes", None) or {}).values()):
                with contextlib.suppress(Exception):
                    p.terminate()
            raise
        else:
            ex.shutdown(wait=True)


def _crashed(cid, message):
    return {"id": cid, "status": "error", "files": {}, "error": message, "traceback": None, "info": {},
            "elapsed_s": math.nan, "host": None, "pid": None}


def _run_dask(address, items, by_id, runner, done, timeout=30.0):
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise InputError("--scheduler needs dask.distributed: pip install \"dask[distributed]\"") from None
    try:
        client = Client(address, timeout=f"{float(timeout)}s")
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot connect to the Dask scheduler at {address!r}: {exc}") from None
    try:
        futures = {}
        for cid, item in items.items():
            fut = client.submit(_compute, item, runner, True, key=f"vertebrafe-case-{cid}-{os.getpid()}",
                                pure=False)
            futures[fut] = cid
        for fut in as_completed(list(futures)):
            cid = futures[fut]
            try:
                outcome = fut.result()
            except Exception as exc:  # noqa: BLE001 - worker lost, task erred outside _compute
                outcome = _crashed(cid, f"{type(exc).__name__}: {exc}")
            done(by_id[cid], outcome)
    finally:
        client.close()


# ------------------------------------------------------------------------------------------------
# Summary and plots


def _relation_map(case_dict):
    from .post.compare import relations
    levels = case_dict["segment"]["levels"]
    treated = case_dict.get("treatment", {}).get("level") or case_dict.get("fracture", {}).get("level")
    return relations(levels, treated)


def summarize(out):
    """Write ``summary.csv``, ``failures.csv`` and the plots of the study in ``out`` (from ``study.json``
    and the finished case directories). Returns ``{"summary": path, "failures": path, "plots": [paths],
    "tables": {plot name: DataFrame pivot}}``."""
    import pandas as pd

    out = os.path.abspath(os.fspath(out))
    try:
        with open(os.path.join(out, "study.json")) as f:
            meta = json.load(f)
    except OSError:
        raise InputError(f"{out}: not a study directory (no study.json); run 'vertebrafe study' first") from None
    _check_meta(meta, out)
    params = meta["parameters"]
    frames, failures = [], []
    for c in meta["cases"]:
        st = case_status(out, c["id"])
        if st is None or st.get("status") != "ok":
            failures.append({"id": c["id"], "name": c["name"], "variant": c["variant"],
                             "status": "missing" if st is None else st.get("status"),
                             "error": None if st is None else st.get("error"), **c["params"]})
            continue
        p = os.path.join(_case_dir(out, c["id"]), "metrics.csv")
        if not os.path.exists(p):
            continue
        df = pd.read_csv(p)
        rel = _relation_map(c["case"])
        df.insert(0, "relation", df["level"].map(lambda n: rel.get(n, "")))
        df = df.drop(columns=[x for x in ("case",) if x in df.columns])
        df.insert(0, "case", c["name"])
        df.insert(0, "variant", c["variant"])
        df.insert(0, "case_id", c["id"])
        for i, k in enumerate(params):
            df.insert(3 + i, k, c["params"].get(k, _lookup(c["case"], k)))
        frames.append(df)
    paths = {"plots": [], "tables": {}}
    fail_df = pd.DataFrame(failures, columns=["id", "name", "variant", "status", "error"] + params)
    paths["failures"] = os.path.join(out, "failures.csv")
    _write_atomic(paths["failures"], fail_df.to_csv(index=False))
    if not frames:
        return paths
    summary = pd.concat(frames, ignore_index=True)
    ref = meta.get("reference")
    if ref:
        summary = _add_reference(summary, meta, ref)
    paths["summary"] = os.path.join(out, "summary.csv")
    _write_atomic(paths["summary"], summary.to_csv(index=False))
    if meta.get("plots"):
        os.makedirs(os.path.join(out, "plots"), exist_ok=True)
        for spec in meta["plots"]:
            png, table = _plot(summary, PlotSpec(**spec), out, meta)
            if png:
                paths["plots"].append(png)
                paths["tables"][spec["name"]] = table
    return paths


def _check_meta(meta, out):
    """The case ids and plot names of a study.json must be safe file names (a received study folder
    must not make vertebrafe read or write outside it)."""
    src = os.path.join(out, "study.json")
    if not isinstance(meta, dict) or not isinstance(meta.get("cases"), list):
        raise InputError(f"{src}: not a vertebrafe study record (no list 'cases')")
    for i, c in enumerate(meta["cases"]):
        check_name(c.get("id") if isinstance(c, dict) else c, f"{src}: cases[{i}].id")
    for i, p in enumerate(meta.get("plots") or []):
        check_name(p.get("name") if isinstance(p, dict) else p, f"{src}: plots[{i}].name")


def _lookup(case_dict, key):
    node = case_dict
    for p in key.split("."):
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node


def _add_reference(summary, meta, ref):
    """Columns ``reference_id``, ``reference``, ``ratio``, ``change``: each case against the case of the
    reference variant with the same values of the [grid] keys."""
    import numpy as np
    import pandas as pd
    grid_keys = meta["grid_keys"]
    cases = {c["id"]: c for c in meta["cases"]}
    refs = {}
    for c in meta["cases"]:
        if c["variant"] == ref:
            key = tuple(json.dumps(c["params"].get(k)) for k in grid_keys)
            refs.setdefault(key, c["id"])
    ref_id = {}
    for cid, c in cases.items():
        key = tuple(json.dumps(c["params"].get(k)) for k in grid_keys)
        ref_id[cid] = refs.get(key)
    summary = summary.copy()
    summary["reference_id"] = summary["case_id"].map(ref_id)
    keys = ["level", "region", "metric", "unit"]
    r = summary[summary["case_id"].isin(set(refs.values()))][["case_id"] + keys + ["value"]]
    r = r.rename(columns={"case_id": "reference_id", "value": "reference"})
    merged = summary.merge(r, on=["reference_id"] + keys, how="left")
    ref_v = merged["reference"].to_numpy(dtype=float)
    val = merged["value"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        merged["ratio"] = np.where(ref_v != 0, val / np.where(ref_v != 0, ref_v, 1.0), np.nan)
    merged["change"] = val - ref_v
    return pd.DataFrame(merged)


def _select(summary, spec):
    sel = summary[(summary["metric"] == spec.metric) & (summary["region"] == spec.region)]
    if spec.relation == "adjacent":
        sel = sel[sel["relation"].isin(["adjacent_superior", "adjacent_inferior"])]
    elif spec.relation in set(summary["relation"]):
        sel = sel[sel["relation"] == spec.relation]
    else:
        sel = sel[sel["level"] == spec.relation]
    return sel


def _unit(key):
    """Unit of a dotted case key from the case schema ('' if none)."""
    from .case import SCHEMA
    section, _, name = key.partition(".")
    for f in SCHEMA.get(section, ()):
        if f.name == name:
            return f.unit
    return ""


def _label(key):
    unit = _unit(key)
    return f"{key} [{unit}]" if unit else key


def _plot(summary, spec, out, meta):
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    sel = _select(summary, spec)
    if sel.empty or spec.x not in sel.columns:
        return None, None
    ycol = spec.y
    ref = meta.get("reference")
    if ycol != "value" and ref:
        sel = sel[sel["variant"] != ref]
    facets = [None] if not spec.facet else sorted(sel[spec.facet].dropna().unique())
    index = [spec.facet] if spec.facet else []
    table = sel.pivot_table(index=index + [spec.hue, "level"], columns=spec.x, values=ycol, aggfunc="mean")
    _write_atomic(os.path.join(out, "plots", f"{spec.name}.csv"), table.to_csv())
    fig, axes = plt.subplots(1, len(facets), figsize=(4.2 * len(facets) + 0.8, 3.8), sharey=True, squeeze=False)
    markers = itertools.cycle("os^Dv<>")
    hues = list(dict.fromkeys(sel[spec.hue].tolist()))
    mk = {h: next(markers) for h in hues}
    colours = {h: f"C{i}" for i, h in enumerate(hues)}
    styles = itertools.cycle(["-", "--", ":", "-."])
    levels = list(dict.fromkeys(sel["level"].tolist()))
    ls = {lv: next(styles) for lv in levels}
    for ax, fv in zip(axes[0], facets):
        part = sel if fv is None else sel[sel[spec.facet] == fv]
        for (h, lv), g in part.groupby([spec.hue, "level"], sort=False):
            g = g.sort_values(spec.x)
            ax.plot(g[spec.x].to_numpy(dtype=float), g[ycol].to_numpy(dtype=float), marker=mk[h],
                    linestyle=ls[lv], color=colours[h], label=f"{h}, {lv}" if len(levels) > 1 else f"{h}")
        if ycol == "ratio":
            ax.axhline(1.0, color="grey", linewidth=0.9, zorder=0)
            ax.text(ax.get_xlim()[0], 1.0, f" {ref}", va="bottom", ha="left", color="grey", fontsize=8)
        ax.set_xlabel(_label(spec.x))
        if fv is not None:
            unit = _unit(spec.facet)
            ax.set_title(f"{spec.facet} = {fv:g}{' ' + unit if unit else ''}"
                         if isinstance(fv, (int, float, np.number)) else f"{spec.facet} = {fv}", fontsize=10)
        ax.grid(True, alpha=0.3)
    unit = sel["unit"].iloc[0] if "unit" in sel and len(sel) else ""
    ylabel = {"ratio": f"{spec.metric} / {ref}", "change": f"{spec.metric} - {ref} [{unit}]",
              "value": f"{spec.metric} [{unit}]"}[ycol]
    axes[0][0].set_ylabel(f"{ylabel}\n({spec.region}, {spec.relation})")
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.suptitle(spec.title or f"{meta['name']}: {spec.metric} of {spec.region} ({spec.relation})", fontsize=11)
    fig.tight_layout()
    png = os.path.join(out, "plots", f"{spec.name}.png")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=os.path.dirname(png))
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, png)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    return png, table
