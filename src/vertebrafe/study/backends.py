"""Where the cases of a study run: in this process, a local process pool or a Dask cluster."""
from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import math
import os
import tempfile
import time
import traceback
import warnings

from ..case import parse_case
from ..errors import RESULT_WARNINGS, InputError
from ..io.studydir import StrengthFiles

__all__ = ["THREAD_ENV", "pipeline_runner", "compute", "compute_group", "worker_pool", "run_pool", "run_dask",
           "sigterm_unwinds"]

THREAD_ENV = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


# ------------------------------------------------------------------------------------------------
# Running one case (in a worker)


def pipeline_runner(case, workdir, cache=None):
    """The default runner: :func:`vertebrafe.case.run_case` and the result files written into
    ``workdir``; ``cache``: a :class:`vertebrafe.case.ModelCache` shared with the other cases of the same
    model. Returns a dict of extra status information (solver info, timings)."""
    from ..case import run_case
    t0 = time.perf_counter()
    result = run_case(case, force=True, cache=cache,   # memory was checked for the whole study before it started
                      before_solve=_await_kernels)
    result.save(workdir)
    if not case.output.vtu:
        os.remove(os.path.join(workdir, "result.vtu"))
    info = result.solution.info
    return {"dofs": info.get("dofs"), "iterations": info.get("iterations"), "residual": info.get("residual"),
            "setup_reused": bool(info.get("setup_reused")), "warnings": list(getattr(result, "warnings", [])),
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
#: The model cache of a pool worker process, kept across its tasks (:class:`vertebrafe.case.ModelCache`).
_WORKER_CACHE = None
#: In a pool worker: the queue that takes each finished case to the parent at once (:func:`run_pool`).
_REPORTS = None
#: In a pool worker: the event set once the study's numba kernels are compiled (:func:`worker_pool`).
_KERNELS_READY = None


def _await_kernels():
    """In a pool worker: wait until the study has compiled (or loaded) the numba kernels, so that the worker
    loads them from numba's cache instead of compiling them too; elsewhere: nothing to wait for."""
    if _KERNELS_READY is not None:
        _KERNELS_READY.wait()


def _exit_on_sigterm(signum, frame):
    """SIGTERM in a worker or in the process that runs a study: unwind (temporary folders are removed,
    pool workers are stopped, the study lock is released) and exit with status 143."""
    raise SystemExit(128 + signum)


def _worker_sigterm(signum, frame):
    """SIGTERM in a pool worker: unwind (the case's temporary folder is removed) and make sure the process
    ends within 5 s even if the pool machinery catches the ``SystemExit`` and waits for more work. A further
    SIGTERM is ignored: when the parent dies the kernel (``PR_SET_PDEATHSIG``) and the parent watch both send
    one, and a second ``SystemExit`` raised inside the first unwinding would stop the folder's removal."""
    import signal
    import threading

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    timer = threading.Timer(5.0, os._exit, (128 + signum,))
    timer.daemon = True
    timer.start()
    raise SystemExit(128 + signum)


def _watch_parent(parent):
    """In a pool worker: stop when the process that started it is gone (killed with SIGKILL, say), so that
    no orphaned worker keeps its memory; checks twice a second."""
    import signal
    import threading

    try:                                   # Linux: the kernel sends SIGTERM when the parent dies
        import ctypes
        ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))          # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the thread below does it
        pass

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="vertebrafe-parent-watch", daemon=True).start()


def _init_worker(parent=None, reports=None, kernels_ready=None, strengths=None):
    """Process-pool initializer: one numba thread and one BLAS thread in this worker; SIGTERM unwinds
    (temporary folders removed) and the worker stops when its parent ``parent`` (pid) is gone; ``reports``:
    the queue of finished cases (:func:`run_pool`); ``kernels_ready``: the event of :func:`_await_kernels`;
    ``strengths``: the study folder whose plate strengths the workers share
    (:class:`vertebrafe.io.studydir.StrengthFiles`; None: this worker's own)."""
    global _POOL_LIMITS, _WORKER_CACHE, _REPORTS, _KERNELS_READY
    import signal

    from ..case import ModelCache
    _WORKER_CACHE = ModelCache(None if strengths is None else StrengthFiles(strengths))
    _REPORTS = reports
    _KERNELS_READY = kernels_ready

    signal.signal(signal.SIGTERM, _worker_sigterm)
    if parent is not None:
        _watch_parent(parent)
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
    from threadpoolctl import threadpool_limits

    from ..fem.jit import numba_threads
    with numba_threads(1), threadpool_limits(1):
        yield


def compute(item, runner=None, limit_threads=True):
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
            with _one_thread(limit_threads), warnings.catch_warnings():
                for category in RESULT_WARNINGS:                        # kept in info, shown with the case name
                    warnings.simplefilter("ignore", category)
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


def compute_group(group, runner=None, limit_threads=True, report=None, cache=None):
    """Run the cases ``group`` (items of :func:`compute` that differ only in their load, see
    :func:`vertebrafe.case.model_key`) one after another: a runner with a ``cache`` keyword, such as the
    default pipeline, gets one :class:`vertebrafe.case.ModelCache` for all of them (the segment and the
    stiffness set-up are built once): ``cache``, else the one of this pool worker (kept across its tasks;
    its plate strengths of unchanged vertebrae are shared with the other workers through the study folder),
    else a new one; another runner runs each case
    as :func:`compute` does. Every case gets its own outcome (a failing case does not stop the others);
    ``report(outcome)`` is called as each one finishes. Returns the outcomes in order."""
    run = _resolve_runner(runner)
    if "cache" in inspect.signature(run).parameters:
        from ..case import ModelCache
        cache = cache if cache is not None else _WORKER_CACHE if _WORKER_CACHE is not None else ModelCache()
        run = functools.partial(run, cache=cache)
    outcomes = []
    for item in group:
        outcomes.append(compute(item, run, limit_threads))
        if report is not None:
            report(outcomes[-1])
    return outcomes


# ------------------------------------------------------------------------------------------------
# Writing and reading case directories
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


@contextlib.contextmanager
def sigterm_unwinds():
    """Inside the block (main thread only), SIGTERM raises ``SystemExit(143)`` so that ``finally`` blocks run:
    pool workers are stopped, temporary folders removed, the study lock released."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _pool_task(group, runner):
    """A pool worker's task: the cases of ``group`` (:func:`compute_group`), each outcome sent to the parent
    as soon as the case is finished, so an interrupted study keeps every finished case of a group. Returns
    the ids of the cases run. The default pipeline builds the segment before it waits for the numba kernels
    (:func:`_await_kernels`); another runner waits first."""
    if runner is not None:
        _await_kernels()
    compute_group(group, runner, False, report=_REPORTS.put)
    return [item["id"] for item in group]


def _started():
    """A pool task that does nothing: submitting one per worker starts the worker processes."""


class WorkerPool:
    """Local worker processes of a study (:func:`worker_pool`): ``executor``, a ``ProcessPoolExecutor``
    whose workers run :func:`_init_worker`; ``reports``, the queue that takes each finished case to the
    parent (:func:`run_pool`); ``kernels_ready``, the event that lets the workers solve (set it once the
    numba kernels are compiled, :func:`_await_kernels`)."""

    def __init__(self, executor, reports, kernels_ready):
        self.executor = executor
        self.reports = reports
        self.kernels_ready = kernels_ready


@contextlib.contextmanager
def worker_pool(n, strengths=None):
    """``n`` spawned worker processes (:class:`WorkerPool`), started at once: they import vertebrafe while
    this process goes on (a study compiles the numba kernels meanwhile, :func:`vertebrafe.fem.warmup.warm_up`,
    and must not submit work that calls a kernel before that is done). Each worker runs on one numba and one
    BLAS thread; ``strengths``: the study folder through which they share plate strengths
    (:func:`_init_worker`). Leaving the block waits for the submitted tasks; an exception (Ctrl-C, SIGTERM)
    stops the workers with SIGTERM, so that each one removes its temporary folder."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")          # no fork of a process that holds numba/BLAS threads
    # a SimpleQueue writes in the worker's own thread: a case is in the pipe when put() returns, so a worker
    # that dies right after it (a crash on the next case) cannot lose it, as a Queue's feeder thread could
    reports = ctx.SimpleQueue()
    kernels_ready = ctx.Event()
    with _env({k: "1" for k in THREAD_ENV}):
        ex = ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker,
                                 initargs=(os.getpid(), reports, kernels_ready, strengths))
        try:
            for _ in range(n):
                ex.submit(_started)        # a process per task while none is idle: all n start now
        except BaseException:
            ex.shutdown(wait=False, cancel_futures=True)
            reports.close()
            raise
    try:
        yield WorkerPool(ex, reports, kernels_ready)
    except BaseException:
        procs = list((getattr(ex, "_processes", None) or {}).values())
        ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(Exception):
                p.terminate()           # SIGTERM: the worker unwinds and removes its temporary folder
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(timeout=10)
        raise
    else:
        ex.shutdown(wait=True)
    finally:
        reports.close()


def run_pool(n, groups, by_id, runner, done, pool=None, compile_kernels=None, on_idle=None):
    """Run ``groups`` on ``n`` worker processes (those of ``pool``, a :class:`WorkerPool`, else a
    :func:`worker_pool` of its own); ``done(case, outcome)`` is called in this process as each case finishes
    (not when its group does). A group whose worker died records its unfinished cases as failed with the
    reason. ``compile_kernels()`` runs here once the groups are submitted (the workers build their first
    segments meanwhile); the workers solve after it returns. ``on_idle(pool)`` is called once, as soon as
    fewer groups than workers are left unfinished (a worker is idle: the pool's queue is empty)."""
    if pool is None:
        with worker_pool(n) as pool:
            return run_pool(n, groups, by_id, runner, done, pool, compile_kernels, on_idle)
    reports = pool.reports
    reported = set()

    def take(timeout):
        """Record one finished case from the queue; False when none came within ``timeout`` s."""
        end = time.monotonic() + timeout
        while reports.empty():
            if time.monotonic() >= end:
                return False
            time.sleep(0.02)
        outcome = reports.get()
        reported.add(outcome["id"])
        done(by_id[outcome["id"]], outcome)
        return True

    futures = {pool.executor.submit(_pool_task, group, runner): group for group in groups}
    if compile_kernels is not None:
        compile_kernels()
    pool.kernels_ready.set()
    waiting = set(futures)
    while waiting:
        if on_idle is not None and len(waiting) < n:
            on_idle(pool)
            on_idle = None
        take(0.2)
        for fut in [f for f in waiting if f.done()]:
            waiting.discard(fut)
            ids = [item["id"] for item in futures[fut]]
            exc = fut.exception()
            # a finished task put all its outcomes on the queue (they may still be in transit);
            # a dead worker's finished cases arrive at once or never
            deadline = time.monotonic() + (60.0 if exc is None else 2.0)
            while any(cid not in reported for cid in ids) and time.monotonic() < deadline:
                take(0.5)
            why = "its outcome was lost" if exc is None else f"worker process died ({exc})"
            for cid in ids:
                if cid not in reported:
                    reported.add(cid)
                    done(by_id[cid], crashed(cid, why))


def crashed(cid, message):
    return {"id": cid, "status": "error", "files": {}, "error": message, "traceback": None, "info": {},
            "elapsed_s": math.nan, "host": None, "pid": None}


def run_dask(address, groups, by_id, runner, done, timeout=30.0):
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
        for group in groups:
            fut = client.submit(compute_group, group, runner, True,
                                key=f"vertebrafe-case-{group[0]['id']}-{os.getpid()}", pure=False)
            futures[fut] = group
        for fut in as_completed(list(futures)):
            try:
                outcomes = fut.result()
            except Exception as exc:  # noqa: BLE001 - worker lost, task erred outside compute
                outcomes = [crashed(item["id"], f"{type(exc).__name__}: {exc}") for item in futures[fut]]
            for outcome in outcomes:
                done(by_id[outcome["id"]], outcome)
    finally:
        client.close()


# ------------------------------------------------------------------------------------------------
# Summary and plots


